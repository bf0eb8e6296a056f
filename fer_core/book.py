"""Helpers for the book's notebooks."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd


def plain(value):
    """``value`` as a plain Python object: numpy scalars become int, float or str.

    myst-nb's ``{glue:text}`key:format``` role formats the *text* of a glued value, which
    ``literal_eval`` must be able to read back: ``np.float64(1.5)`` cannot be, ``1.5`` can.
    """
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value, display: bool = False) -> None:
    """Glue a number or a string computed in a chapter into its prose (``{glue:text}``),
    converted to a plain Python value so format specifications such as ``:.1f`` apply.

    Notes
    -----
    myst-nb is the book's extra, not a library dependency: a chapter run where it is absent
    (Colab, a plain Jupyter) has no prose to glue into, so the value is only shown when
    ``display`` asks for it.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(plain(value))
        return
    myst_glue(name, plain(value), display=display)


def in_words(values: Sequence, template: str = "{}") -> str:
    """``values`` as a phrase for prose: ``a``, ``a and b``, ``a, b and c``.

    Parameters
    ----------
    values : sequence
        What is listed, in order; each is written with ``template`` (e.g. ``"{:.1f}%"``).

    Raises
    ------
    ValueError
        When there is nothing to list.
    """
    words = [template.format(plain(value)) for value in values]
    if not words:
        raise ValueError("Nothing to list: pass at least one value.")
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


class FittedTable:
    """A table cut to fit the page, with the whole table one click away.

    Displays as HTML: the chosen columns and rows, rounded, then a collapsed ``<details>``
    holding every row and column. Its plain-text form (what nbval pins) is the cut table.
    """

    def __init__(self, shown: pd.DataFrame, full: pd.DataFrame):
        self.shown, self.full = shown, full

    def _repr_html_(self) -> str:
        rows, columns = self.full.shape
        # headers such as attention_unet_long2 may break after an underscore, so a table of
        # short numbers under long names stays as narrow as its numbers
        shown = re.sub(r"(<th[^>]*>)([^<]*)(</th>)",
                       lambda m: m[1] + m[2].replace("_", "_<wbr>") + m[3], self.shown.to_html())
        return (f"{shown}\n<details class=\"fer-full-table\"><summary>The full "
                f"table: {rows} rows, {columns} columns</summary><div>{self.full.to_html()}"
                "</div></details>")

    def __repr__(self) -> str:
        return self.shown.to_string()


def fit_table(frame: pd.DataFrame, columns: Sequence[str] | None = None,
              rows: int | None = None, digits: int = 1) -> FittedTable:
    """``frame`` cut to ``columns`` and its first ``rows`` rows, numbers rounded to ``digits``.

    Parameters
    ----------
    frame : pd.DataFrame
        The whole table (kept, rounded, behind a click).
    columns : sequence of str, optional
        The columns shown; all when omitted.
    rows : int, optional
        How many of the first rows are shown; all when omitted.

    Raises
    ------
    KeyError
        When a named column is not in ``frame`` (the message lists the ones there are).
    """
    columns = list(frame.columns if columns is None else columns)
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise KeyError(f"No column(s) {missing} in the table; it has {list(frame.columns)}.")
    rounded = frame.round(digits)
    return FittedTable(rounded.loc[:, columns].head(rows) if rows else rounded.loc[:, columns],
                       rounded)
