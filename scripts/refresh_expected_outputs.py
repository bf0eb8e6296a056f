"""Re-execute chapters and store, as nbval's expected values, the outputs of the cells tagged
NBVAL_CHECK_OUTPUT; every other cell is stored without output to keep the repository small
(the book build re-executes everything anyway).

Usage: FER2013_PATH=... FER_PROFILE=ci python scripts/refresh_expected_outputs.py book/NAME.ipynb
Run it only when a pinned fact changes on purpose, and say why in the commit message.
"""

import sys

import nbformat
from nbclient import NotebookClient

CHECK_TAG = "NBVAL_CHECK_OUTPUT"


def refresh(path: str) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=1200, kernel_name="python3",
                   resources={"metadata": {"path": "book"}}).execute()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if CHECK_TAG not in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
        else:  # keep only the text a reader and nbval compare, never images
            for output in cell.outputs:
                for key in [k for k in output.get("data", {}) if k.startswith("image/")]:
                    del output["data"][key]
    nbformat.write(notebook, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    for notebook_path in sys.argv[1:]:
        refresh(notebook_path)
