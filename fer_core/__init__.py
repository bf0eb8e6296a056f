"""fer_core: the library behind fer-book (facial expression recognition on FER-2013).

Modules are named after what they do: ``config`` (budget profiles, seeds, data location),
``data``, ``synthetic``, ``denoise``, ``outliers``, ``models``, ``train``, ``evaluate``,
``calibrate``, ``compare`` (literature and peer), ``explain``, ``predict``, ``plots`` and ``cli``.
"""

import os

# TensorFlow prints pages of CUDA-driver notices on CPU machines; keep chapters readable.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
