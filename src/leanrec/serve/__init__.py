"""Serving a saved model over HTTP (``leanrec serve MODEL``; needs ``pip install leanrec[serve]``).

* :mod:`leanrec.serve.files`: the model file is checked and read once at start-up; a missing,
  truncated, foreign or newer-version file is refused with a message that says which.
* :mod:`leanrec.serve.engine`: what is computed per model family, without HTTP (final
  embeddings precomputed; top-k of a batch of users in one product).
* :mod:`leanrec.serve.batcher`: concurrent callers' requests answered in one batch.
* :mod:`leanrec.serve.app`: the FastAPI routes and the uvicorn server; the only module that
  imports FastAPI, so the rest of leanrec does not need the extra.

The design and its measurements: ``docs/design/serving.md``.
"""

from leanrec.serve.engine import Engine, RequestError, build_engine
from leanrec.serve.files import check_model_file, read_model_file

__all__ = ["Engine", "RequestError", "build_engine", "check_model_file", "read_model_file"]
