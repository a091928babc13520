#!/usr/bin/env bash
# Refresh requirements.lock: every package of the environment (pyproject.toml's ranges, extra `dev`)
# at one exact version with its PyPI sha256 hashes, for CPython 3.11 on Linux x86-64 (manylinux_2_28).
# scripts/setup.sh installs exactly this file (pip --require-hashes). Run after changing a dependency
# range in pyproject.toml, then rerun the pipeline (`dvc repro`) and commit the lock with the results.
#   bash scripts/lock.sh            # newest versions the ranges allow
#   bash scripts/lock.sh --keep     # only add what is missing, keep the current pins
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9  # the resolver, pinned so that the same inputs give the same lock
TOOLS=${PGPIS_LOCK_TOOLS:-.venv-lock}
[ -x "$TOOLS/bin/uv" ] && "$TOOLS/bin/uv" --version | grep -q " $UV_VERSION" || {
  python3.11 -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q "uv==$UV_VERSION"
}
upgrade=--upgrade
[ "${1:-}" = --keep ] && upgrade=
"$TOOLS/bin/uv" pip compile pyproject.toml --extra dev --generate-hashes $upgrade \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --no-header --quiet -o requirements.lock.tmp
{
  echo "# The whole environment of pgpis-bench, exact versions with sha256 hashes (CPython 3.11, Linux"
  echo "# x86-64). Generated from pyproject.toml by \`bash scripts/lock.sh\` (uv $UV_VERSION); do not edit."
  echo "# scripts/setup.sh installs it with pip --require-hashes; results record its sha256."
  cat requirements.lock.tmp
} > requirements.lock
rm requirements.lock.tmp
echo "lock: requirements.lock ($(grep -c '^[a-z0-9]' requirements.lock) packages)"
