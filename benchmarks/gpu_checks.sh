#!/usr/bin/env bash
# Issue 13's GPU checks, as one script for a lent device machine (one NVIDIA H100/H200 class GPU):
#   1. the CUDA twins of the device tests (tests/metrics/test_device.py: torch SSIM against scikit-image
#      on the GPU, every protocol end to end on CUDA agreeing with the CPU);
#   2. `eval_throughput.py --deepfashion-scale` on the GPU: the 8,570 real test pair names plus the full
#      48,674-image reference set, cold statistics cache (target: under 3 minutes, reported as images/s).
#
# Here first: bash benchmarks/gpu_prepare.sh   (wheels and split files into .gpu/)
# Then:       device run(command="bash benchmarks/gpu_checks.sh", carry=[".gpu"], timeout_s=600)
# Everything goes to $OUT (else ./gpu_out): env.txt, tests.log, bench.log, bench.json.
# Settings (environment): DEVICE (cuda), REFS (48674), SMALL (1000: the second, RSS size),
# FLOOR (64: images the CPU Inception floor is timed on), WORKERS (decode threads: the cores less 2),
# PAIRS_FILE / TRAIN_LIST (.gpu/splits/...),
# TEST_TIMEOUT (150 s), BENCH_TIMEOUT (400 s). A dry run here: PYTHON=.venv/bin/python NO_WHEELS=1 DEVICE=cpu
# REFS=100 SMALL=20 FLOOR=16 PAIRS_FILE=<the first 200 lines of the pairs file> (the wheels are for Python 3.12).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
py="${PYTHON:-python3}"
if [ -z "${NO_WHEELS:-}" ] && compgen -G ".gpu/wheels/*.whl" >/dev/null; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_site \
    .gpu/wheels/*.whl || { echo "installing .gpu/wheels failed" >&2; exit 1; }
  export PYTHONPATH="$PWD:/tmp/gpu_site"
fi
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
  "$py" -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'cpus', os.cpu_count())"
} 2>&1 | tee "$out/env.txt"

status=0
timeout "${TEST_TIMEOUT:-150}" "$py" -m pytest -q -rs tests/metrics/test_device.py 2>&1 | tee "$out/tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

timeout "${BENCH_TIMEOUT:-400}" "$py" benchmarks/eval_throughput.py --deepfashion-scale \
  --refs "${REFS:-48674}" --small-pairs "${SMALL:-1000}" --floor-sample "${FLOOR:-64}" \
  --pairs-file "${PAIRS_FILE:-.gpu/splits/fasion-resize-pairs-test.csv}" \
  --train-list "${TRAIN_LIST:-.gpu/splits/train.lst}" --device "${DEVICE:-cuda}" --protocol cfld-256 \
  --workers "${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}" \
  --workdir /tmp/gpu_deepfashion_scale --json "$out/bench.json" 2>&1 | tee "$out/bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit "$status"
