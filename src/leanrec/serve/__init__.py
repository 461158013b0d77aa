"""Serving a saved model over HTTP (``leanrec serve MODEL``; needs ``pip install leanrec[serve]``).

* the model file is read once at start-up by :func:`leanrec.models.load_model`, which refuses
  a missing, truncated, foreign or newer-version file with a message that says which;
* :mod:`leanrec.serve.engine`: what is computed per model family, without HTTP (final
  embeddings precomputed; top-k of a batch of users in one product).
* :mod:`leanrec.serve.batcher`: concurrent callers' requests answered in one batch.
* :mod:`leanrec.serve.app`: the FastAPI routes and the uvicorn server; the only module that
  imports FastAPI, so the rest of leanrec does not need the extra.

The design and its measurements: ``docs/design/serving.md``.
"""

from leanrec.serve.engine import Engine, RequestError, build_engine

__all__ = ["Engine", "RequestError", "build_engine"]
