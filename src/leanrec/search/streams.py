"""What the stream experiments share: where their events come from and how the base model
learns them.

The shared-embedding and the adaptive experiments read the same datasets as event streams and
train their base models alike, so a figure of one can stand beside a figure of the other::

    stream = load_events("ml-1m", data_dir=None)          # the timestamped ml-1m-partial
    trainer = dataclasses.replace(default_trainer(), seed=0)
"""

from __future__ import annotations

from leanrec.data.events import EventStream, Order
from leanrec.data.own import DataFile
from leanrec.train.stream import StreamTrainerConfig

DATASETS = {"ml-1m": "ml-1m-partial", "ml-1m-partial": "ml-1m-partial", "ml-100k": "ml-100k"}
"""Dataset names the stream experiments accept besides any registry name (``ml-1m``: its
timestamped copy)."""


def load_events(
    dataset: str | DataFile,
    data_dir: str | None,
    order: Order = "time",
    max_events: int | None = None,
) -> EventStream:
    """The dataset's events in ``order`` (``"time"`` or ``"file"``; ``ml-1m`` reads the
    timestamped ``ml-1m-partial``), cut to the first ``max_events`` when it is set."""
    name = dataset if isinstance(dataset, DataFile) else DATASETS.get(dataset, dataset)
    stream = EventStream.from_dataset(name, data_dir, order=order)
    if max_events is not None and max_events < len(stream):
        stream = stream[0:max_events]
    return stream


def default_trainer() -> StreamTrainerConfig:
    """The base model's training: Adagrad (table lr 0.1) on the tables, Adam 3e-4 on the dense
    part, batches of 64, one pass per chunk: chosen on the ML-1M warm-up for the all-unique
    DeepFM (the stream trainer's design notes), and used for every method alike."""
    return StreamTrainerConfig(
        objective="bce",
        learning_rate=3e-4,
        table_learning_rate=0.1,
        table_optimizer="adagrad",
        passes=1,
        batch_size=64,
    )


__all__ = ["DATASETS", "default_trainer", "load_events"]
