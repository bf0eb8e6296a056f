"""The offline Colab rehearsal changes only the chapter cell's outside-world paths."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("colab_offline", ROOT / "scripts/colab_offline.py")
colab_offline = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(colab_offline)


def chapter_cell(name: str = "01_data") -> str:
    return colab_offline.colab_cell(nbformat.read(ROOT / "book" / f"{name}.ipynb", 4))


def test_every_colab_path_of_the_cell_is_redirected(tmp_path):
    url = colab_offline.configured_repository_url()
    cell = colab_offline.offline_cell(chapter_cell(), url, "file:///clone", tmp_path)
    assert url not in cell and '"file:///clone"' in cell
    # only the runtime's folders remain: no real /content or /root/.kaggle path is touched
    outside = cell.replace(str(tmp_path / "content"), "").replace(str(tmp_path / "kaggle"), "")
    assert "/content" not in outside and "/root/.kaggle" not in outside
    assert cell.startswith("import sys, types\n")  # the guard opens: google.colab is importable
    assert "!pip -q install" in cell  # the install itself is the cell's, word for word


def test_a_changed_cell_stops_the_rehearsal_with_a_clear_error(tmp_path):
    changed = chapter_cell().replace("/content", "/workspace")
    with pytest.raises(ValueError, match="does not contain '/content'"):
        colab_offline.offline_cell(changed, colab_offline.configured_repository_url(),
                                   "file:///clone", tmp_path)


def test_a_chapter_without_the_colab_cell_is_refused():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    with pytest.raises(ValueError, match="not the Colab install cell"):
        colab_offline.colab_cell(notebook)


def test_the_offline_notebook_checks_where_code_and_models_came_from(tmp_path):
    notebook = colab_offline.offline_notebook(ROOT / "book/12_limits.ipynb", tmp_path,
                                              tmp_path / "venv", "file:///clone")
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert "is_relative_to" in notebook.cells[-1].source
    assert str(tmp_path / "venv") in notebook.cells[-1].source
