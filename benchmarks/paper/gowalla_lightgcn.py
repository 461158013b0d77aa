"""LightGCN on Gowalla with the LightGCN paper's protocol: the substrate's reference run.

Protocol ``lightgcn``: the given ``train.txt`` / ``test.txt`` (810,128 / 217,242 interactions),
10% of each user's training interactions carved out for validation (the paper selects on test;
we never do), full ranking, @20. d = 64, 3 layers, at most 2.5 hours of training.
Target: test Recall@20 >= 0.170 and NDCG@20 >= 0.145 (paper: 0.1830 / 0.1554).

Writes ``results/gowalla_lightgcn.json`` and its validation curve ``gowalla_lightgcn.png``.
Run from the repository root:

    python -m benchmarks.paper.gowalla_lightgcn [--batch 16384 --lr 0.01 --max-hours 2.5]
"""

from __future__ import annotations

import argparse

from benchmarks.paper import lightgcn_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # measured with full propagation at every step (the published figures)
    lightgcn_reference.add_arguments(
        parser, propagation="full", epochs=1000, lr=1e-2, batch=16384, l2=1e-4, eval_every=10,
        patience=5, max_hours=2.5,
    )  # fmt: skip
    args = parser.parse_args()
    lightgcn_reference.run(
        "gowalla_lightgcn",
        dataset="gowalla",
        protocol="lightgcn",
        valid_metric="recall@20",
        ks=[20],
        targets={"recall@20": 0.170, "ndcg@20": 0.145},
        published={"recall@20": 0.1830, "ndcg@20": 0.1554},
        args=args,
    )


if __name__ == "__main__":
    main()
