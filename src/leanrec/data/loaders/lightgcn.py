"""The NGCF / LightGCN ``train.txt`` + ``test.txt`` format (Gowalla, Yelp2018, Amazon-Book...).

Each line is ``user item item ...`` with 0-based, already-remapped integer IDs; a user line may
list no items. The split is fixed by the files, so the loader returns ``(train, test)`` over one
pair of identity vocabularies: index ``i`` *is* raw ID ``i`` and both splits have the same
``n_users`` / ``n_items`` (max ID + 1 over both files), as LightGCN-style code assumes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.loaders._parsing import IntTokens, read_bytes, tokenize_int_lines


def read_user_item_lines(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse one ``user item item ...`` file without a per-line Python loop.

    Returns:
        ``(users, items, line_users)``: the user and item ID of every interaction in file order,
        each shape ``(n,)`` int64, and the user ID of every non-blank line (including lines with
        no items), shape ``(n_lines,)``.

    Raises:
        DataError: missing file, a token that is not a non-negative integer (naming its line),
            or a file with no lines at all.
    """
    p, raw = read_bytes(path, "user-items file")
    tokens: IntTokens = tokenize_int_lines(raw, p)
    owner = tokens.line_owner
    line_users = tokens.values[tokens.line_first]
    is_item = ~tokens.line_first
    return line_users[owner[is_item]], tokens.values[is_item], line_users


def load_lightgcn_txt(
    directory: str | Path, name: str | None = None
) -> tuple[Interactions, Interactions]:
    """Load ``train.txt`` and ``test.txt`` of a LightGCN-format folder.

    Args:
        directory: folder with ``train.txt`` and ``test.txt``.
        name: dataset name (default: the folder name); splits are named ``"<name>/train"`` and
            ``"<name>/test"``.

    Returns:
        ``(train, test)`` :class:`Interactions` without ratings or timestamps, sharing identity
        vocabularies of size ``max ID + 1`` over both files (users of lines without items are
        counted too). Gowalla: 29,858 users, 40,981 items, 810,128 train / 217,242 test.

    Raises:
        DataError: missing folder or file, a non-integer token (file and line named), or a
            file without any interaction.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise DataError("dataset directory not found", path=folder)
    dataset = name or folder.name
    train_users, train_items, train_lines = read_user_item_lines(folder / "train.txt")
    test_users, test_items, test_lines = read_user_item_lines(folder / "test.txt")
    for items, file_name in ((train_items, "train.txt"), (test_items, "test.txt")):
        if len(items) == 0:
            raise DataError("empty dataset: no interactions", path=folder / file_name)
    n_users = int(max(train_lines.max(), test_lines.max())) + 1
    n_items = int(max(train_items.max(), test_items.max())) + 1
    user_vocab = IdVocabulary.identity(n_users, name="user")
    item_vocab = IdVocabulary.identity(n_items, name="item")
    train = Interactions.from_raw(
        train_users,
        train_items,
        name=f"{dataset}/train",
        user_vocab=user_vocab,
        item_vocab=item_vocab,
    )
    test = Interactions.from_raw(
        test_users,
        test_items,
        name=f"{dataset}/test",
        user_vocab=user_vocab,
        item_vocab=item_vocab,
    )
    return train, test
