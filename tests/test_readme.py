"""The README's results table is generated from the records, never typed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "results_table.py"


def _script():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_table_is_the_generated_one():
    script = _script()
    readme = script.README.read_text()
    assert script.START in readme and script.END in readme
    assert script.replace_in_readme(readme, script.table_markdown()) == readme, (
        "README.md's results table differs from the records: run "
        "`python scripts/results_table.py --write`")


def test_a_hand_edit_of_the_table_is_caught():
    script = _script()
    readme = script.README.read_text()
    edited = readme.replace(script.table_markdown(), script.table_markdown().replace("|", "| ", 1))
    assert script.replace_in_readme(edited, script.table_markdown()) != edited
