#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv: exactly the locked packages
# (requirements.lock), then the suite. Idempotent: a second run only checks that all is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3.11}
if ! command -v "$PY" >/dev/null; then
  echo "setup: $PY not found; pgpis-bench needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# Every package at the exact version and sha256 of requirements.lock (refreshed by scripts/lock.sh),
# torch 2.14.1 / torchvision 0.29.1 among them, so no requirement can pull another torch; then the
# suite itself, without dependencies. pip check fails if the lock misses something pyproject.toml asks.
.venv/bin/pip install -q --require-hashes -r requirements.lock
.venv/bin/pip install -q --no-deps -e .
.venv/bin/pip check >/dev/null || {
  .venv/bin/pip check >&2
  echo "setup: requirements.lock does not satisfy pyproject.toml; run: bash scripts/lock.sh --keep" >&2
  exit 1
}
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
