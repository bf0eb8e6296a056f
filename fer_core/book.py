"""Helpers for the book's notebooks."""

from __future__ import annotations

import numpy as np


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
