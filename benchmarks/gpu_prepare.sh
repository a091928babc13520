#!/usr/bin/env bash
# Get ready, on this machine, for the GPU checks of `benchmarks/gpu_checks.sh` on a lent device machine.
#
# The device machine reaches no package registry and gets only the repository (not ../shared). This
# puts into .gpu/ (git-ignored; carry it): the wheels of the Python packages the evaluation engine and
# its tests need that the device image lacks (its list: the device tool's KINDS.md), at the versions
# of our .venv, and the two real split files the --deepfashion-scale benchmark names its images from.
# Then, with the device tool:  run(command="bash benchmarks/gpu_checks.sh", carry=[".gpu"], timeout_s=600)
#
# Usage: bash benchmarks/gpu_prepare.sh [SPLITS_DIR]   (default ../shared/data/deepfashion-splits)
set -euo pipefail
cd "$(dirname "$0")/.."
splits="${1:-../shared/data/deepfashion-splits}"
py=.venv/bin/python
for f in fasion-resize-pairs-test.csv train.lst; do
  if [ ! -f "$splits/$f" ]; then
    echo "$splits/$f: not found; pass the folder holding the real split files (pgpis fetch deepfashion)" >&2
    exit 2
  fi
done
if [ ! -x "$py" ]; then
  echo "$py: not found; run bash scripts/setup.sh first (the wheels take its package versions)" >&2
  exit 2
fi
mkdir -p .gpu/wheels .gpu/splits
cp "$splits/fasion-resize-pairs-test.csv" "$splits/train.lst" .gpu/splits/
# Not in the device image: the reference metric packages and jsonschema with its dependencies (attrs is
# there, carried anyway: a few kB, and the run does not depend on which version the image holds).
packages="pytorch-fid lpips torch-fidelity prdc jsonschema jsonschema-specifications referencing rpds-py attrs"
for pkg in $packages; do
  ver=$("$py" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$pkg")
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels "$pkg==$ver"
done
echo ".gpu/: $(ls .gpu/wheels | wc -l) wheels, $(du -sh .gpu | cut -f1) in all (the device run carries at most 64 MiB)"
