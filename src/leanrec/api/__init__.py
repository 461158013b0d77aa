"""leanrec's Python API: train a base recommender, or run a learned policy on it.

Every entry point takes a typed config and returns a result object that can be saved::

    from leanrec.api import TrainConfig, train
    run = train(TrainConfig(dataset="ml-1m", model="lightgcn"))
    run.save("lightgcn.pt")

The policies (embedding sizes, sketching, architecture search, shared-embedding assignment on a
stream, adaptive architectures per session) each have one function here, taking the policy's
experiment config and returning a :class:`~leanrec.search.base.ExperimentResult`.
"""

from leanrec.api.adaptive import adapt_architecture
from leanrec.api.architecture import search_architecture
from leanrec.api.embedding_size import search_embedding_sizes
from leanrec.api.next_item import NextItemRun, NextItemTrainConfig, train_next_item
from leanrec.api.shared_embedding import assign_shared_embeddings
from leanrec.api.sketch import sketch
from leanrec.api.training import (
    TrainConfig,
    TrainedRun,
    load_model,
    metrics_record,
    refit,
    train,
    write_run_dir,
)
from leanrec.data.own import DataFile

__all__ = [
    "DataFile",
    "NextItemRun",
    "NextItemTrainConfig",
    "TrainConfig",
    "TrainedRun",
    "adapt_architecture",
    "assign_shared_embeddings",
    "load_model",
    "metrics_record",
    "refit",
    "search_architecture",
    "search_embedding_sizes",
    "sketch",
    "train",
    "train_next_item",
    "write_run_dir",
]
