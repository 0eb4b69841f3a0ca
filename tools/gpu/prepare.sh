#!/usr/bin/env bash
# Build .gpu/, what the GPU machine lacks for tools/gpu/run.sh: the VGG19 weights, a packed training
# set, the paintings. Checks that the repository's files and .gpu/ together fit what the machine takes.
# $PYTHON picks the interpreter (default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec ${PYTHON:-python3} tools/gpu/prepare.py "$@"
