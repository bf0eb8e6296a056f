"""Reproduce a reader's Colab session offline: a clean runtime, the chapters' own first cell.

What it does, as CI runs it (``python scripts/colab_offline.py``):

1. makes a fresh virtual environment in a temporary folder outside the checkout, with only what
   a Colab runtime has before the first cell runs (Jupyter's kernel and notebook runner);
2. takes each chosen chapter's first cell (the guarded Colab install cell) word for word and
   changes only what points outside this machine: the repository URL becomes the local
   checkout (so the shallow clone gets its committed ``HEAD``), ``/content`` and
   ``/root/.kaggle`` become folders of the temporary runtime, and the ``google.colab`` module
   is made importable so the guard opens. The archive is linked where the cell expects its
   download, so ``kaggle`` is not called (this machine reaches no Kaggle);
3. executes the chapters at the ``smoke`` profile, from a working directory outside the
   checkout, and then checks that the code came from the installed wheel and the reference
   models from the clone, not from this checkout.

Pip installs with ``PIP_CONSTRAINT=constraints.txt``, so CI tests the versions it pins; on Colab
the same cell takes the latest compatible releases. Uncommitted changes are not in the clone:
commit before running it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHAPTERS = ("01_data", "12_limits")  # the second loads five reference models
COLAB_GUARD = 'if "google.colab" in sys.modules:'
# Colab ships these before any cell runs; everything else must come from the first cell.
COLAB_PREINSTALLED = ("ipykernel", "nbclient", "nbformat")


def colab_cell(notebook: nbformat.NotebookNode) -> str:
    """The source of the chapter's Colab install cell (its first code cell).

    Raises
    ------
    ValueError
        When the first code cell is not the guarded Colab cell.
    """
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    if COLAB_GUARD not in first.source:
        raise ValueError("The first code cell is not the Colab install cell "
                         f"(no line {COLAB_GUARD!r}).")
    return first.source


def offline_cell(source: str, repository_url: str, clone_url: str, runtime: Path) -> str:
    """The Colab cell with only its outside-world paths redirected into ``runtime``.

    Raises
    ------
    ValueError
        When the cell no longer holds one of the strings replaced (the cell changed: this
        script must follow it).
    """
    replacements = {f'"{repository_url}"': f'"{clone_url}"',
                    "/content": str(runtime / "content"),
                    "/root/.kaggle": str(runtime / "kaggle")}
    for old, new in replacements.items():
        if old not in source:
            raise ValueError(f"The Colab cell does not contain {old!r}: update "
                             "scripts/colab_offline.py to follow the cell.")
        source = source.replace(old, new)
    pretend_colab = ('import sys, types\n'
                     'sys.modules["google.colab"] = types.ModuleType("google.colab")\n')
    return pretend_colab + source


def configured_repository_url(config_path: Path = REPOSITORY_ROOT / "_config.yml") -> str:
    """``repository.url`` of the book's configuration."""
    return yaml.safe_load(config_path.read_text())["repository"]["url"]


PROVENANCE_CHECK = """
import os, fer_core
from pathlib import Path
code, models = Path(fer_core.__file__).resolve(), Path(os.environ["FER_MODELS_DIR"]).resolve()
assert code.is_relative_to(Path({venv!r})), f"fer_core imported from {{code}}, not the wheel"
assert models.is_relative_to(Path({runtime!r})), f"models from {{models}}, not the clone"
print("fer_core from", code.parent, "| models from", models)
"""


def offline_notebook(chapter: Path, runtime: Path, venv: Path, clone_url: str
                     ) -> nbformat.NotebookNode:
    """The chapter with its Colab cell redirected, outputs cleared, provenance checked last."""
    notebook = nbformat.read(chapter, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    first.source = offline_cell(colab_cell(notebook), configured_repository_url(), clone_url,
                                runtime)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.cells.append(nbformat.v4.new_code_cell(
        PROVENANCE_CHECK.format(venv=str(venv), runtime=str(runtime))))
    return notebook


RUNNER = """
import sys, nbformat, nbclient
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(notebook, sys.argv[2])
"""


def run(command: list[str], environment: dict[str, str], cwd: Path) -> None:
    """Run ``command``, failing with its output when it fails."""
    finished = subprocess.run(command, env=environment, cwd=cwd, capture_output=True, text=True)
    if finished.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{finished.stdout[-4000:]}"
                         f"\n{finished.stderr[-4000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", default=DEFAULT_CHAPTERS,
                        help="chapter names in book/ (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary runtime")
    arguments = parser.parse_args(argv)
    archive = os.environ.get("FER2013_PATH")
    if not archive or not Path(archive).is_file():
        raise SystemExit("Set FER2013_PATH to the FER-2013 archive (the Colab cell downloads "
                         "it from Kaggle; here it is linked instead).")

    runtime = Path(tempfile.mkdtemp(prefix="fer-colab-"))
    venv, work = runtime / "venv", runtime / "work"
    for folder in (runtime / "content", runtime / "kaggle", work):
        folder.mkdir()
    (runtime / "kaggle" / "kaggle.json").write_text("{}")  # present, so the cell goes on
    os.symlink(Path(archive).resolve(), runtime / "content" / "fer2013.zip")

    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("VIRTUAL_ENV", "PYTHON", "JUPYTER", "FER"))}
    environment.update(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
                       JUPYTER_DATA_DIR=str(runtime / "jupyter"),
                       IPYTHONDIR=str(runtime / "ipython"), MPLBACKEND="agg",
                       FER_PROFILE="smoke", FER_CACHE_DIR=str(runtime / "cache"),
                       PIP_CONSTRAINT=str(REPOSITORY_ROOT / "constraints.txt"),
                       PIP_DISABLE_PIP_VERSION_CHECK="1", TF_CPP_MIN_LOG_LEVEL="2")
    clone_url = REPOSITORY_ROOT.as_uri()
    started = time.perf_counter()
    try:
        run([sys.executable, "-m", "venv", str(venv)], environment, work)
        run([str(venv / "bin" / "pip"), "install", "-q", *COLAB_PREINSTALLED], environment, work)
        for name in arguments.chapters:
            chapter = REPOSITORY_ROOT / "book" / f"{name}.ipynb"
            source = runtime / f"{name}.ipynb"
            nbformat.write(offline_notebook(chapter, runtime, venv, clone_url), source)
            chapter_start = time.perf_counter()
            run([str(venv / "bin" / "python"), "-c", RUNNER, str(source),
                 str(runtime / f"{name}.executed.ipynb"), str(work)], environment, work)
            executed = nbformat.read(runtime / f"{name}.executed.ipynb", as_version=4)
            provenance = "".join(output.get("text", "") for output in executed.cells[-1].outputs)
            print(f"{name}: executed from a clean runtime in "
                  f"{time.perf_counter() - chapter_start:.0f} s; {provenance.strip()}")
        print(json.dumps({"chapters": list(arguments.chapters), "runtime": str(runtime),
                          "seconds": round(time.perf_counter() - started)}))
    finally:
        if not arguments.keep:
            shutil.rmtree(runtime, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
