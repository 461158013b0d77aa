"""Loaders: exact counts and first-line values on the real shared files, and one small tmp file
per bad-input case checking that the DataError names the file and the 1-based line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders import (
    AVAZU_SPARSE,
    CRITEO_DENSE,
    CRITEO_SPARSE,
    ML100K_GENRES,
    CTRTable,
    load_avazu,
    load_criteo,
    load_lightgcn_txt,
    load_movielens_1m,
    load_movielens_100k,
    load_recbole_atomic,
    load_table,
    load_user_sequences,
    positions_within_user,
)
from leanrec.data.loaders._parsing import _parse_digit_tokens, tokenize_int_lines


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def assert_names(error: pytest.ExceptionInfo[DataError], path: Path, line: int | None) -> None:
    """The DataError points at ``path`` (and ``line``) both as attributes and in the message."""
    assert error.value.path == path
    assert error.value.line == line
    assert str(path) in str(error.value)
    if line is not None:
        assert f"line {line}" in str(error.value)


def raw_of(data: Interactions, index_array: np.ndarray, which: str) -> list[int]:
    vocab = data.user_vocab if which == "user" else data.item_vocab
    return [int(x) for x in vocab.to_raw(index_array)]


# ====================================================================== MovieLens 100K
@pytest.fixture(scope="module")
def ml100k(shared_data: Path) -> Interactions:
    return load_movielens_100k(shared_data / "movielens-100k")


def test_ml100k_counts_and_first_line(ml100k: Interactions) -> None:
    assert (len(ml100k), ml100k.n_users, ml100k.n_items) == (100_000, 943, 1_682)
    # u.data line 1: 196 242 3 881250949
    assert raw_of(ml100k, ml100k.users[:1], "user") == [196]
    assert raw_of(ml100k, ml100k.items[:1], "item") == [242]
    assert ml100k.ratings is not None and ml100k.ratings[0] == 3.0
    assert ml100k.timestamps is not None and ml100k.timestamps[0] == 881250949
    assert ml100k.ratings.dtype == np.float32 and set(np.unique(ml100k.ratings)) == {1, 2, 3, 4, 5}


def test_ml100k_side_info(ml100k: Interactions) -> None:
    users = ml100k.side["users"]
    items = ml100k.side["items"]
    assert len(users) == 943 and len(items) == 1_682
    assert users.loc[1, "age"] == 24 and users.loc[1, "occupation"] == "technician"
    assert users.loc[1, "zip_code"] == "85711"
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert list(items.columns[-19:]) == list(ML100K_GENRES)
    assert items.loc[1, ["Animation", "Children's", "Comedy"]].tolist() == [1, 1, 1]
    assert items.loc[543, "title"] == "Misérables, Les (1995)"  # Latin-1 decoded
    # every rated user/item has side information
    assert set(ml100k.user_vocab.raw_ids.tolist()) <= set(users.index)
    assert set(ml100k.item_vocab.raw_ids.tolist()) <= set(items.index)


def test_ml100k_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found") as err:
        load_movielens_100k(tmp_path / "nowhere")
    assert_names(err, tmp_path / "nowhere", None)

    with pytest.raises(DataError, match="missing file") as err:
        load_movielens_100k(tmp_path)
    assert_names(err, tmp_path / "u.data", None)

    bad = write(tmp_path / "comma" / "u.data", "1,2,3,4\n")
    with pytest.raises(DataError, match=r"expected 4 fields separated by '\\t', found 1") as err:
        load_movielens_100k(bad.parent)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "short" / "u.data", "1\t2\t3\t4\n5\t6\t7\t8\n9\t10\t11\n")
    with pytest.raises(DataError, match="found 3") as err:
        load_movielens_100k(bad.parent)
    assert_names(err, bad, 3)

    bad = write(tmp_path / "text" / "u.data", "1\t2\t3\t4\n\n5\tabc\t3\t8\n")
    with pytest.raises(DataError, match="'item' is not an integer: 'abc'") as err:
        load_movielens_100k(bad.parent)
    assert_names(err, bad, 3)  # the blank line still counts

    bad = write(tmp_path / "rating" / "u.data", "1\t2\t3\t4\n5\t6\tfive\t8\n")
    with pytest.raises(DataError, match="'rating' is not a number: 'five'") as err:
        load_movielens_100k(bad.parent)
    assert_names(err, bad, 2)

    empty = write(tmp_path / "empty" / "u.data", "")
    with pytest.raises(DataError, match="empty") as err:
        load_movielens_100k(empty.parent)
    assert_names(err, empty, None)


# ====================================================================== MovieLens 1M
def test_ml1m_complete_ratings_without_timestamps(shared_data: Path) -> None:
    data = load_movielens_1m(shared_data / "movielens-1m-ratings")
    assert (len(data), data.n_users, data.n_items) == (1_000_209, 6_040, 3_706)
    assert data.timestamps is None
    assert data.ratings is not None
    # the official ML-1M rating histogram (SOURCES.md)
    histogram = np.bincount(data.ratings.astype(np.int64), minlength=6)[1:]
    assert histogram.tolist() == [56_174, 107_557, 261_197, 348_971, 226_310]
    # line 1: 1::1::5
    assert raw_of(data, data.users[:1], "user") == [1]
    assert raw_of(data, data.items[:1], "item") == [1]
    assert data.ratings[0] == 5.0
    assert data.side == {}  # no users.dat / movies.dat in this folder


def test_ml1m_partial_with_timestamps_and_side_info(shared_data: Path) -> None:
    data = load_movielens_1m(shared_data / "movielens-1m-partial")  # finds ratings.first487650.dat
    assert (len(data), data.n_users, data.n_items) == (487_650, 2_999, 3_615)
    assert data.timestamps is not None and data.ratings is not None
    # line 1: 1::1193::5::978300760
    assert raw_of(data, data.users[:1], "user") == [1]
    assert raw_of(data, data.items[:1], "item") == [1193]
    assert (data.ratings[0], data.timestamps[0]) == (5.0, 978300760)
    assert data.user_popularity().min() >= 20

    users = data.side["users"]
    movies = data.side["items"]
    assert len(users) == 6_040 and len(movies) == 3_883
    assert users.loc[1].tolist() == ["F", 1, 10, "48067"]
    assert movies.loc[1, "title"] == "Toy Story (1995)"
    assert movies.loc[1, "genres"] == ["Animation", "Children's", "Comedy"]
    assert movies.loc[1, "Comedy"] == 1 and movies.loc[1, "Drama"] == 0
    assert movies.loc[73, "title"] == "Misérables, Les (1995)"  # ISO-8859-1 decoded


def test_ml1m_explicit_ratings_file_and_detection(tmp_path: Path) -> None:
    folder = tmp_path / "ml"
    write(folder / "ratings.part1.dat", "1::10::4::100\n2::10::3::101\n")
    data = load_movielens_1m(folder)
    assert (len(data), data.n_users, data.n_items) == (2, 2, 1)
    write(folder / "ratings.part2.dat", "3::11::5\n")
    with pytest.raises(DataError, match="several ratings files"):
        load_movielens_1m(folder)
    three = load_movielens_1m(folder, ratings_file="ratings.part2.dat")
    assert three.timestamps is None and three.ratings is not None and three.ratings[0] == 5.0


def test_ml1m_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no ratings.dat") as err:
        load_movielens_1m(tmp_path)
    assert_names(err, tmp_path, None)

    bad = write(tmp_path / "tabs" / "ratings.dat", "1\t2\t3\t4\n")
    with pytest.raises(DataError, match="expected 4 fields separated by '::', found 1") as err:
        load_movielens_1m(bad.parent)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "mixed" / "ratings.dat", "1::2::3::4\n1::3::4::5\n2::3::4\n")
    with pytest.raises(DataError, match="expected 4 fields separated by '::', found 3") as err:
        load_movielens_1m(bad.parent)
    assert_names(err, bad, 3)

    bad = write(tmp_path / "text" / "ratings.dat", "1::2::3\r\n1::x2::4\r\n")
    with pytest.raises(DataError, match="'item' is not an integer: 'x2'") as err:
        load_movielens_1m(bad.parent)
    assert_names(err, bad, 2)

    bad = write(tmp_path / "float" / "ratings.dat", "1::2::3\n1.5::3::4\n")
    with pytest.raises(DataError, match=r"'user' is not an integer: '1.5'") as err:
        load_movielens_1m(bad.parent)
    assert_names(err, bad, 2)

    empty = write(tmp_path / "empty" / "ratings.dat", "\n\n")
    with pytest.raises(DataError, match="empty") as err:
        load_movielens_1m(empty.parent)
    assert_names(err, empty, None)


# ====================================================================== LightGCN format
def test_gowalla(shared_data: Path) -> None:
    train, test = load_lightgcn_txt(shared_data / "gowalla-lightgcn")
    assert (train.n_users, train.n_items, len(train), len(test)) == (
        29_858,
        40_981,
        810_128,
        217_242,
    )
    assert train.user_vocab is test.user_vocab and train.item_vocab is test.item_vocab
    assert train.ratings is None and train.timestamps is None
    # train line 1: "0 0 1 2 ..."; test line 1: "0 7580 3730 ..."; identity vocabularies
    assert train.users[:3].tolist() == [0, 0, 0] and train.items[:3].tolist() == [0, 1, 2]
    assert test.users[:2].tolist() == [0, 0] and test.items[:2].tolist() == [7580, 3730]
    assert train.user_vocab.raw_ids[-1] == 29_857


def test_ml1m_lightgcn_with_crlf_lines(shared_data: Path) -> None:
    train, test = load_lightgcn_txt(shared_data / "movielens-1m-lightgcn-format")
    assert (train.n_users, train.n_items, len(train), len(test)) == (6_022, 3_043, 796_244, 99_455)
    assert train.items[:3].tolist() == [148, 2800, 2079]
    assert test.items[:5].tolist() == [2968, 228, 38, 422, 2769]


def test_lightgcn_vocab_spans_both_files_and_itemless_users(tmp_path: Path) -> None:
    write(tmp_path / "train.txt", "0 1 2\n1\n2 0\n")
    write(tmp_path / "test.txt", "0 5\n3 1\n")
    train, test = load_lightgcn_txt(tmp_path, name="toy")
    assert (train.n_users, train.n_items) == (4, 6)  # max ids over both files + 1
    assert (len(train), len(test)) == (3, 2)
    assert train.users.tolist() == [0, 0, 2] and test.users.tolist() == [0, 3]
    assert train.name == "toy/train" and test.name == "toy/test"


def test_lightgcn_bad_inputs(tmp_path: Path) -> None:
    write(tmp_path / "a" / "train.txt", "0 1 2\n")
    with pytest.raises(DataError, match="missing file") as err:
        load_lightgcn_txt(tmp_path / "a")
    assert_names(err, tmp_path / "a" / "test.txt", None)

    write(tmp_path / "b" / "train.txt", "0 1 2\n1 3\n")
    bad = write(tmp_path / "b" / "test.txt", "0 4\n1 4,5\n")
    with pytest.raises(DataError, match="found '4,5'") as err:
        load_lightgcn_txt(tmp_path / "b")
    assert_names(err, bad, 2)

    bad = write(tmp_path / "c" / "train.txt", "0 1\n1 -3\n")
    write(tmp_path / "c" / "test.txt", "0 1\n")
    with pytest.raises(DataError, match="'-3'") as err:
        load_lightgcn_txt(tmp_path / "c")
    assert_names(err, bad, 2)

    write(tmp_path / "d" / "train.txt", "0 1\n")
    bad = write(tmp_path / "d" / "test.txt", "0\n1\n")
    with pytest.raises(DataError, match="empty") as err:
        load_lightgcn_txt(tmp_path / "d")
    assert_names(err, bad, None)


# ====================================================================== sequences
def test_beauty_bert4rec_pairs(shared_data: Path) -> None:
    data = load_user_sequences(shared_data / "beauty-bert4rec" / "beauty.txt")
    assert (data.n_users, data.n_items, len(data)) == (40_226, 54_542, 353_962)
    assert data.timestamps is not None
    # lines 1-3: "1 1", "1 2", "1 3" -> positions 0, 1, 2
    assert raw_of(data, data.users[:3], "user") == [1, 1, 1]
    assert raw_of(data, data.items[:3], "item") == [1, 2, 3]
    assert data.timestamps[:3].tolist() == [0, 1, 2]


def test_beauty_s3rec_lines(shared_data: Path) -> None:
    data = load_user_sequences(shared_data / "beauty-s3rec" / "Beauty.txt")
    assert (data.n_users, data.n_items, len(data)) == (22_363, 12_101, 198_502)
    assert data.timestamps is not None
    # "1 1 2 3 4 5" then "2 6 7 8 9 10 4 11"
    assert raw_of(data, data.items[:7], "item") == [1, 2, 3, 4, 5, 6, 7]
    assert data.timestamps[:7].tolist() == [0, 1, 2, 3, 4, 0, 1]
    # the last item of every user has the largest position: leave-one-out keeps the order
    last = np.zeros(data.n_users, dtype=np.int64)
    np.maximum.at(last, data.users, data.timestamps)
    assert (last + 1 == data.user_popularity()).all()


def test_sequence_layouts(tmp_path: Path) -> None:
    lines = write(tmp_path / "lines.txt", "7 1 2 3\n8\n9 2\n")
    data = load_user_sequences(lines)
    assert data.n_users == 3 and len(data) == 4  # user 8 has no items but stays known
    assert data.timestamps is not None and data.timestamps.tolist() == [0, 1, 2, 0]

    pairs = write(tmp_path / "pairs.txt", "5 1\n5 2\n6 1\n5 3\n")
    data = load_user_sequences(pairs)
    assert data.timestamps is not None and data.timestamps.tolist() == [0, 1, 0, 2]

    with pytest.raises(DataError, match=r"expected 2 fields 'user item'.*found 4") as err:
        load_user_sequences(lines, layout="pairs")
    assert_names(err, lines, 1)

    bad = write(tmp_path / "bad.txt", "1 2\n1 3\n\n1 b4\n")
    with pytest.raises(DataError, match="'b4'") as err:
        load_user_sequences(bad)
    assert_names(err, bad, 4)

    with pytest.raises(DataError, match="empty") as err:
        load_user_sequences(write(tmp_path / "empty.txt", "1\n2\n"))
    with pytest.raises(ValueError, match="layout"):
        load_user_sequences(lines, layout="columns")  # type: ignore[arg-type]


def test_digit_token_fallback_matches_numpy_parser() -> None:
    """The pure-numpy integer parser used when ``np.fromstring`` is unavailable."""
    raw = b"0 17 123456789012345678\n42\r\n 7  8\n"
    buf = np.frombuffer(raw, dtype=np.uint8)
    is_digit = (buf >= 48) & (buf <= 57)
    edges = np.diff(is_digit.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    values = _parse_digit_tokens(buf, starts, ends - starts)
    assert values.tolist() == [0, 17, 123456789012345678, 42, 7, 8]
    tokens = tokenize_int_lines(raw, Path("x"))
    assert tokens.values.tolist() == values.tolist()
    assert tokens.line_index.tolist() == [0, 0, 0, 1, 2, 2]
    assert tokens.tokens_per_line().tolist() == [3, 1, 2]


def test_positions_within_user() -> None:
    assert positions_within_user(np.array([5, 5, 7, 5, 7])).tolist() == [0, 1, 0, 2, 1]


# ====================================================================== RecBole atomic
RECBOLE_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def test_recbole_atomic(tmp_path: Path) -> None:
    path = write(
        tmp_path / "toy.inter",
        RECBOLE_HEADER + "196\t242\t3\t881250949\n186\t302\t3.5\t891717742.7\nu3\t242\t1\t5\n",
    )
    data = load_recbole_atomic(path)
    assert (len(data), data.n_users, data.n_items) == (3, 3, 2)
    assert data.user_vocab.to_raw(data.users).tolist() == ["196", "186", "u3"]
    assert data.ratings is not None and data.ratings.tolist() == [3.0, 3.5, 1.0]
    assert data.timestamps is not None and data.timestamps.tolist() == [881250949, 891717742, 5]
    assert data.name == "toy"


def test_recbole_optional_and_renamed_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path / "seq.inter",
        "session:token\tsku:token\titem_id_list:token_seq\n1\ta\tx y z\n1\tb\t\n",
    )
    data = load_recbole_atomic(path, user_field="session", item_field="sku")
    assert len(data) == 2 and data.ratings is None and data.timestamps is None


def test_recbole_bad_inputs(tmp_path: Path) -> None:
    bad = write(tmp_path / "notypes.inter", "user_id\titem_id\n1\t2\n")
    with pytest.raises(DataError, match="has no type") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "spaces.inter", "user_id:token item_id:token\n1 2\n")
    with pytest.raises(DataError, match="TAB-separated") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "badtype.inter", "user_id:token\titem_id:int\n1\t2\n")
    with pytest.raises(DataError, match="unknown type 'int'") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "nouser.inter", "uid:token\titem_id:token\n1\t2\n")
    with pytest.raises(DataError, match=r"no user field 'user_id'; fields found: uid:token") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "fields.inter", RECBOLE_HEADER + "1\t2\t3\t4\n1\t2\t3\n")
    with pytest.raises(DataError, match="expected 4 fields separated by TAB, found 3") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 3)

    bad = write(tmp_path / "rating.inter", RECBOLE_HEADER + "1\t2\t3\t4\n1\t2\tgood\t4\n")
    with pytest.raises(DataError, match="rating field 'rating' is not a number: 'good'") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 3)

    bad = write(tmp_path / "header_only.inter", RECBOLE_HEADER)
    with pytest.raises(DataError, match="empty") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, None)

    bad = tmp_path / "latin1.inter"
    bad.write_bytes(RECBOLE_HEADER.encode() + b"1\t2\t3\t4\nJos\xe9\t2\t3\t4\n")
    with pytest.raises(DataError, match="not UTF-8") as err:
        load_recbole_atomic(bad)
    assert_names(err, bad, 3)

    with pytest.raises(DataError, match="missing file"):
        load_recbole_atomic(tmp_path / "absent.inter")


# ====================================================================== CTR
def test_criteo_sample(shared_data: Path) -> None:
    table = load_criteo(shared_data / "criteo-sample" / "criteo_sample.txt")
    assert isinstance(table, CTRTable)
    assert len(table) == 200
    assert table.dense.shape == (200, 13) and table.dense.dtype == np.float32
    assert table.sparse.shape == (200, 26) and table.sparse.dtype == np.int64
    assert table.labels.dtype == np.float32 and set(np.unique(table.labels)) <= {0.0, 1.0}
    assert table.dense_names == CRITEO_DENSE and table.sparse_names == CRITEO_SPARSE
    # row 1: label 0, I1 empty, I2 3, I3 260.0, ...; C1 05db9164; C20 empty
    assert table.labels[0] == 0.0
    assert table.dense[0, 0] == 0.0  # missing
    assert table.dense[0, 1] == pytest.approx(np.log1p(3.0))
    assert table.dense[0, 2] == pytest.approx(np.log1p(260.0))
    c1 = table.vocabularies["C1"]
    assert c1[table.sparse[0, 0] - 1] == "05db9164"
    assert table.sparse[0, CRITEO_SPARSE.index("C20")] == 0  # missing -> 0
    assert all(table.sparse[:, j].max() < size for j, size in enumerate(table.vocab_sizes))


def test_criteo_8k_and_encode_like(shared_data: Path) -> None:
    folder = shared_data / "criteo-8k"
    train = load_criteo(folder / "train.tsv", log_dense=False)
    assert len(train) == 7_200 and train.sparse.shape == (7_200, 26)
    # row 1 of train.tsv: 0, 1, 1, 5, 0, 1382, ... C1 68fd1e64
    assert train.labels[0] == 0.0
    assert train.dense[0, :5].tolist() == [1.0, 1.0, 5.0, 0.0, 1382.0]
    assert train.vocabularies["C1"][train.sparse[0, 0] - 1] == "68fd1e64"
    dev = train.encode_like(folder / "dev.tsv")
    test = train.encode_like(folder / "test.tsv")
    assert (len(dev), len(test)) == (409, 391)
    assert dev.vocabularies is train.vocabularies and dev.vocab_sizes == train.vocab_sizes
    assert dev.log_dense is False
    assert all(dev.sparse[:, j].max() < size for j, size in enumerate(train.vocab_sizes))
    assert (dev.sparse == 0).any()  # unseen categories map to 0


def test_criteo_min_count(shared_data: Path) -> None:
    path = shared_data / "criteo-8k" / "train.tsv"
    rare_dropped = load_criteo(path, min_count=10)
    everything = load_criteo(path)
    assert sum(rare_dropped.vocab_sizes) < sum(everything.vocab_sizes)


def test_avazu(shared_data: Path) -> None:
    sample = load_avazu(shared_data / "avazu-sample" / "avazu_sample.txt")
    assert len(sample) == 100 and sample.dense.shape == (100, 0)
    assert sample.sparse.shape == (100, len(AVAZU_SPARSE)) == (100, 23)
    assert len(load_avazu(shared_data / "avazu-sample" / "avazu_sample_1000.txt")) == 999
    # row 1: id ..., click 0, hour 14102100 (2014-10-21 is a Tuesday), C1 1005
    assert sample.labels[0] == 0.0
    assert sample.vocabularies["hour_of_day"][sample.sparse[0, 0] - 1] == "0"
    assert sample.vocabularies["weekday"][sample.sparse[0, 1] - 1] == "1"
    assert sample.vocabularies["C1"][sample.sparse[0, 2] - 1] == "1005"

    folder = shared_data / "avazu-9k"
    train = load_avazu(folder / "train.csv")
    assert len(train) == 8_087
    dev = train.encode_like(folder / "dev.csv")  # no header, detected
    test = load_avazu(folder / "test.csv", header=False, like=train)
    assert (len(dev), len(test)) == (480, 432)
    assert dev.vocab_sizes == train.vocab_sizes


def test_ctr_bad_inputs(tmp_path: Path) -> None:
    row = ["0", *["1"] * 13, *["a"] * 26]

    def criteo_line(values: list[str]) -> str:
        return "\t".join(values) + "\n"

    bad = write(tmp_path / "fields.tsv", criteo_line(row) + criteo_line(row[:-1]))
    with pytest.raises(DataError, match="expected 40 fields separated by TAB, found 39") as err:
        load_criteo(bad)
    assert_names(err, bad, 2)

    dense_text = row.copy()
    dense_text[3] = "many"
    bad = write(tmp_path / "dense.tsv", criteo_line(row) * 2 + criteo_line(dense_text))
    with pytest.raises(DataError, match="field 'I3' is not a number: 'many'") as err:
        load_criteo(bad)
    assert_names(err, bad, 3)

    label = row.copy()
    label[0] = "2"
    bad = write(tmp_path / "label.tsv", criteo_line(label))
    with pytest.raises(DataError, match="must be 0 or 1") as err:
        load_criteo(bad)
    assert_names(err, bad, 1)

    bad = write(tmp_path / "header.csv", "label,I1,I2\n0,1,2\n")
    with pytest.raises(DataError, match="header does not match") as err:
        load_criteo(bad)
    assert_names(err, bad, 1)

    with pytest.raises(DataError, match="empty") as err:
        load_criteo(write(tmp_path / "empty.tsv", ""))

    avazu_header = "id,click,hour," + ",".join(AVAZU_SPARSE[2:]) + "\n"
    good = "1,0,14102100," + ",".join(["x"] * 21) + "\n"
    bad_hour = "2,1,14109900," + ",".join(["x"] * 21) + "\n"
    bad = write(tmp_path / "avazu.csv", avazu_header + good + bad_hour)
    with pytest.raises(DataError, match="YYMMDDHH") as err:
        load_avazu(bad)
    assert_names(err, bad, 3)

    with pytest.raises(DataError, match=r"header only|no data rows") as err:
        load_avazu(write(tmp_path / "avazu_empty.csv", avazu_header))

    with pytest.raises(ValueError, match="avazu file like a criteo"):
        load_avazu(
            write(tmp_path / "avazu_ok.csv", avazu_header + good),
            like=load_criteo(write(tmp_path / "ok.tsv", criteo_line(row))),
        )


# ====================================================================== generic tables
def test_load_table_csv_tsv(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path / "events.csv",
        'customer,sku,stars,when,comment\nc1,s1,4,2020-01-01T00:00:00Z,"nice, really"\n'
        "c2,s1,5,2020-01-02T00:00:00Z,ok\n",
    )
    data = load_table(
        csv_path, {"user": "customer", "item": "sku", "rating": "stars", "timestamp": "when"}
    )
    assert (len(data), data.n_users, data.n_items) == (2, 2, 1)
    assert data.ratings is not None and data.ratings.tolist() == [4.0, 5.0]
    assert data.timestamps is not None and data.timestamps.tolist() == [1577836800, 1577923200]

    tsv_path = write(tmp_path / "events.tsv", "u\ti\tt\n1\t10\t100\n2\t11\t50\n")
    data = load_table(tsv_path, {"user": "u", "item": "i", "timestamp": "t"})
    assert data.user_vocab.raw_ids.tolist() == [1, 2]
    assert data.timestamps is not None and data.timestamps.tolist() == [100, 50]
    assert data.ratings is None


def test_ids_written_differently_stay_different_ids(tmp_path: Path) -> None:
    # read as integers, 001, 01 and 1 were one user
    path = tmp_path / "ids.csv"
    path.write_text("user,item\n001,5\n01,5\n1,6\n")
    data = load_table(path, {"user": "user", "item": "item"})
    assert data.n_users == 3 and sorted(data.user_vocab.to_raw([0, 1, 2])) == ["001", "01", "1"]
    assert data.item_vocab.to_raw([0, 1]).tolist() == [5, 6]  # plain integers stay integers
    assert data.item_vocab.to_raw([0]).dtype == np.int64
    path.write_text("user,item\n-3,5\n 0 ,5\n12,6\n")  # signs, spaces, zero: integers
    assert sorted(load_table(path, {"user": "user", "item": "item"}).user_vocab.to_raw(
        [0, 1, 2]).tolist()) == [-3, 0, 12]  # fmt: skip
    path.write_text("user,item\n99999999999999999999,5\n1,5\n")  # past int64: text
    assert load_table(path, {"user": "user", "item": "item"}).n_users == 2


def test_load_table_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "events.parquet"
    pd.DataFrame({"u": [1, 2, 2], "i": ["a", "b", "a"], "r": [1.0, 2.0, 3.0]}).to_parquet(path)
    data = load_table(path, {"user": "u", "item": "i", "rating": "r"})
    assert (len(data), data.n_users, data.n_items) == (3, 2, 2)
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['x'\]; columns found: \['u', 'i', 'r'\]"
    ):
        load_table(path, {"user": "x", "item": "i"})


def test_load_table_bad_inputs(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "user,item\n1,2\n")
    with pytest.raises(
        DataError, match=r"missing column\(s\) \['rating'\]; columns found: \['user', 'item'\]"
    ) as err:
        load_table(path, {"user": "user", "item": "item", "rating": "rating"})
    assert_names(err, path, 1)

    bad = write(tmp_path / "fields.csv", "user,item\n1,2\n3,4,5\n")
    with pytest.raises(DataError, match="expected 2 fields separated by ',', found 3") as err:
        load_table(bad, {"user": "user", "item": "item"})
    assert_names(err, bad, 3)

    bad = write(tmp_path / "rating.csv", "user,item,r\n1,2,3\n\n1,3,lots\n")
    with pytest.raises(DataError, match="rating column 'r' is not a number: 'lots'") as err:
        load_table(bad, {"user": "user", "item": "item", "rating": "r"})
    assert_names(err, bad, 4)

    bad = write(tmp_path / "time.csv", "user,item,t\n1,2,2020-01-01\n1,3,yesterday\n")
    with pytest.raises(DataError, match="timestamp column 't'") as err:
        load_table(bad, {"user": "user", "item": "item", "timestamp": "t"})
    assert_names(err, bad, 3)

    bad = write(tmp_path / "nouser.csv", "user,item\n1,2\n,3\n")
    with pytest.raises(DataError, match="empty user column 'user'") as err:
        load_table(bad, {"user": "user", "item": "item"})
    assert_names(err, bad, 3)

    with pytest.raises(DataError, match="empty"):
        load_table(write(tmp_path / "header.csv", "user,item\n"), {"user": "user", "item": "item"})
    with pytest.raises(DataError, match="missing file"):
        load_table(tmp_path / "absent.csv", {"user": "user", "item": "item"})
    with pytest.raises(ValueError, match="unknown column roles"):
        load_table(path, {"user": "user", "item": "item", "weight": "w"})


def test_load_table_encoding_and_repeated_columns(tmp_path: Path) -> None:
    roles = {"user": "user", "item": "item"}
    # a byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name
    marked = tmp_path / "bom.csv"
    marked.write_bytes(b"\xef\xbb\xbfuser,item\n1,2\n2,3\n")
    assert load_table(marked, roles).users.tolist() == [0, 1]
    # a byte that is not UTF-8: the line and column of the first one
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"user,item\n1,2\n2,caf\xe9\n")
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xe9 at column 6") as err:
        load_table(latin, roles)
    assert_names(err, latin, 3)
    # a header that is not UTF-8 at all (UTF-16 here) is named as such, not as a missing column
    wide = tmp_path / "utf16.csv"
    wide.write_bytes("user,item\n1,2\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xff at column 1") as err:
        load_table(wide, roles)
    assert_names(err, wide, 1)
    # the column counts characters, not bytes
    accents = tmp_path / "accents.csv"
    accents.write_bytes("user,item\n1,éé".encode() + b"\xff\n")
    with pytest.raises(DataError, match=r"byte 0xff at column 5"):
        load_table(accents, roles)
    # a role's column named twice: pandas would read the first and rename the second
    twice = write(tmp_path / "twice.csv", "user,item,item\n1,2,3\n")
    with pytest.raises(DataError, match="column 'item' appears 2 times in the header") as err:
        load_table(twice, roles)
    assert_names(err, twice, 1)
    # an empty rating cell, and a directory where a file belongs, are said as such
    empty = write(tmp_path / "empty.csv", "user,item,r\n1,2,3\n1,3,\n")
    with pytest.raises(DataError, match="rating column 'r' is not a number: an empty cell"):
        load_table(empty, {**roles, "rating": "r"})
    with pytest.raises(DataError, match="table file expected, found a directory"):
        load_table(tmp_path, roles)
    # a repeated column no role reads is harmless
    other = write(tmp_path / "other.csv", "user,item,x,x\n1,2,a,b\n")
    assert len(load_table(other, roles)) == 1
