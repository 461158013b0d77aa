"""Named evaluation protocols: how a dataset is filtered and split, and which cut-offs count.

A protocol is data, not code: later capabilities name one (``"ciess"``) and get exactly the split
the paper used. :func:`prepare_split` turns ``(dataset, protocol, seed)`` into a :class:`Split`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from leanrec.data import splits
from leanrec.data.errors import DataError
from leanrec.data.interactions import Interactions, Split
from leanrec.data.own import DataFile
from leanrec.data.registry import load_dataset
from leanrec.data.synthetic import make_synthetic


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol.

    Attributes:
        name: registry key.
        description: one line, with the source it follows.
        rating_threshold: keep ratings ``>=`` this as positives (``None``: keep every rating);
            users and items left without any positive leave the vocabularies.
        split: ``"ratio"`` (per-user random), ``"given"`` (the files' train/test with a per-user
            validation carve-out from train), ``"leave_one_out"`` or ``"temporal"`` (per user).
        ratios: train/valid/test fractions for ``"ratio"`` and ``"temporal"``.
        valid_ratio: validation fraction carved from the given train for ``"given"``.
        ks: cut-offs reported.
        valid_metric: metric that selects the best epoch on validation.
    """

    name: str
    description: str
    rating_threshold: float | None = None
    split: str = "ratio"
    ratios: tuple[float, ...] = (0.8, 0.1, 0.1)
    valid_ratio: float = 0.1
    ks: tuple[int, ...] = (10, 20)
    valid_metric: str = "ndcg@20"
    metrics: tuple[str, ...] = field(default=("recall", "ndcg", "precision", "hit", "mrr"))


PROTOCOLS: dict[str, Protocol] = {
    "default": Protocol(
        "default", "every interaction positive, per-user random 8:1:1, full ranking"
    ),
    "recbole": Protocol(
        "recbole",
        "RecBole's benchmark: ratings >= 3 positive, per-user random 8:1:1, full ranking",
        rating_threshold=3.0,
        ks=(10, 20),
        valid_metric="ndcg@10",
    ),
    "ciess": Protocol(
        "ciess",
        "CIESS (Qu et al., SIGIR 2023): every rating positive, per-user random 50/25/25, "
        "full ranking with train (and validation at test) masked",
        ratios=(0.5, 0.25, 0.25),
        ks=(5, 10, 20),
        valid_metric="recall@20",
    ),
    "lightgcn": Protocol(
        "lightgcn",
        "LightGCN (He et al., SIGIR 2020): the given train/test files, 10% of each user's "
        "train carved out for validation, full ranking, @20",
        split="given",
        valid_ratio=0.1,
        ks=(20,),
        valid_metric="recall@20",
    ),
    "leave-one-out": Protocol(
        "leave-one-out",
        "last interaction test, second last validation (time order), full ranking",
        split="leave_one_out",
        ks=(10, 20),
        valid_metric="ndcg@10",
    ),
    "temporal": Protocol("temporal", "per-user time order 8:1:1, full ranking", split="temporal"),
}

DEFAULT_PROTOCOL: dict[str, str] = {
    "ml-1m": "recbole",
    "ml-100k": "recbole",
    "gowalla": "lightgcn",
    "yelp2018": "lightgcn",
    "amazon-book": "lightgcn",
    "ml-1m-lightgcn": "lightgcn",
    "beauty": "leave-one-out",
    "beauty-s3rec": "leave-one-out",
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}") from None


def default_protocol(dataset: str | DataFile) -> str:
    """The protocol a dataset is evaluated by when none is named: the paper's for a registered
    one; for a file of one's own, leave-one-out when it is time-ordered per user (a sequence
    file, or a table with a time column), else ``"default"``."""
    if isinstance(dataset, DataFile):
        return "leave-one-out" if dataset.kind == "sequence" else "default"
    return DEFAULT_PROTOCOL.get(dataset, "default")


def _check_file_fits(dataset: DataFile, proto: Protocol) -> None:
    """Refuse a protocol a file of one's own cannot follow, saying which flag it lacks."""
    if proto.split == "given":
        raise DataError(
            f"protocol {proto.name!r} needs given train/test files; a file of one's own is split "
            "by another protocol (default, recbole, ciess, leave-one-out, temporal)",
            path=dataset.path,
        )
    if proto.rating_threshold is not None and not dataset.rating_col:
        raise DataError(
            f"protocol {proto.name!r} keeps ratings >= {proto.rating_threshold:g}: name the "
            "rating column of a table (--rating-col)",
            path=dataset.path,
        )
    if proto.split == "temporal" and dataset.kind != "sequence":
        raise DataError(
            f"protocol {proto.name!r} splits in time order: name the time column (--time-col)",
            path=dataset.path,
        )


def load_interactions(
    dataset: str | DataFile, data_dir: str | Path | None = None, seed: int = 0
) -> Interactions | tuple[Interactions, Interactions]:
    """Raw interactions of ``dataset`` (``"synthetic"`` needs no files; a :class:`DataFile` is
    read by its own settings, its threshold applied)."""
    if dataset == "synthetic":
        return make_synthetic(seed=seed)
    return load_dataset(dataset, data_dir)


def prepare_split(
    dataset: str | DataFile,
    protocol: str | Protocol | None = None,
    data_dir: str | Path | None = None,
    seed: int = 2024,
) -> tuple[Split, Protocol]:
    """Load ``dataset`` and split it by ``protocol`` (:func:`default_protocol` if ``None``)."""
    if protocol is None:
        protocol = default_protocol(dataset)
    proto = get_protocol(protocol) if isinstance(protocol, str) else protocol
    if isinstance(dataset, DataFile):
        _check_file_fits(dataset, proto)
    loaded = load_interactions(dataset, data_dir, seed=seed)
    if isinstance(loaded, tuple):
        if proto.split != "given":
            train, test = loaded
            loaded = train.concat(test)
        else:
            train, test = loaded
            if proto.rating_threshold is not None:
                raise DataError(f"{dataset} has no ratings: protocol {proto.name} needs them")
            return splits.given_split(train, test, valid_ratio=proto.valid_ratio, seed=seed), proto
    elif proto.split == "given":
        raise DataError(
            f"protocol {proto.name!r} needs a dataset with given train/test files; "
            f"{str(dataset)!r} has one interaction file"
        )
    data = loaded
    if proto.rating_threshold is not None:
        # like RecBole, users and items left with no positive are dropped from the candidates
        data = splits.kcore_filter(splits.to_implicit(data, proto.rating_threshold), 1, 1)
    if proto.split == "ratio":
        return splits.ratio_split(data, ratios=proto.ratios, seed=seed), proto
    if proto.split == "leave_one_out":
        if data.timestamps is not None:
            return splits.leave_one_out(data, order="time", seed=seed), proto
        return splits.leave_one_out(data, order="random", seed=seed), proto
    if proto.split == "temporal":
        return splits.temporal_split_per_user(data, ratios=proto.ratios), proto
    raise ValueError(f"protocol {proto.name!r} has unknown split kind {proto.split!r}")
