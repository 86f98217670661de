#!/bin/sh
# npm test's static checks, side by side: the type checks (tests and tools, the console) and eslint.
# One after another they took 78 s of a test run; each is single-threaded, so on two cores together
# they take about half. Every one runs to its end and prints its errors; the first failing one's exit
# code is the script's. The build's own settings over src/ (tsconfig.build.json: rootDir src) are
# checked by test/integration/build.test.ts, which runs `npm run build` and fails on a type error: a
# `tsc -p tsconfig.build.json --noEmit` here did that work twice (16 s of CPU, 2026-12-07).
cd "$(dirname "$0")/.." || exit 2
tsc --noEmit & types=$!
tsc -p console & console=$!
eslint . & lint=$!
status=0
for pid in $types $console $lint; do
  wait "$pid" || { code=$?; [ "$status" = 0 ] && status=$code; }
done
exit "$status"
