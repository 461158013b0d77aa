"""Side features as level-1 groups: which bucket of IDs a new ID enters the hierarchy in.

AutoAssign+ starts every new ID at level 1 of its field's hierarchy. With
``AutoAssignConfig.side_groups`` level 1 holds one vector per **group** of IDs alike in what is
known of them besides their events, so a new ID reads the vector of IDs like it instead of one
vector for every new ID (:class:`~leanrec.embeddings.HierarchicalSharedEmbedding` ``groups``):

=============  =================================  ==========================================
dataset        user group                         item group
=============  =================================  ==========================================
ml-1m-partial  age bucket x gender (7 x 2 = 14)   first genre listed in ``movies.dat`` (18)
ml-100k        the same buckets of ``u.user``'s   first genre flag set in ``u.item`` (19,
               age (years) x gender (14)          ``unknown`` included)
=============  =================================  ==========================================

Why these keys: each group holds many IDs (its mean is stable), the domains are fixed by the
datasets' documentation (no group count depends on the stream), and on the ML-1M warm-up they
carry what the side files carry about the label (age: AUC 0.53 of the warm-up's group mean on
the cold-user events; first genre 0.587 against 0.591 for the full genre set of 301
combinations; gender and occupation alone about 0.50).

The groups travel **with the events**: :func:`with_side_groups` adds one value column per field
(``side_group.user``, ``side_group.item``: the group of each event's ID, -1 when the side file
does not know the ID) to the stream, so a model learns an ID's group from the first event that
names the ID, as it would read a user's profile from the request, never from the stream ahead.
The base model does not read these columns; only the hierarchy's level 1 does.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
import pandas as pd

from leanrec.data.events import EventStream

COLUMN = "side_group.{field}"
"""Name of the value column holding each event's group of ``field``."""
ML1M_AGES = (1, 18, 25, 35, 45, 50, 56)
"""ML-1M's age buckets (``users.dat``: under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+);
ML-100K's ages in years are put in the same buckets."""
GENDERS = ("F", "M")
SIDE_DATASETS = {"ml-1m-partial": "ml-1m-partial", "ml-1m": "ml-1m-partial", "ml-100k": "ml-100k"}
"""Datasets with side files (``ml-1m`` streams the timestamped ``ml-1m-partial``)."""


@dataclasses.dataclass(frozen=True)
class SideGroups:
    """Per field, a group per raw ID and the number of groups.

    Attributes:
        of_raw: field -> {raw ID: group}.
        sizes: field -> number of groups ``G`` (groups are ``0..G-1``).
    """

    of_raw: dict[str, dict[int, int]]
    sizes: dict[str, int]

    def column(self, field: str, raw_ids: np.ndarray) -> np.ndarray:
        """The group of each raw ID ``(n,)`` as float32 ``(n,)`` (-1: unknown to the file)."""
        table = self.of_raw[field]
        return np.fromiter((table.get(int(r), -1) for r in raw_ids), np.float32, len(raw_ids))


def _age_bucket(age: pd.Series) -> np.ndarray:
    """Index of the ML-1M age bucket of ages in years (or of ML-1M's own bucket codes)."""
    return np.searchsorted(np.asarray(ML1M_AGES), age.to_numpy(np.int64), side="right") - 1


def _user_groups(users: pd.DataFrame) -> dict[int, int]:
    gender = users["gender"].map({g: i for i, g in enumerate(GENDERS)}).fillna(-1).astype(int)
    group = _age_bucket(users["age"]) * len(GENDERS) + gender.to_numpy()
    valid = gender.to_numpy() >= 0
    return dict(zip(users.index[valid].astype(int).tolist(), group[valid].tolist(), strict=True))


def _item_groups(items: pd.DataFrame, genres: list[str]) -> dict[int, int]:
    flags = items[genres].to_numpy()
    has = flags.any(axis=1)
    first = flags.argmax(axis=1)  # genre columns in the file's (alphabetical) order
    return dict(zip(items.index[has].astype(int).tolist(), first[has].tolist(), strict=True))


@lru_cache(maxsize=4)
def load_side_groups(dataset: str, data_dir: str | None) -> SideGroups | None:
    """The groups of :data:`DATASET_FOLDERS` datasets from their side files; None for any other
    dataset or when the side files are missing."""
    from leanrec.data.loaders.movielens import (
        ML100K_GENRES,
        read_ml1m_movies,
        read_ml1m_users,
        read_ml100k_items,
        read_ml100k_users,
    )
    from leanrec.data.registry import dataset_path

    name = SIDE_DATASETS.get(dataset)
    if name is None:
        return None
    folder = dataset_path(name, data_dir)
    if name == "ml-100k":
        if not (folder / "u.user").is_file() or not (folder / "u.item").is_file():
            return None
        users, items = read_ml100k_users(folder / "u.user"), read_ml100k_items(folder / "u.item")
        genres = list(ML100K_GENRES)
    else:
        if not (folder / "users.dat").is_file() or not (folder / "movies.dat").is_file():
            return None
        users = read_ml1m_users(folder / "users.dat")
        items = read_ml1m_movies(folder / "movies.dat")
        genres = sorted(c for c in items.columns if c not in ("title", "genres"))
    return SideGroups(
        of_raw={"user": _user_groups(users), "item": _item_groups(items, genres)},
        sizes={"user": len(ML1M_AGES) * len(GENDERS), "item": len(genres)},
    )


def with_side_groups(stream: EventStream, side: SideGroups) -> EventStream:
    """``stream`` with one value column per field of ``side``: each event's ID's group
    (:data:`COLUMN`), -1 where the side file does not know the ID. The stream is changed in
    place (and returned)."""
    for field in side.of_raw:
        stream.values[COLUMN.format(field=field)] = side.column(field, stream.ids[field].raw())
    return stream


__all__ = ["COLUMN", "SideGroups", "load_side_groups", "with_side_groups"]
