"""Glued values must be readable by myst-nb's glue:text formatting."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.book import in_words, plain


@pytest.mark.parametrize("value, spec, expected", [
    (np.float64(66.913), ".1f", "66.9"), (np.int64(22508), ",", "22,508"),
    (np.float32(0.5), ".0%", "50%"), ("vgg_cnn", "", "vgg_cnn"), (35887, ",", "35,887"),
    (np.float64(-0.4), "+.1f", "-0.4")])
def test_plain_values_format_like_myst_nb_does(value, spec, expected):
    myst_nb = pytest.importorskip("myst_nb.core.variables")
    text = repr(plain(value))  # what the glued text/plain output holds
    assert myst_nb.format_plain_text(text, spec) == expected
    if isinstance(value, np.generic):  # without the conversion, formatting fails
        with pytest.raises(ValueError):
            myst_nb.format_plain_text(repr(value), spec)


def test_glue_without_myst_nb_shows_only_what_is_asked(monkeypatch):
    """On Colab (no myst-nb) a chapter's glue calls must not fail."""
    import builtins
    import sys

    from fer_core import book

    real_import = builtins.__import__

    def no_myst_nb(name, *args, **kwargs):
        if name.startswith("myst_nb"):
            raise ImportError("No module named 'myst_nb'")
        return real_import(name, *args, **kwargs)

    shown = []
    monkeypatch.setattr(builtins, "__import__", no_myst_nb)
    monkeypatch.setitem(sys.modules, "IPython.display",
                        type(sys)("IPython.display"))
    sys.modules["IPython.display"].display = shown.append
    book.glue("hidden", np.float64(1.5))
    book.glue("shown", np.int64(3), display=True)
    assert shown == [3] and type(shown[0]) is int


def test_fit_table_shows_the_chosen_cut_and_keeps_the_whole_table():
    import pandas as pd

    from fer_core.book import fit_table

    frame = pd.DataFrame({"accuracy": [66.913, 61.54, 55.0], "macro_f1": [64.49, 56.8, 40.0],
                          "notes": ["a", "b", "c"]}, index=["vgg", "unet", "base"])
    table = fit_table(frame, ["accuracy"], rows=2)
    assert list(table.shown.columns) == ["accuracy"] and list(table.shown.index) == ["vgg", "unet"]
    assert table.shown.loc["vgg", "accuracy"] == 66.9
    assert repr(table) == table.shown.to_string()  # what nbval pins
    html = table._repr_html_()
    assert html.index("<details") > html.index("</table>")  # the cut first, the rest folded
    assert "3 rows, 3 columns" in html and "macro_f1" in html.split("<details")[1]
    with pytest.raises(KeyError, match="has \\['accuracy', 'macro_f1', 'notes'\\]"):
        fit_table(frame, ["recall"])


@pytest.mark.parametrize("values, expected", [
    ([np.float64(63.33)], "63.3%"), ([63.33, 64.25], "63.3% and 64.2%"),
    ([63.33, 64.25, 64.6, 65.0], "63.3%, 64.2%, 64.6% and 65.0%")])
def test_in_words_lists_values_as_prose(values, expected):
    assert in_words(values, "{:.1f}%") == expected


def test_in_words_refuses_an_empty_list():
    with pytest.raises(ValueError, match="Nothing to list"):
        in_words([])
