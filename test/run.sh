#!/bin/sh
# npm test: the static checks (test/static-checks.sh) beside the test suite, their output after the
# suite's. The suite leaves some of the two cores idle (it waits on real servers: 77% busy with two
# files at a time, ~93% with three), and the checks are ~75 s of single-threaded CPU: one after the
# other, they added ~38 s to every run. Arguments go to
# vitest (`npm test -- test/unit`). The exit code is the suite's, or else the checks'.
cd "$(dirname "$0")/.." || exit 2
checks_log=$(mktemp)
sh test/static-checks.sh > "$checks_log" 2>&1 &
checks=$!
vitest run "$@"
tests=$?
checks_status=0
wait "$checks" || checks_status=$?
if [ "$checks_status" = 0 ]; then
  echo 'static checks (tsc, eslint): passed'
else
  cat "$checks_log"
  echo "static checks (tsc, eslint): FAILED (exit $checks_status)"
fi
rm -f "$checks_log"
[ "$tests" = 0 ] || exit "$tests"
exit "$checks_status"
