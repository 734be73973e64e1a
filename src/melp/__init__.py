"""melp: multi-scale ECG-language pretraining (MELP, ICML 2025).

Data stores and readers live in :mod:`melp.data`, the model in :mod:`melp.models`, the three
alignment losses in :mod:`melp.losses`, training in :mod:`melp.train` and evaluation in
:mod:`melp.eval`. The command line is ``melp`` (:mod:`melp.cli`).
"""

__version__ = "0.1.0"
