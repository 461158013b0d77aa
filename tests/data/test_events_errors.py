"""Bad stream sources: every error names the problem, and the file and line where there is one.

Sources: a generic CSV (``EventStream.from_table``), the ML-100K ``u.data`` and ML-1M
``ratings*.dat`` formats read through the registry (``EventStream.from_dataset`` with a data
directory built here), and a CTR sample (no event times).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leanrec.data.errors import DataError
from leanrec.data.events import EventStream

COLUMNS = {"user": "u", "item": "i", "rating": "r", "timestamp": "t"}


def _csv(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(
    ("lines", "message"),
    [
        # line 1 is the header, so the third data row is line 4
        ("1,2,5,100\n1,3,4,101\n2,3,4\n", r"events.csv, line 4: expected 4 fields .*found 3"),
        ("1,2,5,100\n1,3,4,101\n2,3,4,101,9\n", r"events.csv, line 4: expected 4 fields"),
        ("1,2,5,100\n1,3,4,abc\n2,3,4,102\n", r"events.csv, line 3: timestamp column 't' .*'abc'"),
        (
            "1,2,5,100\n1,3,x,101\n2,3,4,102\n",
            r"events.csv, line 3: rating column 'r' is not a num",
        ),
        ("1,2,5,100\n,3,4,101\n", r"events.csv, line 3: empty user column 'u'"),
    ],
)
def test_a_malformed_csv_line_is_named_by_file_and_line(
    tmp_path: Path, lines: str, message: str
) -> None:
    path = _csv(tmp_path, "u,i,r,t\n" + lines)
    with pytest.raises(DataError, match=message) as caught:
        EventStream.from_table(path, COLUMNS)
    assert caught.value.path == path and caught.value.line is not None


def test_a_date_column_with_one_bad_date_names_that_line(tmp_path: Path) -> None:
    path = _csv(tmp_path, "u,i,r,t\n1,2,5,2024-01-02\n1,3,4,2024-01-03\n2,3,4,soon\n")
    with pytest.raises(DataError, match=r"line 4: timestamp column 't' .*'soon'"):
        EventStream.from_table(path, COLUMNS)


def test_a_label_column_names_its_bad_line_and_speaks_of_the_label(tmp_path: Path) -> None:
    path = _csv(tmp_path, "u,i,t,click\n1,2,100,1\n1,3,101,0\n2,3,102,2\n2,4,103,yes\n")
    roles = {"user": "u", "item": "i", "timestamp": "t"}
    with pytest.raises(DataError, match=r"line 5: label column 'click' is not a number: 'yes'"):
        EventStream.from_table(path, roles, label_column="click")
    path.write_text("u,i,t,click\n1,2,100,1\n1,3,101,0\n2,3,102,2\n")
    with pytest.raises(DataError, match=r"line 4: label column 'click' must be 0 or 1, found 2$"):
        EventStream.from_table(path, roles, label_column="click")


def test_a_missing_or_empty_csv_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"absent.csv: table file not found"):
        EventStream.from_table(tmp_path / "absent.csv", COLUMNS)
    empty = _csv(tmp_path, "u,i,r,t\n", "empty.csv")
    with pytest.raises(DataError, match=r"empty.csv: empty dataset: no data rows"):
        EventStream.from_table(empty, COLUMNS)


def test_a_csv_without_times_says_how_to_ask_for_file_order(tmp_path: Path) -> None:
    path = _csv(tmp_path, "u,i,r\n1,2,5\n2,2,3\n1,3,4\n")
    roles = {"user": "u", "item": "i", "rating": "r"}
    with pytest.raises(DataError, match=r"events.csv: .*no 'timestamp' column.*--order file"):
        EventStream.from_table(path, roles)
    stream = EventStream.from_table(path, roles, order="file")
    assert stream.user_raw.tolist() == [1, 2, 1]  # the file's own order
    assert not stream.has_timestamps


# ---------------------------------------------------------------------------------- MovieLens
def _ml100k(root: Path, data: str) -> Path:
    folder = root / "movielens-100k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(data)
    (folder / "u.item").write_text("")
    (folder / "u.user").write_text("")
    return folder / "u.data"


GOOD_100K = "1\t10\t5\t881250949\n2\t10\t3\t881250950\n1\t11\t4\t881250951\n"


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("3\t12\t4", r"u.data, line 4: expected 4 fields separated by '\\t', found 3"),
        ("3\t12\t4\tnoon", r"u.data, line 4: field 'timestamp' is not an integer: 'noon'"),
        ("3\t12\tfive\t881250952", r"u.data, line 4: field 'rating' is not a number: 'five'"),
    ],
)
def test_a_malformed_ml100k_line_is_named_by_file_and_line(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    _ml100k(tmp_path, GOOD_100K + bad_line + "\n" + GOOD_100K)
    with pytest.raises(DataError, match=message):
        EventStream.from_dataset("ml-100k", tmp_path)


def test_an_empty_or_missing_ml100k_file_is_an_error_naming_it(tmp_path: Path) -> None:
    data = _ml100k(tmp_path, "")
    with pytest.raises(DataError, match=r"u.data: empty dataset"):
        EventStream.from_dataset("ml-100k", tmp_path)
    data.unlink()
    with pytest.raises(DataError, match=r"movielens-100k.*missing: u.data"):
        EventStream.from_dataset("ml-100k", tmp_path)


def test_a_malformed_ml1m_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "movielens-1m-partial"
    folder.mkdir()
    (folder / "users.dat").write_text("1::F::1::10::48067\n")
    (folder / "movies.dat").write_text("2::A (2000)::Drama\n3::B (2000)::Drama\n")
    ratings = folder / "ratings.first487650.dat"
    ratings.write_text("1::2::5::978300760\n1::3::4::978300761\n1::3::4:978300762\n")
    with pytest.raises(DataError, match=r"ratings.first487650.dat, line 3: expected 4 fields"):
        EventStream.from_dataset("ml-1m-partial", tmp_path)
    ratings.write_text("1::2::5::978300760\n1::3::4::yesterday\n")
    with pytest.raises(DataError, match=r"line 2: field 'timestamp' is not an integer"):
        EventStream.from_dataset("ml-1m-partial", tmp_path)


def test_a_ctr_sample_has_no_times_and_the_error_says_how_to_ask_for_file_order(
    shared_data: Path,
) -> None:
    with pytest.raises(DataError, match=r"'avazu-9k'.*without event times.*--order file"):
        EventStream.from_dataset("avazu-9k", shared_data)
    stream = EventStream.from_dataset("avazu-9k", shared_data, order="file")
    assert stream.order == "file" and not stream.has_timestamps
