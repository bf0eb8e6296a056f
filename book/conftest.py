"""nbval's pinned outputs, compared with a tolerance of some units in the last printed digit.

Reference models run on whatever CPU the book is built on, and CPUs here differ (AVX-512 with
native bfloat16, or AVX2 only): their kernels sum in other orders, so a probability moves in
its last bits and, on a few faces near a decision boundary, the predicted class changes. A
table of accuracies on 1,000 faces then differs by 0.1 or 0.2 points between machines, and
by up to 0.5 for a network that computes in bfloat16 (native on AVX-512 BF16, emulated with
other rounding on AVX2) on perturbed faces, and a recall on the 111 disgust test faces by 0.9
when one face changes class, while every fact it pins stays the same. So two outputs match
when their words are the same and each pair of printed decimals differs by at most
``LAST_DIGIT_UNITS`` units of its last digit (whole numbers, such as split sizes and counts,
must match exactly).
"""

from __future__ import annotations

import copy
import os
import re
from decimal import Decimal
from pathlib import Path

import nbformat
import pytest

LAST_DIGIT_UNITS = 10
# A decimal, optionally with an exponent (p-values such as 8e-10); whole numbers are words.
NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+")


def _words_and_decimals(text: str) -> tuple[list[str], list[str]]:
    words = [" ".join(part.split()) for part in NUMBER.split(text)]
    return words, NUMBER.findall(text)


def _close(test: str, reference: str) -> bool:
    if "e" in test or "e" in reference:  # p-values: the same order of magnitude, roughly
        a, b = abs(float(test)), abs(float(reference))
        return (a == b == 0) or (min(a, b) > 0 and max(a, b) / min(a, b) <= 3
                                 and (float(test) < 0) == (float(reference) < 0))
    places = max(-Decimal(test).as_tuple().exponent, -Decimal(reference).as_tuple().exponent)
    return abs(Decimal(test) - Decimal(reference)) <= LAST_DIGIT_UNITS * Decimal(10) ** -places


def numbers_match(test: str, reference: str) -> bool:
    """Whether two printed outputs differ only in decimals within the tolerance (and spacing)."""
    test_words, test_numbers = _words_and_decimals(test)
    reference_words, reference_numbers = _words_and_decimals(reference)
    return (test_words == reference_words and len(test_numbers) == len(reference_numbers)
            and all(_close(a, b) for a, b in zip(test_numbers, reference_numbers, strict=True)))


def without_stderr(outputs: list) -> list:
    """The outputs but the error stream: TensorFlow's start-up notices carry times and process
    ids, and no pinned fact is printed there."""
    return [output for output in outputs
            if not (output.get("output_type") == "stream" and output.get("name") == "stderr")]


def _tolerate(test_outputs: list, reference_outputs: list) -> None:
    """Replace each test text that matches its reference within the tolerance by the
    reference, so nbval's exact comparison sees them equal and reports real changes as before."""
    for test, reference in zip(test_outputs, reference_outputs, strict=False):
        for holder_test, holder_reference in ((test, reference),
                                              (test.get("data", {}), reference.get("data", {}))):
            for key, value in list(holder_test.items()):
                expected = holder_reference.get(key)
                if isinstance(value, str) and isinstance(expected, str) and value != expected \
                        and numbers_match(value, expected):
                    holder_test[key] = expected


def outputs_match(test_outputs: list, reference_outputs: list) -> bool:
    """Whether nbval, with this tolerance, passes ``test_outputs`` against the pinned
    ``reference_outputs``: every stream text and every display form (text/plain, text/html,
    ...) must match, so a column that appears only in an HTML table is a change."""
    test_outputs = without_stderr(test_outputs)
    reference_outputs = without_stderr(reference_outputs)
    if len(test_outputs) != len(reference_outputs):
        return False
    tolerated = copy.deepcopy(test_outputs)
    _tolerate(tolerated, reference_outputs)

    def compared(output: dict) -> tuple:  # what nbval compares: not counts, not metadata
        return (output.get("output_type"), output.get("name"), output.get("text"),
                dict(output.get("data", {})))

    return [compared(o) for o in tolerated] == [compared(o) for o in reference_outputs]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to adjust
        return
    if getattr(IPyNbCell.compare_outputs, "tolerant", False):
        return
    exact = IPyNbCell.compare_outputs

    def compare_outputs(self, test, ref, skip_compare=None):
        # a copy: the executed notebook keeps what this machine computed, not the reference
        test, ref = copy.deepcopy(without_stderr(test)), without_stderr(ref)
        _tolerate(test, ref)
        return exact(self, test, ref, skip_compare)

    compare_outputs.tolerant = True
    IPyNbCell.compare_outputs = compare_outputs


EXECUTED_VARIABLE = "FER_EXECUTED_NOTEBOOKS"


def pytest_runtest_teardown(item, nextitem):
    """With ``$FER_EXECUTED_NOTEBOOKS`` set, keep each executed cell's outputs and, after a
    chapter's last cell, write the executed chapter under that folder (same relative path).

    CI executes each chapter once, under nbval, and builds the book from these notebooks
    instead of executing every chapter a second time.
    """
    folder = os.environ.get(EXECUTED_VARIABLE)
    outputs = getattr(item, "test_outputs", None)
    if not folder or not hasattr(item, "cell"):
        return
    if outputs is not None:  # None: nbval skipped the cell
        item.cell.outputs = [nbformat.from_dict(output) for output in outputs]
        item.cell.execution_count = getattr(item, "cell_num", None)
    if nextitem is None or nextitem.parent is not item.parent:
        notebook = Path(str(item.parent.fspath)).resolve()
        target = Path(folder) / notebook.relative_to(Path.cwd().resolve())
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(item.parent.nb, target)
