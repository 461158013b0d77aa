"""Registry: data-dir resolution, presence checks, loading by name, and checksum-verified
downloads. No test touches the network: ``_fetch`` is replaced for every test, and the download
tests use local ``file://`` archives."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from leanrec.data import registry
from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders import CTRTable
from leanrec.data.registry import (
    DATASETS,
    DatasetInfo,
    dataset_path,
    dataset_status,
    download,
    load_ctr_dataset,
    load_dataset,
    resolve_data_dir,
)

EXPECTED_FOLDERS = {
    "ml-100k": "movielens-100k",
    "ml-1m": "movielens-1m-ratings",
    "ml-1m-partial": "movielens-1m-partial",
    "ml-1m-lightgcn": "movielens-1m-lightgcn-format",
    "gowalla": "gowalla-lightgcn",
    "yelp2018": "yelp2018-lightgcn",
    "amazon-book": "amazon-book-lightgcn",
    "beauty": "beauty-bert4rec",
    "beauty-s3rec": "beauty-s3rec",
    "criteo-sample": "criteo-sample",
    "criteo-8k": "criteo-8k",
    "avazu-sample": "avazu-sample",
    "avazu-9k": "avazu-9k",
}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only file:// URLs may be fetched in tests."""
    real_fetch = registry._fetch

    def local_only(url: str, destination: Path) -> None:
        if not url.startswith("file://"):
            raise AssertionError(f"test tried to reach the network: {url}")
        real_fetch(url, destination)

    monkeypatch.setattr(registry, "_fetch", local_only)


# ------------------------------------------------------------------------------ data dir
def test_resolve_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LEANREC_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "leanrec"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "leanrec"
    monkeypatch.setenv("LEANREC_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir(str(tmp_path / "explicit")) == tmp_path / "explicit"
    assert not (tmp_path / "explicit").exists()  # resolution creates nothing


# ------------------------------------------------------------------------------ registry
def test_registry_entries() -> None:
    assert {name: info.folder for name, info in DATASETS.items()} == EXPECTED_FOLDERS
    for name, info in DATASETS.items():
        assert info.name == name and info.files and info.description
        assert info.kind in ("ranking", "sequence", "ctr")
        if info.loader in ("sequences", "criteo", "avazu"):
            assert info.main_file in info.files
        if info.downloadable:
            assert info.sha256 or info.md5
            assert {target for _, target in info.members} >= set(info.files)
    assert {n for n, i in DATASETS.items() if i.downloadable} == {"ml-100k", "ml-1m"}


def test_dataset_status_on_shared_data(shared_data: Path) -> None:
    rows = {row["name"]: row for row in dataset_status(shared_data)}
    assert set(rows) == set(DATASETS)
    absent = {name for name, row in rows.items() if not row["present"]}
    assert absent == {"yelp2018", "amazon-book"}
    assert rows["yelp2018"]["missing"] == ["train.txt", "test.txt"]
    assert rows["gowalla"]["missing"] == []
    assert rows["gowalla"]["folder"] == str(shared_data / "gowalla-lightgcn")


def test_dataset_path_missing_explains_how_to_provide(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        dataset_path("gowalla", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "gowalla-lightgcn") in message
    assert "train.txt, test.txt" in message
    assert "LEANREC_DATA" in message and "--data-dir" in message
    assert "no public automatic source" in message
    assert err.value.path == tmp_path / "gowalla-lightgcn"

    (tmp_path / "movielens-100k").mkdir()
    (tmp_path / "movielens-100k" / "u.data").write_text("1\t2\t3\t4\n")
    with pytest.raises(DataError, match=r"missing: u\.item, u\.user.*download\('ml-100k'\)"):
        dataset_path("ml-100k", tmp_path)

    with pytest.raises(DataError, match="unknown dataset 'ml-20m'; known datasets: amazon-book"):
        dataset_path("ml-20m", tmp_path)


def test_dataset_path_uses_env(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    monkeypatch.setenv("LEANREC_DATA", str(shared_data))
    assert dataset_path("beauty") == shared_data / "beauty-bert4rec"


# ------------------------------------------------------------------------------ loading
def test_load_dataset_by_name(shared_data: Path) -> None:
    ml = load_dataset("ml-100k", shared_data)
    assert isinstance(ml, Interactions)
    assert (len(ml), ml.n_users, ml.n_items, ml.name) == (100_000, 943, 1_682, "ml-100k")

    partial = load_dataset("ml-1m-partial", shared_data)
    assert isinstance(partial, Interactions) and partial.n_users == 2_999

    pair = load_dataset("ml-1m-lightgcn", shared_data)
    assert isinstance(pair, tuple)
    train, test = pair
    assert (len(train), len(test)) == (796_244, 99_455)

    seq = load_dataset("beauty-s3rec", shared_data)
    assert isinstance(seq, Interactions) and len(seq) == 198_502

    ctr = load_ctr_dataset("avazu-9k", shared_data)
    assert isinstance(ctr, CTRTable) and len(ctr) == 8_087
    dev = ctr.encode_like(dataset_path("avazu-9k", shared_data) / "dev.csv")
    assert len(dev) == 480
    assert len(load_ctr_dataset("criteo-8k", shared_data)) == 7_200

    with pytest.raises(DataError, match=r"CTR table.*load_ctr_dataset\('criteo-8k'\)"):
        load_dataset("criteo-8k", shared_data)
    with pytest.raises(DataError, match="not a CTR dataset"):
        load_ctr_dataset("gowalla", shared_data)

    with pytest.raises(DataError, match="yelp2018-lightgcn"):
        load_dataset("yelp2018", shared_data)


# ------------------------------------------------------------------------------ download
def make_archive(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


U_DATA = b"1\t10\t4\t100\n2\t10\t5\t101\n2\t11\t3\t102\n"
U_USER = b"1|24|M|technician|85711\n2|53|F|other|94043\n"


def fake_ml100k(tmp_path: Path, **changes: object) -> tuple[DatasetInfo, Path]:
    archive = make_archive(
        tmp_path / "fake-ml-100k.zip",
        {
            "ml-100k/u.data": U_DATA,
            "ml-100k/u.user": U_USER,
            "ml-100k/evil.txt": b"not listed, never extracted",
        },
    )
    info = DatasetInfo(
        name="fake-ml",
        folder="fake-ml-100k",
        files=("u.data", "u.user"),
        description="test archive",
        kind="ranking",
        loader="movielens-100k",
        url=archive.as_uri(),
        sha256=sha256_of(archive),
        members=(("ml-100k/u.data", "u.data"), ("ml-100k/u.user", "u.user")),
        member_sha256=(("u.data", hashlib.sha256(U_DATA).hexdigest()),),
    )
    return replace(info, **changes), archive  # type: ignore[arg-type]


def test_download_verifies_and_extracts_listed_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, _ = fake_ml100k(tmp_path)
    monkeypatch.setitem(DATASETS, info.name, info)
    data_dir = tmp_path / "data"
    folder = download(info.name, data_dir)
    assert folder == data_dir / "fake-ml-100k"
    assert sorted(p.name for p in folder.iterdir()) == ["u.data", "u.user"]  # evil.txt skipped
    assert (folder / "u.data").read_bytes() == U_DATA
    assert [p.name for p in data_dir.iterdir()] == ["fake-ml-100k"]  # temp files cleaned up
    loaded = load_dataset(info.name, data_dir)
    assert isinstance(loaded, Interactions) and len(loaded) == 3
    assert loaded.side["users"].loc[2, "age"] == 53

    # already present: nothing is fetched again
    monkeypatch.setattr(registry, "_fetch", lambda url, dest: pytest.fail("fetched again"))
    assert download(info.name, data_dir) == folder


def test_download_refuses_on_checksum_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, _ = fake_ml100k(tmp_path, sha256="0" * 64)
    monkeypatch.setitem(DATASETS, info.name, info)
    with pytest.raises(DataError, match=r"checksum mismatch.*refusing"):
        download(info.name, tmp_path / "data")
    assert not (tmp_path / "data" / "fake-ml-100k").exists()
    assert list((tmp_path / "data").iterdir()) == []

    md5_only, archive = fake_ml100k(tmp_path, sha256=None, md5="f" * 32)
    monkeypatch.setitem(DATASETS, md5_only.name, md5_only)
    with pytest.raises(DataError, match="md5 is"):
        download(md5_only.name, tmp_path / "data")
    good_md5 = replace(md5_only, md5=hashlib.md5(archive.read_bytes()).hexdigest())
    monkeypatch.setitem(DATASETS, good_md5.name, good_md5)
    assert (download(good_md5.name, tmp_path / "data") / "u.data").is_file()

    no_checksum, _ = fake_ml100k(tmp_path, sha256=None, md5=None)
    monkeypatch.setitem(DATASETS, no_checksum.name, no_checksum)
    with pytest.raises(DataError, match="no checksum"):
        download(no_checksum.name, tmp_path / "other", force=True)


def test_download_refuses_on_member_mismatch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, _ = fake_ml100k(tmp_path, member_sha256=(("u.data", "1" * 64),))
    monkeypatch.setitem(DATASETS, info.name, info)
    with pytest.raises(DataError, match=r"archive member 'ml-100k/u.data'"):
        download(info.name, tmp_path / "data")
    assert not (tmp_path / "data" / "fake-ml-100k").exists()


def test_download_real_entry_with_patched_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real ml-100k entry: a tampered archive is refused against GroupLens' checksum."""
    tampered = make_archive(tmp_path / "tampered.zip", {"ml-100k/u.data": U_DATA})
    fetched: list[str] = []

    def fake_fetch(url: str, destination: Path) -> None:
        fetched.append(url)
        shutil.copyfile(tampered, destination)

    monkeypatch.setattr(registry, "_fetch", fake_fetch)
    with pytest.raises(DataError, match="checksum mismatch"):
        download("ml-100k", tmp_path / "data")
    assert fetched == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert not (tmp_path / "data" / "movielens-100k").exists()


def test_download_without_public_source(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no public automatic source"):
        download("gowalla", tmp_path)
    with pytest.raises(DataError, match="no public automatic source"):
        download("criteo-8k", tmp_path)


def test_download_bad_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_zip = tmp_path / "not.zip"
    not_zip.write_bytes(b"plain text")
    info, _ = fake_ml100k(tmp_path)
    info = replace(info, url=not_zip.as_uri(), sha256=sha256_of(not_zip))
    monkeypatch.setitem(DATASETS, info.name, info)
    with pytest.raises(DataError, match="not a valid zip"):
        download(info.name, tmp_path / "data")
    missing = replace(info, url=(tmp_path / "absent.zip").as_uri())
    monkeypatch.setitem(DATASETS, missing.name, missing)
    with pytest.raises(DataError, match=r"download of .* failed"):
        download(missing.name, tmp_path / "data")
