#!/usr/bin/env bash
# The GPU check: training images/s (rotation and CutPaste 3-way, fp32 and bf16) and one short paper-preset cell.
# Run on a machine with one CUDA GPU, after `make setup` (or with PYTHON pointing at an environment with deepocc).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[[ -x $PY ]] || PY=python3
exec timeout 600 "$PY" benchmarks/gpu_check.py "$@"
