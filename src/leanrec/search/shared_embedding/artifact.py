"""The AutoAssign+ model file: the stream model with its assignment, for serving.

AutoAssign+'s assignment (each ID's position in the hierarchy, the level vectors, the unique
rows) is state of its :class:`~leanrec.embeddings.HierarchicalSharedEmbedding` tables, so the
experiment writes the plain stream model file of :mod:`leanrec.models.stream_io` (format
``"leanrec.stream_model/1"``). Serving needs neither the agent nor this package:
:func:`leanrec.models.load_model` reads the file (family ``"stream"``). The names stay
importable from here for the experiment and for code written against this package.

Example:
    >>> loaded = load_stream_model("runs/shared-embedding/model_autoassign_bce.pt")
    >>> loaded.predict({"user": ["u-never-seen"], "item": [1193]})  # level 1's vector
    array([0.61...])
"""

from __future__ import annotations

from leanrec.models.stream_io import (
    STREAM_MODEL_FORMAT,
    LoadedStreamModel,
    load_stream_model,
    save_stream_model,
)

__all__ = ["STREAM_MODEL_FORMAT", "LoadedStreamModel", "load_stream_model", "save_stream_model"]
