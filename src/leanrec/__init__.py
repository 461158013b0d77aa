"""leanrec: automated, lightweight recommender systems.

One substrate (data, embedding tables, base models, training, full-ranking evaluation, memory
accounting) and one package per learned policy under :mod:`leanrec.search`.
"""

__version__ = "0.1.0"
