"""The river side of ``vs_river``: runs inside river's own venv (``river_env.py``), by path.

Reads a job file (JSON): the stream arrays (``.npz`` with ``user``, ``item``, ``label``,
``rating``: per event, in stream order; IDs are the stream's first-appearance codes) and a list
of runs. Each run learns events ``[0, stop)`` one at a time, in order (river's ``learn_one``),
predicting before learning (``predict_one``), and keeps the predictions of events
``[score_from, stop)``. ``starts`` (optional, the first event of each chunk, ascending from 0)
sets the protocol: every event of a chunk is predicted before any event of the chunk is learnt,
as leanrec's prequential evaluation does; without it, each event is its own chunk (river's own
predict-one-learn-one loop, where a prediction has seen every earlier label):

* ``fm``: ``facto.FMClassifier`` on the one-hot features ``{"user=<id>": 1, "item=<id>": 1}``,
  predicting ``P(label = 1)``;
* ``mf``: ``reco.BiasedMF`` on the rating (``learn_one(user, item, rating)``), predicting the
  rating.

The feature keys and ID strings are built once before the timed loop (what a river user would
hold anyway); the timed loop is the dict per event, the prediction and the update. Each run
writes ``<out>.npz`` with ``prediction`` (float64, ``stop - score_from`` values), ``seconds``
(the timed loop, wall clock), ``cpu_seconds`` (the same loop in this process's CPU time, which
other jobs on a shared machine barely move) and ``events`` (``stop``).

    python benchmarks/peers/river_side.py JOB.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _fm(params: dict[str, Any], seed: int) -> Any:
    from river import facto, optim  # river exists only in its own venv

    return facto.FMClassifier(
        n_factors=int(params.get("n_factors", 16)),
        weight_optimizer=optim.SGD(float(params["weight_lr"])),
        latent_optimizer=optim.SGD(float(params["latent_lr"])),
        intercept_lr=float(params.get("intercept_lr", 0.01)),
        seed=seed,
    )


def _mf(params: dict[str, Any], seed: int) -> Any:
    from river import optim, reco

    return reco.BiasedMF(
        n_factors=int(params.get("n_factors", 16)),
        bias_optimizer=optim.SGD(float(params["bias_lr"])),
        latent_optimizer=optim.SGD(float(params["latent_lr"])),
        l2_bias=float(params.get("l2_bias", 0.0)),
        l2_latent=float(params.get("l2_latent", 0.0)),
        seed=seed,
    )


def run(arrays: dict[str, np.ndarray], spec: dict[str, Any]) -> dict[str, Any]:
    stop, score_from = int(spec["stop"]), int(spec["score_from"])
    users, items = arrays["user"][:stop], arrays["item"][:stop]
    predictions = np.empty(stop - score_from, dtype=np.float64)
    seed = int(spec.get("seed", 0))
    # chunks [starts[j], starts[j + 1]): every event of a chunk is predicted before any of
    # them is learnt (the prequential protocol); no starts: chunks of one event (river's own)
    starts = [int(s) for s in spec.get("starts", [])] or list(range(stop))
    bounds = list(zip(starts, [*starts[1:], stop], strict=True))
    if spec["model"] == "fm":
        user_key = [f"user={u}" for u in range(int(users.max()) + 1)]
        item_key = [f"item={i}" for i in range(int(items.max()) + 1)]
        labels = arrays["label"][:stop].astype(bool).tolist()
        model = _fm(spec["params"], seed)
        u_list, i_list = users.tolist(), items.tolist()
        began, began_cpu = time.perf_counter(), time.process_time()
        for start, end in bounds:
            xs = [{user_key[u_list[k]]: 1.0, item_key[i_list[k]]: 1.0} for k in range(start, end)]
            for k in range(max(start, score_from), end):
                probability = model.predict_proba_one(xs[k - start]).get(True, 0.0)
                predictions[k - score_from] = probability
            for k in range(start, end):
                model.learn_one(xs[k - start], labels[k])
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    elif spec["model"] == "mf":
        user_id = [str(u) for u in range(int(users.max()) + 1)]
        item_id = [str(i) for i in range(int(items.max()) + 1)]
        ratings = arrays["rating"][:stop].astype(float).tolist()
        mf = _mf(spec["params"], seed)
        u_list, i_list = users.tolist(), items.tolist()
        began, began_cpu = time.perf_counter(), time.process_time()
        for start, end in bounds:
            for k in range(max(start, score_from), end):
                predictions[k - score_from] = mf.predict_one(user_id[u_list[k]], item_id[i_list[k]])
            for k in range(start, end):
                mf.learn_one(user_id[u_list[k]], item_id[i_list[k]], ratings[k])
        seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - began_cpu
    else:
        raise ValueError(f"unknown river model {spec['model']!r}")
    np.savez(
        spec["out"], prediction=predictions, seconds=seconds, cpu_seconds=cpu_seconds, events=stop
    )
    return {
        "out": spec["out"],
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "events_per_second": stop / seconds,
    }


def main() -> None:
    job = json.loads(Path(sys.argv[1]).read_text())
    with np.load(job["stream"]) as data:
        arrays = {k: data[k] for k in data.files}
    for spec in job["runs"]:
        report = run(arrays, spec)
        print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
