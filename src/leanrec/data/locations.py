"""Where leanrec looks for data and keeps what it builds: the data directory and the user cache.

The data directory (the folder holding the dataset folders) is, in order of precedence: an
explicit argument (the CLI's ``--data-dir``), the ``LEANREC_DATA`` environment variable, or the
per-user cache ``$XDG_CACHE_HOME/leanrec`` (default ``~/.cache/leanrec``). The registry
(:mod:`leanrec.data.registry`) and the builders both read these, so they sit below both.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "resolve_data_dir", "user_cache_dir"]

ENV_VAR = "LEANREC_DATA"
"""Environment variable naming the data directory (the folder that holds the dataset folders)."""


def user_cache_dir() -> Path:
    """The per-user leanrec cache: ``$XDG_CACHE_HOME/leanrec`` (``~/.cache/leanrec`` when
    ``XDG_CACHE_HOME`` is unset). Nothing is created."""
    cache_home = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache_home).expanduser() if cache_home else Path.home() / ".cache"
    return base / "leanrec"


def resolve_data_dir(explicit: str | Path | None = None) -> Path:
    """The data directory: ``explicit`` > ``$LEANREC_DATA`` > :func:`user_cache_dir`
    (``$XDG_CACHE_HOME/leanrec``, ``~/.cache/leanrec`` when unset). Nothing is created."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    from_env = os.environ.get(ENV_VAR, "")
    if from_env:
        return Path(from_env).expanduser()
    return user_cache_dir()
