"""User interaction sequences (sequential recommendation: SASRec, BERT4Rec, S3Rec...).

Two text layouts occur, both with integer IDs and items already in time order:

* ``"lines"``: one user per line, ``user item1 item2 ...`` (S3Rec/ICLRec ``Beauty.txt``);
* ``"pairs"``: one ``user item`` pair per line, grouped by user in time order (BERT4Rec
  ``beauty.txt``, SASRec).

The files carry no timestamps, so the position of an item within its user's sequence
(0, 1, 2, ...) is stored as the timestamp: temporal splits and leave-one-out then keep the order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions
from leanrec.data.loaders._parsing import int_vocabulary, read_bytes, tokenize_int_lines

SequenceLayout = Literal["auto", "lines", "pairs"]


def positions_within_user(users: np.ndarray) -> np.ndarray:
    """Rank of each interaction among its user's interactions in array order, shape ``(n,)``.

    Example: users ``[5, 5, 7, 5]`` -> ``[0, 1, 0, 2]``. Vectorised (stable sort + group
    offsets), so it works whether or not a user's rows are contiguous.
    """
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    group_start = np.ones(len(users), dtype=bool)
    group_start[1:] = sorted_users[1:] != sorted_users[:-1]
    start_index = np.maximum.accumulate(np.where(group_start, np.arange(len(users)), 0))
    positions = np.empty(len(users), dtype=np.int64)
    positions[order] = np.arange(len(users)) - start_index
    return positions


def load_user_sequences(
    path: str | Path, layout: SequenceLayout = "auto", name: str | None = None
) -> Interactions:
    """Load a sequence file in the ``"lines"`` or ``"pairs"`` layout (see module docstring).

    Args:
        path: the text file.
        layout: ``"auto"`` picks ``"pairs"`` when every line has exactly two IDs and
            ``"lines"`` otherwise (a ``"lines"`` file in which every user has one item reads the
            same either way).
        name: dataset name (default: the file stem).

    Returns:
        :class:`Interactions` whose timestamps are the 0-based positions within each user's
        sequence (int64), no ratings. Users of item-less lines stay in the user vocabulary.
        BERT4Rec Beauty: 40,226 users / 54,542 items / 353,962; S3Rec Beauty: 22,363 / 12,101 /
        198,502.

    Raises:
        DataError: missing file, a non-integer token, a line that is not ``user item`` in the
            ``"pairs"`` layout, or no interaction at all; file and line are named.
    """
    if layout not in ("auto", "lines", "pairs"):
        raise ValueError(f"layout must be 'auto', 'lines' or 'pairs', got {layout!r}")
    p, raw = read_bytes(path, "sequence file")
    tokens = tokenize_int_lines(raw, p)
    per_line = tokens.tokens_per_line()
    if layout == "auto":
        layout = "pairs" if bool(np.all(per_line == 2)) else "lines"
    if layout == "pairs":
        bad = np.flatnonzero(per_line != 2)
        if len(bad):
            first_token = np.flatnonzero(tokens.line_first)[bad[0]]
            raise DataError(
                f"expected 2 fields 'user item' separated by whitespace, found {per_line[bad[0]]}",
                path=p,
                line=int(tokens.line_index[first_token]) + 1,
            )
    line_users = tokens.values[tokens.line_first]
    is_item = ~tokens.line_first
    users = line_users[tokens.line_owner[is_item]]
    items = tokens.values[is_item]
    if len(items) == 0:
        raise DataError("empty dataset: no interactions", path=p)
    return Interactions.from_raw(
        users,
        items,
        timestamps=positions_within_user(users),
        name=name or p.stem,
        user_vocab=int_vocabulary(line_users, "user"),
        item_vocab=int_vocabulary(items, "item"),
    )
