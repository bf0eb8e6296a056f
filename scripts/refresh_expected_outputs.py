"""Re-execute chapters and store, as nbval's expected values, the outputs of the cells tagged
nbval-check-output; every other cell is stored without output to keep the repository small
(the book build re-executes everything anyway).

A stored output that the new one matches within the tolerance of ``book/conftest.py`` (a few
units of the last printed digit: another CPU, the same facts) is kept as it is, so a refresh on
another machine changes only what really changed; each changed cell is reported.

Usage: FER2013_PATH=... FER_PROFILE=ci python scripts/refresh_expected_outputs.py book/NAME.ipynb
With ``--executed DIR`` the outputs are taken from the chapters nbval executed and wrote there
(``FER_EXECUTED_NOTEBOOKS=DIR pytest --nbval-lax book/NAME.ipynb``, as CI does) instead of
executing again. Run it only when a pinned fact changes on purpose, and say why in the commit
message.
"""

import argparse
import importlib.util
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# the tag nbval reads (its lower-case, hyphenated form: NBVAL_CHECK_OUTPUT is only a comment)
CHECK_TAG = "nbval-check-output"
ROOT = Path(__file__).resolve().parents[1]


def _book_conftest():
    spec = importlib.util.spec_from_file_location("book_conftest", ROOT / "book" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text(outputs: list) -> str:
    return "\n".join(str(output.get("data", {}).get("text/plain", output.get("text", "")))
                     for output in outputs)


def refresh(path: str, executed: Path | None = None) -> None:
    notebook = nbformat.read(path, as_version=4)
    stored = {index: cell.outputs for index, cell in enumerate(notebook.cells)
              if cell.cell_type == "code"}
    if executed is None:
        NotebookClient(notebook, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": "book"}}).execute()
    else:
        ran = nbformat.read(executed / Path(path).resolve().relative_to(ROOT), as_version=4)
        if [cell.source for cell in ran.cells] != [cell.source for cell in notebook.cells]:
            raise SystemExit(f"{executed}: its copy of {path} has other cells; execute again.")
        for cell, ran_cell in zip(notebook.cells, ran.cells, strict=True):
            if cell.cell_type == "code":
                cell.outputs = ran_cell.outputs
                # nbval skips, and fails, a stored output whose cell has no execution count
                cell.execution_count = ran_cell.execution_count
    conftest = _book_conftest()
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if CHECK_TAG not in cell.metadata.get("tags", []):
            cell.outputs = []
            cell.execution_count = None
            continue
        cell.outputs = conftest.without_stderr(cell.outputs)  # log noise, never compared
        for output in cell.outputs:  # keep only the text a reader and nbval compare
            for key in [k for k in output.get("data", {}) if k.startswith("image/")]:
                del output["data"][key]
        old, new = conftest.without_stderr(stored.get(index, [])), cell.outputs
        # nbval compares every display form, HTML included: a column added to an HTML table
        # whose plain text is unchanged is a change (it cost stop 29 its CI run)
        if old and conftest.outputs_match(new, old):
            cell.outputs = old
        else:
            print(f"{path} cell {index} changed:\n--- stored\n{_text(old)}\n+++ now\n{_text(new)}")
    nbformat.write(notebook, path)
    print(f"refreshed {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--executed", type=Path, help="take the outputs nbval wrote here")
    arguments = parser.parse_args()
    for notebook_path in arguments.notebooks:
        refresh(notebook_path, arguments.executed)
