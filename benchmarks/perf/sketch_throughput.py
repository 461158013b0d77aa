"""Throughput and memory of the sketch operator at inference.

Streams every event of ML-1M (timestamped copy, users 1-2999; or a dataset given) through
:class:`~leanrec.search.sketch.sketcher.StreamingSketcher`, events interleaved across users in
global time order, with (1) a DiPS policy (a saved one with ``--policy``, else a freshly
initialised scorer of the same size: the cost does not depend on the weights) and (2) reservoir
sampling; and, in the same run, two peers: (3) the same DiPS policy applied the naive way, one
torch call of the scorer per event (on the first ``--naive-events`` events), and (4) a plain
per-event Python reservoir (one list per user), the cheapest possible static sketch.
Prints events/s per core and state bytes per user.

Writes ``results/sketch_throughput.json`` (``--tag T``: ``results/sketch_throughput--T.json``).
Run from the repository root:

    python -m benchmarks.perf.sketch_throughput \\
        [--policy runs/sketch-ml-1m/policy_dips_K4_tau1.pt]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.registry import load_dataset
from leanrec.search.sketch import SketchScorer
from leanrec.search.sketch.sketcher import StreamingSketcher


def naive_reservoir(users: np.ndarray, items: np.ndarray, k: int, n_users: int) -> list[list]:
    rng = random.Random(0)
    sketches: list[list[int]] = [[] for _ in range(n_users)]
    seen = [0] * n_users
    for user, item in zip(users.tolist(), items.tolist(), strict=True):
        seen[user] += 1
        sketch = sketches[user]
        if len(sketch) < k:
            sketch.append(item)
        elif rng.random() < k / seen[user]:
            sketch[rng.randrange(k)] = item
    return sketches


def naive_policy(
    scorer: SketchScorer, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, k: int
) -> None:
    """One scorer call per event over that user's K + 1 candidates (online)."""
    sketches: dict[int, list[tuple[int, float, int]]] = {}
    seen: dict[int, int] = {}
    with torch.no_grad():
        for user, item, rating in zip(
            users.tolist(), items.tolist(), ratings.tolist(), strict=True
        ):
            t = seen.get(user, 0)
            seen[user] = t + 1
            sketch = sketches.setdefault(user, [])
            sketch.append((item, rating, t))
            if len(sketch) <= k:
                continue
            cand_items = torch.tensor([[e[0] for e in sketch]])
            cand_ratings = torch.tensor([[e[1] for e in sketch]])
            age = torch.tensor([[t - e[2] for e in sketch]])
            is_new = torch.zeros(1, len(sketch), dtype=torch.bool)
            is_new[0, -1] = True
            scores = scorer(cand_items, cand_ratings, age, is_new, torch.ones_like(is_new))
            sketch.pop(int(scores.argmin()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m-partial")
    parser.add_argument("--policy", default=None, help="a saved DiPS policy (.pt)")
    parser.add_argument("--sketch-size", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=200_000, help="events per process() call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-events", type=int, default=20_000)
    add_tag_argument(parser, "sketch_throughput")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_dataset(args.dataset, data_dir())
    assert not isinstance(data, tuple)
    assert data.timestamps is not None, f"{args.dataset} has no timestamps"
    order = np.lexsort((np.arange(len(data)), data.timestamps, data.users))
    # global time order across users: the stream a server would see
    order = order[np.argsort(data.timestamps[order], kind="stable")]
    users, items = data.users[order], data.items[order]
    ratings = data.ratings[order] if data.ratings is not None else None
    n_events = len(users)

    def run(make: object) -> tuple[float, int]:
        best = float("inf")
        state = 0
        for _ in range(args.repeats):
            sketcher = make()  # type: ignore[operator]
            began = time.perf_counter()
            for lo in range(0, n_events, args.chunk):
                hi = lo + args.chunk
                sketcher.process(
                    users[lo:hi], items[lo:hi], None if ratings is None else ratings[lo:hi]
                )
            best = min(best, time.perf_counter() - began)
            state = sketcher.state_bytes()
        return best, state

    k = args.sketch_size
    if args.policy:
        from leanrec.search.sketch.policy_io import load_policy

        scorer, meta = load_policy(args.policy)
        k = meta["sketch_size"]
    else:
        scorer = SketchScorer(data.n_items, 16, 32, explicit=ratings is not None)
    learned = lambda: StreamingSketcher(data.n_users, k, 1, scorer)  # noqa: E731
    learned_s, learned_state = run(learned)
    reservoir_s, reservoir_state = run(lambda: StreamingSketcher(data.n_users, k, 1, None))
    began = time.perf_counter()
    naive_reservoir(users, items, k, data.n_users)
    naive_s = time.perf_counter() - began
    few = args.naive_events
    began = time.perf_counter()
    naive_policy(
        scorer,
        users[:few],
        items[:few],
        ratings[:few] if ratings is not None else np.zeros(few, dtype=np.float32),
        k,
    )
    naive_policy_rate = few / (time.perf_counter() - began)

    rows = [
        ["DiPS policy (StreamingSketcher)", n_events / learned_s, learned_state / data.n_users],
        ["reservoir (StreamingSketcher)", n_events / reservoir_s, reservoir_state / data.n_users],
        ["peer: DiPS policy, one torch call per event", naive_policy_rate, float("nan")],
        ["peer: per-event Python reservoir", n_events / naive_s, float("nan")],
    ]
    print(f"{args.dataset}: {n_events} events, {data.n_users} users, K = {k}, 1 thread")
    print_table(["operator", "events/s", "state bytes/user"], rows)
    speedup = n_events / learned_s / naive_policy_rate
    print(f"DiPS operator vs the same policy called per event: {speedup:.1f}x the throughput")
    write_results(
        "sketch_throughput",
        {
            "dataset": args.dataset,
            "events": n_events,
            "users": data.n_users,
            "sketch_size": k,
            "policy": args.policy or "fresh scorer (same size)",
            "dips_events_per_second": n_events / learned_s,
            "reservoir_events_per_second": n_events / reservoir_s,
            "naive_policy_events_per_second": naive_policy_rate,
            "naive_reservoir_events_per_second": n_events / naive_s,
            "dips_vs_naive_policy": speedup,
            "state_bytes_per_user": learned_state / data.n_users,
            "goal_events_per_second": 100_000,
            "goal_met": n_events / learned_s >= 100_000,
        },
        args.tag,
    )


if __name__ == "__main__":
    main()
