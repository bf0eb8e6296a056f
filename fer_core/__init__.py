"""fer_core: the library behind fer-book (facial expression recognition on FER-2013).

Modules are named after what they do: ``config`` (budget profiles, seeds, data location),
``data``, ``synthetic``, ``denoise``, ``outliers``, ``models``, ``train``, ``evaluate``,
``explain``, ``predict``, ``plots`` and ``cli``.
"""

__version__ = "0.1.0"
