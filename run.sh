#!/usr/bin/env bash
# One entry point for a fresh clone: sets up .venv (once), then runs what you ask.
#   bash run.sh demo          the main job on a small default
#   bash run.sh test          the whole test suite
#   bash run.sh CMD ARGS...   any command inside the environment, e.g. python -m benchmarks.hanoi
# Torch: a torch already in .venv is kept. Otherwise a wheel that pip finds locally (its
# find-links, e.g. a CPU build lying on the machine) is preferred; else PyPI's default build.
# To choose yourself, set HRM_TORCH_INDEX to a wheel index (PyTorch publishes a CPU-only one)
# or HRM_TORCH_SPEC to a pip requirement (default "torch>=2.5").
set -euo pipefail
cd "$(dirname "$0")"
VENV=${HRM_VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
if ! "$VPY" -c "import torch" 2>/dev/null; then
  spec=${HRM_TORCH_SPEC:-torch>=2.5}
  if [ -n "${HRM_TORCH_INDEX:-}" ]; then
    "$VPY" -m pip install "$spec" --extra-index-url "$HRM_TORCH_INDEX"
  elif "$VPY" -m pip install --no-index --no-deps "$spec" 2>/dev/null; then
    "$VPY" -m pip install "$spec"  # the local wheel stays; this adds its dependencies
  else
    "$VPY" -m pip install "$spec"
  fi
fi
stamp="$VENV/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  "$VPY" -m pip install -e ".[test]"
  touch "$stamp"
fi

export PATH="$PWD/$VENV/bin:$PATH"
case "${1:-demo}" in
  demo) shift || true; exec python -m train.demo "$@" ;;
  test) shift; exec python -m pytest "$@" ;;
  *) exec "$@" ;;
esac
