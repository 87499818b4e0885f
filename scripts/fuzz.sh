#!/bin/sh
# fuzz.sh runs every Fuzz target of the library packages for a bounded time
# each and fails if any target fails. `make fuzz` runs it.
#
#   FUZZTIME      time per target (default 20s; go test's -fuzztime syntax,
#                 so "5000x" means 5000 inputs)
#   FUZZMINTIME   time to minimize each new interesting input (default 100x:
#                 the default of 60s made a target spend its whole time
#                 minimizing its first finding, a dozen execs in a minute)
#   FUZZPKGS      packages to fuzz (default: all but ./tests/...)
#
# New interesting inputs go to go's fuzz cache, not to testdata/; a failing
# input is written to the package's testdata/fuzz/FuzzXxx/ by go test.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-20s}
FUZZMINTIME=${FUZZMINTIME:-100x}
FUZZPKGS=${FUZZPKGS:-$($GO list ./... | grep -v '/tests')}
failed=""
n=0
for pkg in $FUZZPKGS; do
	targets=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
	for target in $targets; do
		n=$((n + 1))
		echo "=== $pkg $target ($FUZZTIME)"
		if ! $GO test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" -fuzzminimizetime="$FUZZMINTIME" "$pkg"; then
			failed="$failed $pkg.$target"
		fi
	done
done
if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: $n targets passed"
