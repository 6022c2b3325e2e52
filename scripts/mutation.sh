#!/usr/bin/env bash
# Mutation testing of the core modules (docs/mutation.md): each module against the tests that guard it.
#   scripts/mutation.sh [--again] [--report] [--children N] [GROUP ...]
# Runs at the lowest CPU priority, one thread per process, so it can share the machine with training runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import mutmut" 2>/dev/null; then
    echo "mutmut is not installed: pip install -e '.[mutation]'" >&2
    exit 2
fi
exec nice -n 19 env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python scripts/mutation.py "$@"
