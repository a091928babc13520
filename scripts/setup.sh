#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv: the pinned torch build first and
# alone, then the suite and its tools. Idempotent: a second run only checks that all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null; then
  echo "setup: $PY not found; pgpis-bench needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch 2.14.1 / torchvision 0.29.1 are the tested builds; installing them first means no later
# requirement can pull another torch.
.venv/bin/pip install -q torch==2.14.1 torchvision==0.29.1
.venv/bin/pip install -q -e '.[dev]'
.venv/bin/python - <<'PY'
import torch, torchvision
assert torch.__version__.split("+")[0] == "2.14.1", f"unexpected torch {torch.__version__}"
print(f"setup: ok (torch {torch.__version__}, torchvision {torchvision.__version__})")
PY
# Headless Chromium and its driver for the user-study browser tests (tests/engine/test_user_study_browser.py).
# Installed only where it can be: as root with apt (CI, fresh machines); elsewhere those tests skip and
# say how to install them.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }) \
      && echo "setup: installed chromium and chromium-driver (browser tests)" \
      || echo "setup: could not install chromium chromium-driver with apt-get; the browser tests need them" >&2
  else
    echo "setup: chromium/chromedriver not found; the browser tests will skip (as root: apt-get install chromium chromium-driver)"
  fi
fi
