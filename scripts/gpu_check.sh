#!/usr/bin/env bash
# The GPU check in one command: CUDA tests, benchmarks of both families, torchrun with a resume, and
# training the demo voice with the time left, all within a budget; everything lands in one folder.
#
#   scripts/gpu_check.sh [OUT] [--budget SECONDS]     # on a GPU machine; OUT defaults to $OUT
#   scripts/gpu_check.sh --cpu-rehearsal OUT          # every stage on the CPU with tiny sizes
#
# It runs the package from this source tree (nothing needs installing) with the repository's .venv
# when there is one, else python3. See docs/benchmarks.md, "Running the GPU check".
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec "$PY" -m waveglow.gpucheck "$@"
