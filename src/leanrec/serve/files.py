"""Read a model file for serving, refusing a bad one at start-up with a message that says why.

A server that starts on a bad file fails on its first request instead, or worse, serves wrong
answers; so :func:`read_model_file` looks at the file before :func:`~leanrec.models.load_model`
does and tells the four ways a file goes wrong apart:

* **missing**: no such file;
* **truncated**: a torch zip archive without its end-of-archive record, or a safetensors file
  shorter than its header says (a copy that stopped early);
* **foreign**: neither a torch archive nor a safetensors file (a text file, a pickle), or one that
  holds no leanrec model (no ``format`` key, or another program's);
* **newer**: a leanrec model format of a higher version than this leanrec reads
  (``leanrec.model/2`` where ``leanrec.model/1`` is known).

Only files that pass reach :func:`~leanrec.models.load_model`; its own error (a ``DataError``
naming the file) is passed on for anything else.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

from leanrec.data.errors import DataError
from leanrec.models.base import CHECKPOINT_FORMAT
from leanrec.models.compress import COMPRESSED_FORMAT
from leanrec.models.ctr.base import CTR_CHECKPOINT_FORMAT
from leanrec.models.loading import LoadedModel, load_model
from leanrec.models.stream_io import STREAM_MODEL_FORMAT

__all__ = ["KNOWN_FORMATS", "check_model_file", "read_model_file"]

KNOWN_FORMATS: dict[str, int] = {}
"""Newest version this leanrec reads, by format name (``"leanrec.model"`` -> 1)."""
for _known in (CHECKPOINT_FORMAT, CTR_CHECKPOINT_FORMAT, STREAM_MODEL_FORMAT, COMPRESSED_FORMAT):
    _name, _version = _known.rsplit("/", 1)
    KNOWN_FORMATS[_name] = int(_version)

_VERSIONED = re.compile(r"^(?P<name>leanrec\.[\w.]+)/(?P<version>\d+)$")
_ZIP_LOCAL_HEADER = b"PK\x03\x04"
_ZIP_END_OF_ARCHIVE = b"PK\x05\x06"
_ZIP_TAIL = 22 + 65_535
"""The end-of-archive record (22 bytes) sits within the last 22 + 65,535 (comment) bytes."""


def _newer(kind: Any) -> str | None:
    """A message when ``kind`` is a leanrec format of a version above the one known, else None."""
    match = _VERSIONED.match(str(kind))
    if match is None or match["name"] not in KNOWN_FORMATS:
        return None
    known = KNOWN_FORMATS[match["name"]]
    if int(match["version"]) <= known:
        return None
    return (
        f"written by a newer leanrec (format {kind!r}; this leanrec reads up to "
        f"{match['name']}/{known}): upgrade leanrec to serve it"
    )


def _check_safetensors(path: Path, size: int) -> None:
    """Header length (8 bytes, little-endian), JSON header, then the tensors' bytes."""
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise DataError(f"truncated model file ({size} bytes, no safetensors header)", path)
        (header_length,) = struct.unpack("<Q", head)
        if header_length > size - 8:
            if header_length > 100_000_000:
                raise DataError("not a leanrec model file (no safetensors header)", path)
            raise DataError(
                f"truncated model file (header of {header_length} bytes, file of {size})", path
            )
        try:
            header = json.loads(handle.read(header_length))
        except ValueError as error:
            raise DataError(
                "not a leanrec model file (unreadable safetensors header)", path
            ) from error
    if not isinstance(header, dict):
        raise DataError("not a leanrec model file (unreadable safetensors header)", path)
    data_end = max(
        (entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"),
        default=0,
    )
    if 8 + header_length + data_end > size:
        raise DataError(
            f"truncated model file ({size} bytes; its header lists {8 + header_length + data_end})",
            path,
        )
    metadata = header.get("__metadata__") or {}
    if "leanrec" not in metadata:
        raise DataError(
            "not a leanrec model file (a safetensors file without leanrec header)", path
        )
    kind = json.loads(metadata["leanrec"]).get("compressed_format")
    newer = _newer(kind)
    if newer:
        raise DataError(newer, path)


def _check_torch_archive(path: Path, size: int) -> None:
    """A torch file is a zip archive: a local header first, the end-of-archive record last."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head != _ZIP_LOCAL_HEADER:
            raise DataError(
                "not a leanrec model file (neither a torch archive nor a safetensors file)", path
            )
        handle.seek(max(0, size - _ZIP_TAIL))
        tail = handle.read()
    if _ZIP_END_OF_ARCHIVE not in tail:
        raise DataError(f"truncated model file ({size} bytes; the archive has no end)", path)


def check_model_file(path: str | Path) -> Path:
    """Refuse a missing, truncated or foreign file before it is read (see the module docstring).

    Returns:
        ``path`` as a Path.

    Raises:
        DataError: naming the file and which of missing, truncated or foreign it is.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("model file not found (missing file)", path)
    if not path.is_file():
        raise DataError("not a model file (a directory)", path)
    size = path.stat().st_size
    if size == 0:
        raise DataError("truncated model file (0 bytes)", path)
    if path.suffix == ".safetensors":
        _check_safetensors(path, size)
    else:
        _check_torch_archive(path, size)
    return path


def read_model_file(path: str | Path) -> LoadedModel:
    """:func:`check_model_file`, then :func:`~leanrec.models.load_model`; a file whose format is
    a newer version of a leanrec format is named as such.

    Raises:
        DataError: the file is missing, truncated, foreign or newer (which is said), or
            :func:`~leanrec.models.load_model` cannot read it.
    """
    path = check_model_file(path)
    try:
        return load_model(path)
    except DataError as error:
        newer = _newer_torch_format(path)
        if newer:
            raise DataError(newer, path) from error
        raise


def _newer_torch_format(path: Path) -> str | None:
    """The :func:`_newer` message of a torch file's ``format`` key, if it has one."""
    if path.suffix == ".safetensors":
        return None
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # already reported by load_model
        return None
    return _newer(state.get("format")) if isinstance(state, dict) else None
