#!/usr/bin/env bash
# Set up archspec on a fresh machine: Graphviz's `dot`, a virtual environment in .venv,
# torch and torchvision (served from this machine's disk), archspec and its dev tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: installing graphviz (for diagrams)" >&2
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq graphviz >/dev/null \
    || echo "setup: could not install graphviz; diagrams will fall back to .dot files" >&2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision, archspec, pytest, hypothesis, onnxruntime, rich, matplotlib, timm, segmentation_models_pytorch, mypy" >/dev/null 2>&1; then
  echo "setup: installing torch, torchvision and archspec[dev] into .venv (a few minutes the first time)" >&2
  .venv/bin/pip install -q --no-cache-dir --disable-pip-version-check torch==2.14.1 torchvision==0.29.1 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/pip install -q --no-cache-dir --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
fi
.venv/bin/python -c "import torch, torchvision, archspec" || { echo "setup: installation failed" >&2; exit 1; }
