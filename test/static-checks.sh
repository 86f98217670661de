#!/bin/sh
# npm test's static checks, side by side: the type checks (tests and tools, the build's own settings
# over src/, the console) and eslint. One after another they took 78 s of a test run; each is
# single-threaded, so on two cores together they take about half. Every one runs to its end and
# prints its errors; the first failing one's exit code is the script's.
cd "$(dirname "$0")/.." || exit 2
tsc --noEmit & types=$!
tsc -p tsconfig.build.json --noEmit & build=$!
tsc -p console & console=$!
eslint . & lint=$!
status=0
for pid in $types $build $console $lint; do
  wait "$pid" || { code=$?; [ "$status" = 0 ] && status=$code; }
done
exit "$status"
