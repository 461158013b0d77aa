"""ML-1M CTR samples with behaviour sequences (``leanrec.data.behavior`` and
``leanrec.data.loaders.movielens_ctr``).

A hand-written 4-user dataset pins every array exactly (history content and right alignment,
tie order, labels, split membership, zip prefix, year, genre table); the real ml-1m-partial copy
checks counts, split fractions, the no-leakage invariant against the raw file, and the cache.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data import registry
from leanrec.data.behavior import (
    BehaviorSamples,
    BehaviorSplit,
    FeatureMap,
    FieldSpec,
    right_aligned_history,
    temporal_split_counts,
)
from leanrec.data.errors import DataError
from leanrec.data.loaders import load_movielens_1m, read_ml1m_movies
from leanrec.data.loaders.movielens_ctr import ML1M_CTR_FIELDS, build_movielens_ctr
from leanrec.data.registry import load_behavior_dataset, load_dataset

# ---------------------------------------------------------------------------------- tiny data
# users.dat: user 5 has no ratings (as in ml-1m-partial); user 4 has no zip code.
USERS = """1::F::1::10::48067
2::M::56::16::70072
3::M::25::15::T8H1N
4::F::45::7::
5::M::35::20::48105
"""
# movies.dat: 40 has no year in its title, 50 is never rated but still gets an ID.
MOVIES = """10::Toy Story (1995)::Animation|Children's|Comedy
20::Heat (1995)::Action|Crime|Thriller
30::Sabrina (1954)::Comedy|Romance
40::Untitled::Drama
50::Never Rated (2000)::Documentary
"""
# ratings (file row in the comment). User 2's rows 0 and 3 share t=300: file order decides.
RATINGS = """2::20::5::300
1::30::4::200
1::10::5::100
2::10::3::300
1::20::2::150
2::40::1::100
1::40::3::400
1::50::4::500
3::10::1::50
3::30::5::60
4::20::4::10
"""
# Codes: item 10->1 20->2 30->3 40->4 50->5; year 1954->1 1995->2 2000->3 (none->0);
# gender F->1 M->2; age 1->1 25->2 35->3 45->4 56->5; occupation 7->1 10->2 15->3 16->4 20->5;
# zip prefix "48"->1 "70"->2 "T8"->3 (empty->0); genres by sorted name: Action 1, Animation 2,
# Children's 3, Comedy 4, Crime 5, Documentary 6, Drama 7, Romance 8, Thriller 9.
USER_CODES = {1: [1, 1, 1, 2, 1], 2: [2, 2, 5, 4, 2], 3: [3, 2, 2, 3, 3], 4: [4, 1, 4, 1, 0]}
ITEM_CODES = {10: [1, 2], 20: [2, 2], 30: [3, 1], 40: [4, 0], 50: [5, 3]}

# Per user in time order -- user 1: rows 2, 4, 1 | 6 | 7 (5 ratings: 3 train, 1 valid, 1 test);
# user 2: row 5 | 0 | 3 (tie: row 0 before row 3); users 3 and 4 (< 3 ratings): train only.
# Each sample: (user, item, label, timestamp, history with max_history=3, length).
EXPECTED = {
    "train": [
        (1, 10, 1.0, 100, [0, 0, 0], 0),
        (1, 20, 0.0, 150, [0, 0, 1], 1),
        (1, 30, 1.0, 200, [0, 1, 2], 2),
        (2, 40, 0.0, 100, [0, 0, 0], 0),
        (3, 10, 0.0, 50, [0, 0, 0], 0),
        (3, 30, 1.0, 60, [0, 0, 1], 1),
        (4, 20, 1.0, 10, [0, 0, 0], 0),
    ],
    "valid": [
        (1, 40, 0.0, 400, [1, 2, 3], 3),
        (2, 20, 1.0, 300, [0, 0, 4], 1),
    ],
    "test": [
        (1, 50, 1.0, 500, [2, 3, 4], 3),  # 4 earlier ratings, the oldest is cut
        (2, 10, 0.0, 300, [0, 4, 2], 2),  # row 0 (same second, earlier line) is history
    ],
}
EXPECTED_TAGS = [
    [0, 0, 0],
    [2, 3, 4],  # Toy Story: Animation, Children's, Comedy
    [1, 5, 9],  # Heat: Action, Crime, Thriller
    [4, 8, 0],
    [7, 0, 0],
    [6, 0, 0],
]


def write_ml1m(
    folder: Path,
    ratings: str = RATINGS,
    users: str | None = USERS,
    movies: str | None = MOVIES,
    ratings_name: str = "ratings.dat",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ratings_name).write_text(ratings)
    if users is not None:
        (folder / "users.dat").write_text(users)
    if movies is not None:
        (folder / "movies.dat").write_bytes(movies.encode("latin-1"))
    return folder


@pytest.fixture()
def tiny(tmp_path: Path) -> BehaviorSplit:
    return build_movielens_ctr(folder=write_ml1m(tmp_path / "ml"), max_history=3, cache=False)


# ---------------------------------------------------------------------------------- exact arrays
def test_tiny_arrays_exact(tiny: BehaviorSplit) -> None:
    for part, rows in EXPECTED.items():
        samples = tiny.parts()[part]
        assert len(samples) == len(rows), part
        sparse = [USER_CODES[u] + ITEM_CODES[i] for u, i, *_ in rows]
        np.testing.assert_array_equal(samples.sparse, sparse, err_msg=part)
        np.testing.assert_array_equal(samples.labels, [r[2] for r in rows], err_msg=part)
        np.testing.assert_array_equal(samples.timestamps, [r[3] for r in rows], err_msg=part)
        np.testing.assert_array_equal(samples.history_items, [r[4] for r in rows], err_msg=part)
        np.testing.assert_array_equal(samples.history_length, [r[5] for r in rows], err_msg=part)
        assert samples.sparse.dtype == np.int64 and samples.history_items.dtype == np.int32
        assert samples.labels.dtype == np.float32 and samples.history_length.dtype == np.int64
        assert samples.name == f"ml-1m-ctr:{part}"
    np.testing.assert_array_equal(tiny.item_tags, EXPECTED_TAGS)
    assert tiny.item_tags.dtype == np.int64
    assert tiny.valid.item_tags is tiny.train.item_tags is tiny.test.item_tags


def test_tiny_feature_map(tiny: BehaviorSplit) -> None:
    fmap = tiny.feature_map
    assert [f.name for f in fmap.categorical] == list(ML1M_CTR_FIELDS)
    assert [(f.name, f.vocab_size) for f in fmap.categorical] == [
        ("user_id", 5),  # 4 users with ratings + padding (user 5 has none)
        ("gender", 3),
        ("age", 6),
        ("occupation", 6),
        ("zip", 4),
        ("item_id", 6),  # every movie of movies.dat, rated or not
        ("year", 4),
    ]
    assert fmap.field("genres") == FieldSpec("genres", "multi_hot", 10)
    assert fmap.field("history") == FieldSpec("history", "sequence", 6, "item_id")
    assert (fmap.max_history, fmap.max_tags, fmap.target_field, fmap.tag_field) == (
        3,
        3,
        "item_id",
        "genres",
    )
    for part in tiny.parts().values():
        for column, spec in enumerate(fmap.categorical):
            assert part.sparse[:, column].max() < spec.vocab_size


def test_feature_map_json_round_trip(tiny: BehaviorSplit, tmp_path: Path) -> None:
    fmap = tiny.feature_map
    again = FeatureMap.from_json(fmap.to_json())
    assert again == fmap and again.fields[-1].shares_vocabulary_with == "item_id"
    assert FeatureMap.load(fmap.save(tmp_path / "fm.json")) == fmap
    assert json.loads(fmap.to_json())["fields"][0] == {
        "name": "user_id",
        "kind": "categorical",
        "vocab_size": 5,
        "shares_vocabulary_with": None,
    }
    with pytest.raises(DataError, match="feature map not found"):
        FeatureMap.load(tmp_path / "absent.json")


def test_batch_shapes_and_gathered_tags(tiny: BehaviorSplit) -> None:
    batch = tiny.test.batch(np.array([0, 1]))
    assert batch.sparse.shape == (2, 7) and batch.target_tags.shape == (2, 3)
    assert batch.history_items.shape == (2, 3) and batch.history_tags.shape == (2, 3, 3)
    assert batch.labels.dtype == torch.float32 and batch.history_items.dtype == torch.int64
    # targets: movie 50 (Documentary) and movie 10 (Animation, Children's, Comedy)
    assert batch.target_tags.tolist() == [[6, 0, 0], [2, 3, 4]]
    # user 2's test history [0, 40, 20]: padding row, Drama, Action|Crime|Thriller
    assert batch.history_tags[1].tolist() == [[0, 0, 0], [7, 0, 0], [1, 5, 9]]
    assert batch.history_mask.tolist() == [[True, True, True], [False, True, True]]
    sizes = [len(b) for b in tiny.train.batches(3, shuffle=True, rng=np.random.default_rng(0))]
    assert sizes == [3, 3, 1]


def test_tie_order_follows_file_order(tmp_path: Path) -> None:
    """Swapping user 2's two t=300 lines swaps which one sees the other in its history."""
    lines = RATINGS.splitlines()
    lines[0], lines[3] = lines[3], lines[0]
    split = build_movielens_ctr(
        folder=write_ml1m(tmp_path, "\n".join(lines) + "\n"), max_history=3, cache=False
    )
    # user 2 now: row 5 (item 40) | item 10 (valid) | item 20 (test)
    assert split.valid.sparse[1, 5] == 1 and split.valid.history_items[1].tolist() == [0, 0, 4]
    assert split.test.sparse[1, 5] == 2 and split.test.history_items[1].tolist() == [0, 4, 1]


def test_registry_folder_and_default_history(tmp_path: Path) -> None:
    """Through the registry name: the source folder is found under data_dir."""
    write_ml1m(tmp_path / "data" / "movielens-1m-partial", ratings_name="ratings.first487650.dat")
    split = load_behavior_dataset("ml-1m-ctr", tmp_path / "data", cache_dir=tmp_path / "cache")
    assert split.name == "ml-1m-ctr" and split.feature_map.max_history == 50
    assert split.test.history_items.shape == (2, 50)
    assert split.test.history_items[0, -4:].tolist() == [1, 2, 3, 4]
    assert split.test.history_items[0, :-4].tolist() == [0] * 46
    assert split.cache_path is not None and split.cache_path.parent == tmp_path / "cache"
    with pytest.raises(DataError, match=r"use load_behavior_dataset\('ml-1m-ctr'\)"):
        load_dataset("ml-1m-ctr", tmp_path / "data")
    with pytest.raises(DataError, match="unknown behaviour dataset 'ml-1m'; known: ml-1m-ctr"):
        load_behavior_dataset("ml-1m", tmp_path / "data")
    with pytest.raises(DataError, match="movielens-1m-partial"):
        load_behavior_dataset("ml-1m-ctr", tmp_path / "empty")


# ---------------------------------------------------------------------------------- split rule
def test_temporal_split_counts_rounding() -> None:
    n = np.array([0, 1, 2, 3, 4, 5, 10, 14, 15, 20, 25, 163])
    train, valid, test = temporal_split_counts(n, 0.1, 0.1)
    assert test.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 3, 16]  # round half up, >= 1
    assert valid.tolist() == test.tolist()
    np.testing.assert_array_equal(train + valid + test, n)
    # large fractions: test first, then valid, and train keeps at least one
    train, valid, test = temporal_split_counts(np.array([3, 4, 10]), 0.8, 0.15)
    assert (train.tolist(), valid.tolist(), test.tolist()) == ([1, 1, 1], [1, 2, 7], [1, 1, 2])
    train, valid, test = temporal_split_counts(np.array([6, 10]), 0.25, 0.15)
    assert (valid.tolist(), test.tolist()) == ([2, 3], [1, 2])  # 1.5 -> 2, 0.9 -> 1, 1.5 -> 2
    for bad in [(0.0, 0.1), (0.1, 0.0), (-0.1, 0.2), (0.5, 0.5), (float("nan"), 0.1)]:
        with pytest.raises(DataError, match="valid_fraction and test_fraction"):
            temporal_split_counts(n, *bad)


def test_configurable_fractions(tmp_path: Path) -> None:
    split = build_movielens_ctr(
        folder=write_ml1m(tmp_path),
        max_history=2,
        valid_fraction=0.2,
        test_fraction=0.4,
        cache=False,
    )
    # user 1 (5 ratings): test round(2.0) = 2, valid round(1.0) = 1; user 2 (3): 1/1/1
    assert split.test.sparse[:, [0, 5]].tolist() == [[1, 4], [1, 5], [2, 1]]
    assert split.valid.sparse[:, [0, 5]].tolist() == [[1, 3], [2, 2]]
    assert split.test.history_items.tolist() == [[2, 3], [3, 4], [4, 2]]


def test_right_aligned_history_helper() -> None:
    items = np.array([5, 6, 7, 8, 9])  # user A: 5 6 7, user B: 8 9
    start = np.array([0, 0, 0, 3, 3])
    history, length = right_aligned_history(items, start, np.array([2, 1, 4, 3, 0]), 2)
    assert history.tolist() == [[5, 6], [0, 5], [0, 8], [0, 0], [0, 0]]
    assert length.tolist() == [2, 1, 1, 0, 0]


# ---------------------------------------------------------------------------------- errors
def test_missing_files_are_named(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "no-users", users=None)
    with pytest.raises(DataError, match=r"users\.dat.*missing file") as err:
        build_movielens_ctr(folder=folder, cache=False)
    assert err.value.path == folder / "users.dat"
    folder = write_ml1m(tmp_path / "no-movies", movies=None)
    with pytest.raises(DataError, match=r"movies\.dat.*missing file"):
        build_movielens_ctr(folder=folder, cache=False)
    (tmp_path / "no-ratings").mkdir()
    with pytest.raises(DataError, match=r"no ratings\.dat"):
        build_movielens_ctr(folder=tmp_path / "no-ratings", cache=False)


def test_bad_rows_are_named_with_line(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "a", RATINGS + "\n9::10::4::700\n")  # blank line 12
    with pytest.raises(DataError, match=r"user 9 has ratings but no row in users\.dat") as err:
        build_movielens_ctr(folder=folder, cache=False)
    assert (err.value.path, err.value.line) == (folder / "ratings.dat", 13)
    folder = write_ml1m(tmp_path / "b", "1::10::4::1\n1::99::4::2\n")
    with pytest.raises(DataError, match="movie 99 is rated but has no row") as err:
        build_movielens_ctr(folder=folder, cache=False)
    assert (err.value.path, err.value.line) == (folder / "ratings.dat", 2)
    folder = write_ml1m(tmp_path / "c", "1::10::4\n1::20::3\n")
    with pytest.raises(DataError, match="no timestamp column"):
        build_movielens_ctr(folder=folder, cache=False)
    folder = write_ml1m(tmp_path / "d", "")
    with pytest.raises(DataError, match="empty dataset"):
        build_movielens_ctr(folder=folder, cache=False)
    folder = write_ml1m(tmp_path / "e", "1::10::4::1\n1::20::3::2\n2::10::5::1\n")
    with pytest.raises(DataError, match="no user has the 3 ratings"):
        build_movielens_ctr(folder=folder, cache=False)
    folder = write_ml1m(tmp_path / "f", users=USERS + "2::F::1::10::11111\n")
    with pytest.raises(DataError, match="user ID 2 appears more than once"):
        build_movielens_ctr(folder=folder, cache=False)


def test_bad_parameters(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path)
    with pytest.raises(DataError, match=r"test_fraction=0\.95"):
        build_movielens_ctr(folder=folder, valid_fraction=0.1, test_fraction=0.95)
    with pytest.raises(DataError, match="max_history must be a positive integer"):
        build_movielens_ctr(folder=folder, max_history=0)
    with pytest.raises(DataError, match="zip_prefix_length"):
        build_movielens_ctr(folder=folder, zip_prefix_length=0)


def test_subset_keeps_layout(tiny: BehaviorSplit) -> None:
    part = tiny.train.subset(np.array([2, 0]))
    assert isinstance(part, BehaviorSamples) and len(part) == 2
    assert part.history_items.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert part.timestamps is not None and part.timestamps.tolist() == [200, 100]


# ---------------------------------------------------------------------------------- cache
def test_cache_round_trip_and_invalidation(tmp_path: Path) -> None:
    folder = write_ml1m(tmp_path / "ml")
    cache = tmp_path / "cache"
    built = build_movielens_ctr(folder=folder, max_history=3, cache_dir=cache)
    assert built.cache_path is not None
    assert sorted(p.name for p in built.cache_path.iterdir()) == [
        "arrays.npz",
        "feature_map.json",
        "params.json",
    ]
    stored = json.loads((built.cache_path / "params.json").read_text())
    assert stored["max_history"] == 3 and stored["ratings_file"] == "ratings.dat"
    assert set(stored["inputs"]) == {"ratings.dat", "users.dat", "movies.dat"}

    stamp = (built.cache_path / "arrays.npz").stat().st_mtime_ns
    again = build_movielens_ctr(folder=folder, max_history=3, cache_dir=cache)
    assert (built.cache_path / "arrays.npz").stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert_same_split(built, again)
    assert again.params == built.params

    # other parameters: another cache folder
    other = build_movielens_ctr(folder=folder, max_history=2, cache_dir=cache)
    assert other.cache_path != built.cache_path and other.feature_map.max_history == 2

    # a changed input file invalidates the cached copy (same folder, rebuilt)
    time.sleep(0.01)
    (folder / "ratings.dat").write_text(RATINGS.replace("1::50::4::500", "1::50::1::500"))
    changed = build_movielens_ctr(folder=folder, max_history=3, cache_dir=cache)
    assert changed.cache_path == built.cache_path
    assert changed.test.labels.tolist() == [0.0, 0.0]

    # a corrupt (here: truncated) cached array file is rebuilt, not trusted
    arrays = built.cache_path / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:200])
    rebuilt = build_movielens_ctr(folder=folder, max_history=3, cache_dir=cache)
    assert_same_split(changed, rebuilt)
    assert arrays.stat().st_size > 200


def test_saved_split_that_does_not_fit_is_refused(tiny: BehaviorSplit, tmp_path: Path) -> None:
    tiny.save(tmp_path / "s")
    bad = FeatureMap(
        fields=tiny.feature_map.fields, max_history=7, max_tags=tiny.feature_map.max_tags
    )
    bad.save(tmp_path / "s" / "feature_map.json")
    with pytest.raises(DataError, match="do not fit the feature map"):
        BehaviorSplit.load(tmp_path / "s")
    (tmp_path / "s" / "params.json").unlink()
    with pytest.raises(DataError, match=r"params\.json"):
        BehaviorSplit.load(tmp_path / "s")


def assert_same_split(a: BehaviorSplit, b: BehaviorSplit) -> None:
    assert a.feature_map == b.feature_map and a.name == b.name
    np.testing.assert_array_equal(a.item_tags, b.item_tags)
    for part in ("train", "valid", "test"):
        x, y = a.parts()[part], b.parts()[part]
        for attr in ("sparse", "history_items", "history_length", "labels", "timestamps"):
            left, right = getattr(x, attr), getattr(y, attr)
            assert left.dtype == right.dtype, (part, attr)
            np.testing.assert_array_equal(left, right, err_msg=f"{part}.{attr}")


# ---------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_cache() -> Iterator[Path]:
    """A cache root removed after the module (the real build's arrays are ~130 MB)."""
    with tempfile.TemporaryDirectory(prefix="leanrec-behavior-") as directory:
        yield Path(directory)


@pytest.fixture(scope="module")
def real(shared_data: Path, real_cache: Path) -> BehaviorSplit:
    return load_behavior_dataset("ml-1m-ctr", shared_data, cache_dir=real_cache)


def test_real_counts_and_split(real: BehaviorSplit) -> None:
    sizes = {part: len(samples) for part, samples in real.parts().items()}
    assert sum(sizes.values()) == 487_650
    assert sizes == {"train": 389_856, "valid": 48_897, "test": 48_897}
    for part, samples in real.parts().items():
        assert abs(len(samples) / 487_650 - {"train": 0.8}.get(part, 0.1)) < 0.005
        # every user (all have >= 20 ratings) is in every part
        assert len(np.unique(samples.sparse[:, 0])) == 2_999, part
    fmap = real.feature_map
    assert fmap.field("user_id").vocab_size == 3_000
    assert fmap.field("item_id").vocab_size == fmap.field("history").vocab_size == 3_884
    assert fmap.field("genres").vocab_size == 19 and fmap.max_tags == 6
    assert real.item_tags.shape == (3_884, 6)
    labels = np.concatenate([s.labels for s in real.parts().values()])
    assert 0.55 < labels.mean() < 0.60  # ratings 4-5 of ML-1M: ~57.5 %
    for samples in real.parts().values():
        for column, spec in enumerate(fmap.categorical):
            values = samples.sparse[:, column]
            assert values.min() >= 1 and values.max() < spec.vocab_size, spec.name  # none missing
        assert samples.history_items.max() < 3_884


def test_real_split_is_temporal(real: BehaviorSplit) -> None:
    """Per user: all train times <= all valid times <= all test times; parts sorted by user."""
    last: dict[str, np.ndarray] = {}
    first: dict[str, np.ndarray] = {}
    for part, samples in real.parts().items():
        users = samples.sparse[:, 0]
        assert samples.timestamps is not None
        # ordered by user, then time
        same_user = users[1:] == users[:-1]
        assert (users[1:] >= users[:-1]).all(), part
        assert (samples.timestamps[1:][same_user] >= samples.timestamps[:-1][same_user]).all()
        last[part] = np.full(3_000, -1, dtype=np.int64)
        np.maximum.at(last[part], users, samples.timestamps)
        first[part] = np.full(3_000, np.iinfo(np.int64).max)
        np.minimum.at(first[part], users, samples.timestamps)
    assert (last["train"][1:] <= first["valid"][1:]).all()
    assert (last["valid"][1:] <= first["test"][1:]).all()


def test_real_history_no_leakage(real: BehaviorSplit, shared_data: Path) -> None:
    """Checked against the raw file: every history item is a rating of the same user that comes
    strictly earlier in (time, file line) order, and the history is exactly the last N of them."""
    folder = shared_data / "movielens-1m-partial"
    raw = load_movielens_1m(folder)
    assert raw.timestamps is not None
    raw_users = raw.user_vocab.raw_ids[raw.users]
    raw_items = raw.item_vocab.raw_ids[raw.items]
    n = len(raw_users)
    order = np.lexsort((np.arange(n), raw.timestamps, raw_users))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)  # global (user, time, line) order
    movie_ids = np.sort(read_ml1m_movies(folder / "movies.dat").index.to_numpy())
    key = raw_users * 10_000 + raw_items  # (user, movie) is unique in ML-1M
    key_order = np.argsort(key)
    assert (np.diff(key[key_order]) > 0).all()

    def rank_of(users: np.ndarray, item_codes: np.ndarray) -> np.ndarray:
        wanted = users * 10_000 + movie_ids[item_codes - 1]
        found = key_order[np.searchsorted(key[key_order], wanted)]
        assert (key[found] == wanted).all()
        return rank[found]

    user_first = np.searchsorted(raw_users[order], np.arange(3_000))
    rng = np.random.default_rng(0)
    for part, samples in real.parts().items():
        rows = np.arange(len(samples))
        if part == "train":
            rows = rng.choice(rows, 20_000, replace=False)
        users = samples.sparse[rows, 0].astype(np.int64)  # user code == raw ID (users 1..2999)
        sample_rank = rank_of(users, samples.sparse[rows, 5])
        earlier = sample_rank - user_first[users]
        np.testing.assert_array_equal(samples.history_length[rows], np.minimum(earlier, 50))
        history = samples.history_items[rows].astype(np.int64)
        real_item = history > 0
        history_rank = np.zeros_like(history)
        for column in range(50):
            present = real_item[:, column]
            history_rank[present, column] = rank_of(users[present], history[present, column])
        # the same user (rank_of found (user, item)), strictly earlier, the last N in order
        expected = sample_rank[:, None] - np.arange(50, 0, -1)[None, :]
        assert (
            history_rank[real_item]
            < np.broadcast_to(sample_rank[:, None], history.shape)[real_item]
        ).all()
        np.testing.assert_array_equal(history_rank[real_item], expected[real_item])
        assert (real_item.sum(axis=1) == samples.history_length[rows]).all()
        assert not (real_item[:, :-1] & ~real_item[:, 1:]).any()  # right-aligned, no holes


def test_real_cache_reload_identical(
    real: BehaviorSplit, shared_data: Path, real_cache: Path
) -> None:
    assert real.cache_path is not None and real.cache_path.parent == real_cache
    start = time.perf_counter()
    again = load_behavior_dataset("ml-1m-ctr", shared_data, cache_dir=real_cache)
    reload_seconds = time.perf_counter() - start
    assert again.cache_path == real.cache_path
    assert_same_split(real, again)
    assert reload_seconds < 10.0


def test_shared_full_ml1m_copy_is_refused_clearly(shared_data: Path) -> None:
    """The shared ``ml-1m`` folder has no timestamps, users.dat or movies.dat."""
    if (shared_data / "movielens-1m-ratings" / "users.dat").is_file():  # pragma: no cover
        pytest.skip("a full GroupLens ML-1M is installed there")
    with pytest.raises(DataError, match=r"users\.dat.*missing file") as err:
        build_movielens_ctr(registry.dataset_path("ml-1m", shared_data), cache=False)
    assert err.value.path == shared_data / "movielens-1m-ratings" / "users.dat"


def test_registry_entries_unchanged() -> None:
    """ml-1m-ctr is a derived dataset: not in DATASETS (whose status lists raw folders)."""
    assert "ml-1m-ctr" not in registry.DATASETS
    assert registry.BEHAVIOR_DATASETS["ml-1m-ctr"].source in registry.DATASETS
