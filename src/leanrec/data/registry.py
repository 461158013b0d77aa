"""Named datasets: where their files live, how to load them, and (where allowed) how to fetch them.

Data never ships with leanrec (most of these datasets forbid redistribution). A dataset named
``"gowalla"`` is expected in ``<data dir>/gowalla-lightgcn/``, where the data dir is, in order of
precedence: an explicit argument (the CLI's ``--data-dir``), the ``LEANREC_DATA`` environment
variable, or the per-user cache ``$XDG_CACHE_HOME/leanrec`` (default ``~/.cache/leanrec``).

Only the MovieLens archives have a public, checksummed source (GroupLens); :func:`download`
fetches them, verifies the checksums and extracts only the listed members. Everything else has
to be put in place by hand, and :func:`dataset_path` says exactly where and what.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders import (
    CTRTable,
    load_avazu,
    load_criteo,
    load_lightgcn_txt,
    load_movielens_1m,
    load_movielens_100k,
    load_user_sequences,
)
from leanrec.data.locations import ENV_VAR, resolve_data_dir
from leanrec.data.locations import user_cache_dir as user_cache_dir
from leanrec.data.own import DataFile

if TYPE_CHECKING:  # behaviour data import torch: loaded only when asked for
    from leanrec.data.behavior import BehaviorSplit

DatasetKind = Literal["ranking", "sequence", "ctr"]
LoaderName = Literal["movielens-100k", "movielens-1m", "lightgcn", "sequences", "criteo", "avazu"]


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one named dataset.

    Attributes:
        name: registry key, e.g. ``"ml-1m"``.
        folder: folder name under the data directory.
        files: files that must exist in ``folder`` for the dataset to count as present.
        description: one line on what the data is (origin, size, caveats).
        kind: ``"ranking"`` (user-item interactions), ``"sequence"`` (time-ordered
            per-user sequences) or ``"ctr"`` (labelled feature rows).
        loader: which loader reads ``folder`` (see :func:`load_dataset`).
        main_file: for single-file loaders (sequences, CTR), the file :func:`load_dataset` reads.
        url: public archive to download, or ``None`` when there is no automatic source.
        sha256: expected SHA-256 of the archive, when one is published.
        md5: expected MD5 of the archive as published by the data owner (GroupLens publishes
            only MD5); used when ``sha256`` is ``None``.
        members: ``(member path inside the archive, file name in folder)`` pairs to extract;
            nothing else in the archive is written.
        member_sha256: ``(file name, SHA-256)`` pairs checked for extracted members before they
            are moved into ``folder``.
    """

    name: str
    folder: str
    files: tuple[str, ...]
    description: str
    kind: DatasetKind
    loader: LoaderName
    main_file: str | None = None
    url: str | None = None
    sha256: str | None = None
    md5: str | None = None
    members: tuple[tuple[str, str], ...] = ()
    member_sha256: tuple[tuple[str, str], ...] = ()

    @property
    def downloadable(self) -> bool:
        return self.url is not None


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="ml-100k",
            folder="movielens-100k",
            files=("u.data", "u.item", "u.user"),
            description="MovieLens 100K (GroupLens): 100,000 ratings 1-5 with timestamps, "
            "943 users, 1,682 movies, user demographics and 19 genre flags.",
            kind="ranking",
            loader="movielens-100k",
            url=f"{_GROUPLENS}/ml-100k.zip",
            md5="0e33842e24a9c977be4e0107933c0723",
            members=(
                ("ml-100k/u.data", "u.data"),
                ("ml-100k/u.item", "u.item"),
                ("ml-100k/u.user", "u.user"),
                ("ml-100k/README", "README"),
            ),
            member_sha256=(
                ("u.data", "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"),
                ("u.item", "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701"),
                ("u.user", "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c"),
            ),
        ),
        DatasetInfo(
            name="ml-1m",
            folder="movielens-1m-ratings",
            files=("ratings.dat",),
            description="MovieLens 1M, all 1,000,209 ratings, 6,040 users, 3,706 movies. The "
            "shared copy has no timestamps and item IDs are ranks; the GroupLens download "
            "has timestamps, MovieIDs, users.dat and movies.dat.",
            kind="ranking",
            loader="movielens-1m",
            url=f"{_GROUPLENS}/ml-1m.zip",
            md5="c4d9eecfca2ab87c1945afe126590906",
            members=(
                ("ml-1m/ratings.dat", "ratings.dat"),
                ("ml-1m/users.dat", "users.dat"),
                ("ml-1m/movies.dat", "movies.dat"),
                ("ml-1m/README", "README"),
            ),
            member_sha256=(
                ("movies.dat", "0140fc2356357c1a851d0f52e893a1e4d3696df632c4141cea8d5bc3d621f0b9"),
                ("users.dat", "1dc3a95300cb19f7c10e027daf29b8cdf1d908dab65b5edfb45950aa389a10a3"),
            ),
        ),
        DatasetInfo(
            name="ml-1m-partial",
            folder="movielens-1m-partial",
            files=("ratings.first487650.dat", "users.dat", "movies.dat"),
            description="MovieLens 1M, INCOMPLETE: the first 487,650 ratings (users 1-2999, "
            "complete per user, with timestamps) plus the full users.dat and movies.dat.",
            kind="ranking",
            loader="movielens-1m",
        ),
        DatasetInfo(
            name="ml-1m-lightgcn",
            folder="movielens-1m-lightgcn-format",
            files=("train.txt", "test.txt"),
            description="MovieLens 1M as implicit feedback, LCFN/UltraGCN split: 6,022 users, "
            "3,043 items, 796,244 train / 99,455 test; 0-based remapped IDs.",
            kind="ranking",
            loader="lightgcn",
        ),
        DatasetInfo(
            name="gowalla",
            folder="gowalla-lightgcn",
            files=("train.txt", "test.txt"),
            description="Gowalla check-ins, NGCF/LightGCN 10-core 80/20 split: 29,858 users, "
            "40,981 items, 810,128 train / 217,242 test.",
            kind="ranking",
            loader="lightgcn",
        ),
        DatasetInfo(
            name="yelp2018",
            folder="yelp2018-lightgcn",
            files=("train.txt", "test.txt"),
            description="Yelp2018, NGCF/LightGCN version (train.txt / test.txt).",
            kind="ranking",
            loader="lightgcn",
        ),
        DatasetInfo(
            name="amazon-book",
            folder="amazon-book-lightgcn",
            files=("train.txt", "test.txt"),
            description="Amazon-Book, NGCF/LightGCN version (train.txt / test.txt).",
            kind="ranking",
            loader="lightgcn",
        ),
        DatasetInfo(
            name="beauty",
            folder="beauty-bert4rec",
            files=("beauty.txt",),
            description="Amazon Beauty 2014, BERT4Rec preprocessing: 40,226 users, 54,542 "
            "items, 353,962 interactions as time-ordered 'user item' pairs.",
            kind="sequence",
            loader="sequences",
            main_file="beauty.txt",
        ),
        DatasetInfo(
            name="beauty-s3rec",
            folder="beauty-s3rec",
            files=("Beauty.txt",),
            description="Amazon Beauty 2014, 5-core S3Rec/ICLRec preprocessing: 22,363 users, "
            "12,101 items, 198,502 interactions, one user sequence per line.",
            kind="sequence",
            loader="sequences",
            main_file="Beauty.txt",
        ),
        DatasetInfo(
            name="criteo-sample",
            folder="criteo-sample",
            files=("criteo_sample.txt",),
            description="Criteo DAC, DeepCTR's 200-row sample (CSV with header).",
            kind="ctr",
            loader="criteo",
            main_file="criteo_sample.txt",
        ),
        DatasetInfo(
            name="criteo-8k",
            folder="criteo-8k",
            files=("train.tsv", "dev.tsv", "test.tsv"),
            description="Criteo DAC, 8,000 rows split 7,200 / 409 / 391 (TSV, no header).",
            kind="ctr",
            loader="criteo",
            main_file="train.tsv",
        ),
        DatasetInfo(
            name="avazu-sample",
            folder="avazu-sample",
            files=("avazu_sample.txt", "avazu_sample_1000.txt"),
            description="Avazu CTR samples: 100 rows (DeepCTR) and 999 rows (CSV with header).",
            kind="ctr",
            loader="avazu",
            main_file="avazu_sample_1000.txt",
        ),
        DatasetInfo(
            name="avazu-9k",
            folder="avazu-9k",
            files=("train.csv", "dev.csv", "test.csv"),
            description="Avazu CTR, 8,999 rows split 8,087 / 480 / 432 (only train.csv has a "
            "header).",
            kind="ctr",
            loader="avazu",
            main_file="train.csv",
        ),
    )
}
"""All known datasets by name."""


@dataclass(frozen=True)
class BehaviorDatasetInfo:
    """A CTR-with-behaviour-sequence dataset *built* from a registered raw dataset.

    Attributes:
        name: name for :func:`load_behavior_dataset`, e.g. ``"ml-1m-ctr"``.
        source: registry name of the raw files it is built from.
        description: one line on what it is.
    """

    name: str
    source: str
    description: str


BEHAVIOR_DATASETS: dict[str, BehaviorDatasetInfo] = {
    info.name: info
    for info in (
        BehaviorDatasetInfo(
            name="ml-1m-ctr",
            source="ml-1m-partial",
            description="ML-1M ratings as CTR samples (label rating >= 4) with user/movie "
            "fields, genres and the previous 50 rated items; per-user temporal 80/10/10 split "
            "(see leanrec.data.loaders.movielens_ctr.build_movielens_ctr).",
        ),
    )
}
"""Derived behaviour-sequence datasets by name (built and cached on first use)."""


# ------------------------------------------------------------------------------ locations
def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; :class:`DataError` listing known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        if name in BEHAVIOR_DATASETS:
            raise DataError(
                f"dataset {name!r} is built from {BEHAVIOR_DATASETS[name].source!r} as CTR "
                f"samples with behaviour sequences; use load_behavior_dataset({name!r})"
            ) from None
        known = ", ".join(sorted(DATASETS))
        hint = ""
        if Path(name).suffix.lower() in (".csv", ".tsv", ".parquet", ".txt", ".dat"):
            hint = (
                f"; a file of your own is read as DataFile({name!r}, user_col=..., "
                "item_col=...) (leanrec.api.DataFile; on the command line --data FILE)"
            )
        raise DataError(f"unknown dataset {name!r}; known datasets: {known}{hint}") from None


def _missing_files(folder: Path, info: DatasetInfo) -> list[str]:
    return [f for f in info.files if not (folder / f).is_file()]


def dataset_path(name: str, data_dir: str | Path | None = None) -> Path:
    """Folder of dataset ``name`` after checking its required files are there.

    Raises:
        DataError: unknown name, or missing folder/files; the message names the folder, the
            expected and missing files, and how to provide them (``LEANREC_DATA``,
            ``--data-dir``, or :func:`download` when the dataset has a public source).
    """
    info = dataset_info(name)
    root = resolve_data_dir(data_dir)
    folder = root / info.folder
    missing = _missing_files(folder, info)
    if not missing:
        return folder
    how = (
        f"run `leanrec.data.registry.download({name!r})` to fetch it from {info.url}"
        if info.downloadable
        else "there is no public automatic source for it: copy the files there yourself"
    )
    raise DataError(
        f"dataset {name!r} not found: expected folder {folder} with {', '.join(info.files)} "
        f"(missing: {', '.join(missing)}). Point the data directory at a folder containing "
        f"{info.folder}/ with the environment variable {ENV_VAR}=DIR or --data-dir DIR "
        f"(data_dir= in Python), or {how}.",
        path=folder,
    )


def dataset_status(data_dir: str | Path | None = None) -> list[dict[str, object]]:
    """One row per registered dataset: ``name``, ``folder`` (full path), ``kind``,
    ``present`` (all required files exist), ``missing`` (list of absent file names) and
    ``downloadable``."""
    root = resolve_data_dir(data_dir)
    rows: list[dict[str, object]] = []
    for info in DATASETS.values():
        folder = root / info.folder
        missing = _missing_files(folder, info)
        rows.append(
            {
                "name": info.name,
                "folder": str(folder),
                "kind": info.kind,
                "present": not missing,
                "missing": missing,
                "downloadable": info.downloadable,
            }
        )
    return rows


# ------------------------------------------------------------------------------ loading
def load_dataset(
    name: str | DataFile, data_dir: str | Path | None = None
) -> Interactions | tuple[Interactions, Interactions]:
    """Load a registered ranking or sequence dataset with its loader, or a file of one's own
    (a :class:`~leanrec.data.own.DataFile`, read by its own settings; ``data_dir`` unused).

    Returns:
        * ranking / sequence datasets: one :class:`Interactions` (named ``name``);
        * LightGCN-format datasets (``ml-1m-lightgcn``, ``gowalla``, ``yelp2018``,
          ``amazon-book``): the fixed ``(train, test)`` pair over shared vocabularies.

    Raises:
        DataError: unknown or missing dataset (see :func:`dataset_path`), malformed files, or a
            CTR dataset (those are not interactions: use :func:`load_ctr_dataset`).
    """
    if isinstance(name, DataFile):
        return name.load()
    info = dataset_info(name)
    if info.kind == "ctr":
        raise DataError(
            f"dataset {name!r} is a CTR table, not user-item interactions; "
            f"use load_ctr_dataset({name!r})"
        )
    folder = dataset_path(name, data_dir)
    if info.loader == "movielens-100k":
        return load_movielens_100k(folder, name=info.name)
    if info.loader == "movielens-1m":
        return load_movielens_1m(folder, name=info.name)
    if info.loader == "lightgcn":
        return load_lightgcn_txt(folder, name=info.name)
    return load_user_sequences(folder / _main_file(info), name=info.name)


def load_ctr_dataset(name: str, data_dir: str | Path | None = None) -> CTRTable:
    """Load the training file (``main_file``) of a registered CTR dataset.

    Encode the other splits with the same vocabularies via
    ``table.encode_like(dataset_path(name) / "dev.tsv")``.

    Raises:
        DataError: unknown, missing or non-CTR dataset, or malformed file.
    """
    info = dataset_info(name)
    if info.kind != "ctr":
        raise DataError(f"dataset {name!r} is not a CTR dataset; use load_dataset({name!r})")
    main = dataset_path(name, data_dir) / _main_file(info)
    if info.loader == "criteo":
        return load_criteo(main, name=info.name)
    return load_avazu(main, name=info.name)


def load_behavior_dataset(
    name: str, data_dir: str | Path | None = None, **options: Any
) -> BehaviorSplit:
    """Build (or reload from its cache) a registered behaviour-sequence dataset.

    Args:
        name: a key of :data:`BEHAVIOR_DATASETS` (``"ml-1m-ctr"``).
        data_dir: the data directory holding the source dataset's folder.
        **options: passed to the builder, e.g. ``max_history``, ``valid_fraction``,
            ``test_fraction``, ``cache_dir`` (see
            :func:`leanrec.data.loaders.movielens_ctr.build_movielens_ctr`).

    Raises:
        DataError: unknown name (listing the known ones), or the builder's errors.
    """
    if name not in BEHAVIOR_DATASETS:
        known = ", ".join(sorted(BEHAVIOR_DATASETS))
        raise DataError(f"unknown behaviour dataset {name!r}; known: {known}")
    # imported here, not above: it imports torch, which the other datasets do not need
    from leanrec.data.loaders.movielens_ctr import build_movielens_ctr

    info = BEHAVIOR_DATASETS[name]
    return build_movielens_ctr(dataset_path(info.source, data_dir), name=info.name, **options)


def _main_file(info: DatasetInfo) -> str:
    if info.main_file is None:  # pragma: no cover - registry invariant, tested
        raise DataError(f"registry entry {info.name!r} has no main_file")
    return info.main_file


# ------------------------------------------------------------------------------ download
def _fetch(url: str, destination: Path) -> None:
    """Stream ``url`` (http(s) or file://) to ``destination``. Tests replace this function."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, destination.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DataError(f"download of {url} failed: {exc}", path=destination) from None


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file (``"sha256"``, ``"md5"``, ...), read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, info: DatasetInfo) -> None:
    """Check ``path`` against the archive checksum of ``info`` (SHA-256, else published MD5).

    Raises:
        DataError: the digest differs, or ``info`` has no checksum at all (never trusted).
    """
    if info.sha256 is not None:
        algorithm, expected = "sha256", info.sha256
    elif info.md5 is not None:
        algorithm, expected = "md5", info.md5
    else:
        raise DataError(f"refusing to use {info.url}: no checksum is registered for it", path=path)
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise DataError(
            f"checksum mismatch for {info.url}: {algorithm} is {actual}, expected {expected}; "
            "the download is corrupt or the file changed upstream, refusing to extract it",
            path=path,
        )


def _extract_members(archive: Path, info: DatasetInfo, staging: Path) -> list[Path]:
    """Extract exactly ``info.members`` into ``staging`` and check their SHA-256 when known."""
    expected_sha = dict(info.member_sha256)
    staged: list[Path] = []
    try:
        with zipfile.ZipFile(archive) as bundle:
            names = set(bundle.namelist())
            for member, target_name in info.members:
                if Path(target_name).name != target_name or target_name in ("", ".", ".."):
                    raise DataError(f"unsafe target file name {target_name!r} in registry")
                if member not in names:
                    raise DataError(f"archive has no member {member!r}", path=archive)
                target = staging / target_name
                with bundle.open(member) as source, target.open("wb") as out:
                    shutil.copyfileobj(source, out, length=1 << 20)
                if target_name in expected_sha:
                    actual = file_digest(target, "sha256")
                    if actual != expected_sha[target_name]:
                        raise DataError(
                            f"checksum mismatch for archive member {member!r}: sha256 is "
                            f"{actual}, expected {expected_sha[target_name]}; refusing to install",
                            path=archive,
                        )
                staged.append(target)
    except zipfile.BadZipFile as exc:
        raise DataError(f"not a valid zip archive: {exc}", path=archive) from None
    return staged


def download(name: str, data_dir: str | Path | None = None, force: bool = False) -> Path:
    """Fetch a dataset's public archive, verify it, and install the listed files.

    The archive goes to a temporary folder inside the data directory; its checksum is verified
    *before* anything is extracted, only the registered members are extracted (each checked
    against its SHA-256 when known), and they are moved into place only when all checks passed.

    Args:
        name: registry name (only ``ml-100k`` and ``ml-1m`` have a public source).
        data_dir: data directory (see :func:`resolve_data_dir`).
        force: download even if the files are already present.

    Returns:
        The dataset folder.

    Raises:
        DataError: no public automatic source for ``name``, network failure, checksum mismatch
            (nothing is installed), or a malformed archive.
    """
    info = dataset_info(name)
    if info.url is None:
        raise DataError(
            f"dataset {name!r} has no public automatic source (its licence or hosting does not "
            f"allow one); place {', '.join(info.files)} in <data dir>/{info.folder}/ yourself "
            f"and point {ENV_VAR} or --data-dir at the data dir"
        )
    root = resolve_data_dir(data_dir)
    folder = root / info.folder
    if not force and not _missing_files(folder, info):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{info.name}-download-") as tmp:
        work = Path(tmp)
        archive = work / Path(info.url).name
        _fetch(info.url, archive)
        verify_checksum(archive, info)
        staging = work / "staging"
        staging.mkdir()
        staged = _extract_members(archive, info, staging)
        folder.mkdir(parents=True, exist_ok=True)
        for path in staged:
            os.replace(path, folder / path.name)
    return folder
