#!/usr/bin/env bash
# Build .gpu/, what the GPU machine lacks for tools/gpu/run.sh: the VGG19 weights, a packed training
# set, the paintings. Checks that the repository's files and .gpu/ together fit what the machine takes.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python tools/gpu/prepare.py "$@"
