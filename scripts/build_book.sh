#!/usr/bin/env bash
# The main job: set up (if needed) and build the executed book into _build/html.
# Usage: FER2013_PATH=path/to/fer2013.zip bash scripts/build_book.sh   (FER_PROFILE=ci by default)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/jupyter-book ] || bash scripts/setup.sh
export FER_PROFILE="${FER_PROFILE:-ci}" TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/python -c "from fer_core import data; data.resolve_data_path()" || exit 2
.venv/bin/jupyter-book build -W -n --keep-going .
echo "Open _build/html/index.html"
