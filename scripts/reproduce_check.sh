#!/usr/bin/env bash
# Does a fresh clone reproduce the committed results? Clones this repository at REV into a new folder
# (no outputs, no DVC cache, no ../shared), runs the README's first command there (setup, then
# `dvc repro` from nothing), compares every output with the committed dvc.lock
# (scripts/compare_outputs.py: hashes, then the metrics' numeric differences), and shows `dvc status`.
#   bash scripts/reproduce_check.sh                 # HEAD, in a new temporary folder
#   bash scripts/reproduce_check.sh REV WORKDIR     # another commit / a folder of your choice
# With PGPIS_COMMITTED_CACHE=/path/to/dvc-cache (a cache holding the committed outputs) the report also
# names the files that differ inside each differing folder. Exits 1 when any output differs (outputs
# record no run facts: no timings, commits or absolute paths). Run it before landing any change
# to training or data; about 15 minutes on 2 quiet cores plus setup.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
COMMIT=$(git -C "$SRC" rev-parse "${1:-HEAD}")
WORK=${2:-$(mktemp -d /tmp/pgpis-reproduce.XXXXXX)}
CLONE="$WORK/pgpis-bench"
[ ! -e "$CLONE" ] || { echo "reproduce_check: $CLONE exists; choose a new WORKDIR" >&2; exit 1; }
git clone -q "$SRC" "$CLONE"
cd "$CLONE"
git checkout -q "$COMMIT"
echo "reproduce_check: commit $COMMIT in $CLONE"
bash scripts/setup.sh
source .venv/bin/activate
start=$(date +%s)
dvc repro --no-run-cache
echo "reproduce_check: dvc repro took $(( $(date +%s) - start )) s on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs))"
status=0
python scripts/compare_outputs.py --committed "$COMMIT" ${PGPIS_COMMITTED_CACHE:+--cache "$PGPIS_COMMITTED_CACHE"} || status=$?
dvc status
exit $status
