"""Reading model and checkpoint files, with one clear error for a file that cannot be one.

Every loader of a saved model or training checkpoint reads the file through
:func:`read_torch_file` (a ``torch.save`` dict) or checks it with :func:`check_safetensors`
(``leanrec compress`` output) first, so that a bad file gives a
:class:`~leanrec.data.errors.DataError` naming the file and what is wrong with it instead of
whatever torch or pickle raise:

* **missing** or **empty** (0 bytes);
* **truncated**: a torch zip archive without its end-of-archive index, or a safetensors file
  shorter than its header says (an interrupted save or copy);
* **damaged**: a torch zip archive whose members fail their CRC-32 checksums (bits changed
  after the save), or that torch cannot read;
* **foreign**: text (``notes.txt`` renamed ``.pt``), another binary format (the first bytes
  named: HDF5, NumPy, gzip, a safetensors file given to a ``.pt`` reader ...);
* **wrong version**: a leanrec format of another version than this leanrec reads
  (:func:`check_format_version`, e.g. ``leanrec.model/2`` from a newer leanrec).

Only torch and the standard library are imported here.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from leanrec.data.errors import DataError

__all__ = [
    "check_format_version",
    "check_safetensors",
    "describe_foreign_bytes",
    "read_torch_file",
]

_ZIP_START = b"PK\x03\x04"
_ZIP_END = b"PK\x05\x06"
_ZIP_END_SEARCH = 65_557
"""Bytes from the end within which a zip's end-of-archive record lies (22 + a 64 KiB comment)."""
_PICKLE_START = b"\x80"
"""Protocol byte of a pickle: torch's legacy (pre-zip) format."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89HDF", "an HDF5 file (Keras/h5py)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"%PDF", "a PDF document"),
    (b"PAR1", "a Parquet table"),
    (b"\x7fELF", "an executable"),
)


def torch_file_path(path: str | Path) -> Path:
    """``path`` checked as where a torch file (``.pt``) is to be written, its folder made.

    Raises:
        ValueError: ``path`` is a folder, or ends in ``.safetensors`` (that format is written
            by ``leanrec compress`` / :func:`~leanrec.models.compress.save_compressed`; a torch
            file under that name would not load).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give the model's file name (e.g. {path}/model.pt)")
    if path.suffix == ".safetensors":
        raise ValueError(
            f"{path}: this writes a torch file (.pt); a .safetensors file is a packed model "
            "written by leanrec compress (leanrec.models.compress.save_compressed)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def describe_foreign_bytes(head: bytes) -> str:
    """What a file that starts with ``head`` is, for an error message: ``"a text file
    (starts 'hello')"``, ``"an HDF5 file (Keras/h5py)"``, ``"a safetensors file"`` ... ."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file (name it .safetensors)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file (starts {first!r})"
    return f"an unknown binary format (first bytes {head[:8].hex(' ')})"


def _has_zip_end(path: Path, size: int) -> bool:
    with path.open("rb") as handle:
        handle.seek(max(0, size - _ZIP_END_SEARCH))
        return _ZIP_END in handle.read()


def _head(path: Path, what: str) -> tuple[bytes, int]:
    """The first 64 bytes of ``path`` and its size; DataError for a missing or empty file."""
    if path.is_dir():
        raise DataError(f"{what} expected, found a directory", path=path)
    if not path.is_file():
        raise DataError(f"{what} not found", path=path)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"empty {what} (0 bytes)", path=path)
    with path.open("rb") as handle:
        return handle.read(64), size


def _check_zip_checksums(path: Path, what: str) -> None:
    """Every member of a torch zip archive against its CRC-32 (torch itself does not check
    them, so a flipped bit would load as a wrong weight). A member stored with CRC 0 is not
    checked: ``torch.serialization.set_crc32_options(False)`` saves every member so."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if member.CRC == 0:
                    continue
                try:
                    with archive.open(member) as handle:  # the CRC is checked as it is read
                        while handle.read(1 << 22):
                            pass
                except zipfile.BadZipFile:
                    raise DataError(
                        f"damaged {what}: {member.filename} fails its checksum (the file "
                        "changed after it was saved); save or copy it again",
                        path=path,
                    ) from None
    except (zipfile.BadZipFile, OSError) as error:
        reason = f"its archive cannot be read ({error})"
        raise DataError(f"damaged {what}: {reason}", path=path) from None


def read_torch_file(path: str | Path, what: str = "model file") -> dict[str, Any]:
    """The dict a leanrec model or checkpoint file holds (``torch.load(weights_only=True)``).

    Args:
        path: the file.
        what: what the file should be, for messages (``"model file"``,
            ``"training checkpoint"``).

    Raises:
        DataError: the file is missing, empty, truncated, of another format, unreadable by
            torch, or holds no dict; the message names the file and which.
    """
    path = Path(path)
    head, size = _head(path, what)
    if head.startswith(_ZIP_START):
        if not _has_zip_end(path, size):
            raise DataError(
                f"truncated {what}: the archive stops after {size:,} bytes, before its index "
                "(an interrupted save or copy); save or copy it again",
                path=path,
            )
        _check_zip_checksums(path, what)
    elif not head.startswith(_PICKLE_START):
        raise DataError(
            f"not a {what}: this is {describe_foreign_bytes(head)}, not a file leanrec saved",
            path=path,
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises zip, pickle and unpickler errors of many types
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"damaged {what}: torch cannot read it ({reason})", path=path) from None
    if not isinstance(state, dict):
        raise DataError(
            f"not a {what}: it holds a {type(state).__name__}, not a leanrec checkpoint dict",
            path=path,
        )
    return state


def check_safetensors(path: str | Path, what: str = "compressed model file") -> None:
    """Check that ``path`` is a whole safetensors file before it is opened.

    Raises:
        DataError: missing, empty, foreign (no safetensors header), or truncated (shorter than
            its header and tensors say).
    """
    path = Path(path)
    head, size = _head(path, what)
    header_bytes = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if len(head) < 9 or head[8:9] != b"{":
        raise DataError(
            f"not a {what}: this is {describe_foreign_bytes(head)}, not a safetensors file",
            path=path,
        )
    if 8 + header_bytes > size:
        raise DataError(
            f"truncated {what}: its header needs {8 + header_bytes:,} bytes, the file has "
            f"{size:,}; save or copy it again",
            path=path,
        )
    with path.open("rb") as handle:
        handle.seek(8)
        try:
            header = json.loads(handle.read(header_bytes))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"damaged {what}: its header is no JSON", path=path) from None
    ends = [
        int(entry["data_offsets"][1])
        for entry in header.values()
        if isinstance(entry, dict) and "data_offsets" in entry
    ]
    needed = 8 + header_bytes + max(ends, default=0)
    if needed > size:
        raise DataError(
            f"truncated {what}: its tensors need {needed:,} bytes, the file has {size:,}; "
            "save or copy it again",
            path=path,
        )


def check_format_version(
    found: Any, readable: Sequence[str], path: str | Path, what: str = "model file"
) -> None:
    """Refuse a leanrec ``format`` string ``found`` that this leanrec cannot read.

    ``readable`` lists the formats the caller reads, ``"<name>/<version>"`` (or
    ``"<name>-v<version>"``). A ``found`` of a listed name with another version is refused as
    from a newer (or an older, unsupported) leanrec; anything else as no leanrec format.

    Raises:
        DataError: naming the file, the format found and the versions readable.
    """
    if found in readable:
        return
    found_name, found_version = _split_format(found)
    for known in readable:
        name, version = _split_format(known)
        if found_name is not None and name == found_name:
            newer = found_version is not None and version is not None and found_version > version
            by = "a newer leanrec" if newer else "another leanrec version"
            raise DataError(
                f"{what} of format {found!r}, written by {by}; this leanrec reads "
                f"{', '.join(repr(r) for r in readable if _split_format(r)[0] == name)}"
                + ("; upgrade leanrec to read it" if newer else ""),
                path=path,
            )
    raise DataError(f"not a leanrec {what} (format {found!r})", path=path)


def _split_format(text: Any) -> tuple[str | None, int | None]:
    """``"leanrec.model/1"`` -> ``("leanrec.model", 1)``; ``"leanrec-next-item-v1"`` ->
    ``("leanrec-next-item", 1)``; anything else -> ``(None, None)``."""
    if not isinstance(text, str) or not text.startswith("leanrec"):
        return None, None
    for separator in ("/", "-v"):
        name, found, version = text.rpartition(separator)
        if found and version.isdigit():
            return name, int(version)
    return text, None
