"""Loaders from on-disk dataset formats to :class:`~leanrec.data.interactions.Interactions`.

One module per source format; every loader parses in one vectorised pass and reports bad input
as :class:`~leanrec.data.errors.DataError` naming the file and the 1-based line.
"""

from leanrec.data.loaders.ctr import (
    AVAZU_COLUMNS,
    AVAZU_SPARSE,
    CRITEO_COLUMNS,
    CRITEO_DENSE,
    CRITEO_SPARSE,
    CTRTable,
    load_avazu,
    load_criteo,
)
from leanrec.data.loaders.lightgcn import load_lightgcn_txt, read_user_item_lines
from leanrec.data.loaders.movielens import (
    ML100K_GENRES,
    find_ml1m_ratings_file,
    load_movielens_1m,
    load_movielens_100k,
    read_ml1m_movies,
    read_ml1m_users,
    read_ml100k_items,
    read_ml100k_users,
)
from leanrec.data.loaders.recbole import load_recbole_atomic, parse_recbole_header
from leanrec.data.loaders.sequences import (
    SequenceLayout,
    load_user_sequences,
    positions_within_user,
)
from leanrec.data.loaders.tabular import load_table

__all__ = [
    "AVAZU_COLUMNS",
    "AVAZU_SPARSE",
    "CRITEO_COLUMNS",
    "CRITEO_DENSE",
    "CRITEO_SPARSE",
    "ML100K_GENRES",
    "CTRTable",
    "SequenceLayout",
    "find_ml1m_ratings_file",
    "load_avazu",
    "load_criteo",
    "load_lightgcn_txt",
    "load_movielens_1m",
    "load_movielens_100k",
    "load_recbole_atomic",
    "load_table",
    "load_user_sequences",
    "parse_recbole_header",
    "positions_within_user",
    "read_ml1m_movies",
    "read_ml1m_users",
    "read_ml100k_items",
    "read_ml100k_users",
    "read_user_item_lines",
]
