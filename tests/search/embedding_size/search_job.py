"""A tiny, deterministic CIESS search, runnable as a separate process (for the SIGKILL test).

python -m tests.search.embedding_size.search_job CHECKPOINT OUT.npz [SLEEP_SECONDS]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from leanrec.data.interactions import Split
from leanrec.data.splits import ratio_split
from leanrec.data.synthetic import make_synthetic
from leanrec.models.base import Recommender
from leanrec.search.embedding_size import CIESSConfig, CIESSSearch, SizeSearchEnvironment
from leanrec.search.embedding_size.retrain import build_masked_model


def tiny_config() -> CIESSConfig:
    return CIESSConfig(
        max_dim=16,
        episodes=2,
        iterations=4,
        inner_batches=2,
        inner_batch_size=512,
        updates_per_iteration=5,
        rl_batch_size=64,
        replay_capacity=5000,
        seed=7,
        num_threads=1,
        progress=False,
    )


def tiny_split_and_model(max_dim: int) -> tuple[Split, Recommender]:
    """120 synthetic users x 80 items split 50/25/25, and a masked MF of width ``max_dim``."""
    data = make_synthetic(n_users=120, n_items=80, n_interactions=2400, seed=3)
    split = ratio_split(data, (0.5, 0.25, 0.25), seed=3)
    return split, build_masked_model(split, "mf", {}, max_dim, seed=3)


def make_search(checkpoint: Path | None, config: CIESSConfig | None = None) -> CIESSSearch:
    config = config or tiny_config()
    split, model = tiny_split_and_model(config.max_dim)
    env = SizeSearchEnvironment(
        model,
        split,
        config.eval_ks,
        config.inner_batches,
        config.inner_batch_size,
        0.01,
        1,
        1e-4,
        model.state_dict(),
        config.seed,
    )
    return CIESSSearch(
        env, split.train.user_popularity(), split.train.item_popularity(), config, checkpoint
    )


def final_sizes(search: CIESSSearch) -> np.ndarray:
    return np.stack([c.all_sizes() for c in search.candidates])


if __name__ == "__main__":
    checkpoint, out = Path(sys.argv[1]), Path(sys.argv[2])
    pause = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    search = make_search(checkpoint)
    search.run(resume=True, on_iteration=lambda record: time.sleep(pause))
    np.savez(out, sizes=final_sizes(search))
