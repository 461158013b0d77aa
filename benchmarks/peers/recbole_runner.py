"""Run the RecBole side of the benchmark from leanrec's environment.

``run_recbole`` makes sure the RecBole venv exists (``recbole_env.ensure_recbole_venv``), runs
``recbole_side.py`` with that venv's python in a subprocess, streams its output line by line
(prefixed ``[recbole]``) and returns the parsed result JSON::

    from benchmarks.peers.recbole_runner import run_recbole

    res = run_recbole("/work/shared/data/movielens-1m-ratings/ratings.dat",
                      epochs=2, eval_every=1, seed=2020)
    res["train_epoch_s"], res["valid_eval_s"], res["test_eval_s"], res["test_recall@10"]

Extra keyword arguments map to recbole_side.py options: ``layers``, ``dim``, ``lr``, ``batch``,
``reg_weight``, ``eval_batch``, ``min_rating``, ``threads``; and ``workdir`` (where the atomic
file and the result JSON go; default: a temporary directory, removed afterwards), ``venv_dir``,
``timeout`` (seconds), ``quiet`` (do not echo the subprocess output).

Run alone from the repository root, it prints the RecBole side's JSON:

    python -m benchmarks.peers.recbole_runner --epochs 2 --eval-every 1
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.peers.recbole_env import ensure_recbole_venv, marker_info

HERE = Path(__file__).resolve().parent

SIDE_SCRIPT = HERE / "recbole_side.py"
_OPTIONS = {
    "layers": "--layers",
    "dim": "--dim",
    "lr": "--lr",
    "batch": "--batch",
    "reg_weight": "--reg-weight",
    "eval_batch": "--eval-batch",
    "min_rating": "--min-rating",
    "threads": "--threads",
    "split_dir": "--split-dir",
}


def run_recbole(
    data_path: str | os.PathLike,
    epochs: int,
    eval_every: int,
    seed: int = 2020,
    *,
    workdir: str | os.PathLike | None = None,
    venv_dir: str | os.PathLike | None = None,
    timeout: float | None = None,
    quiet: bool = False,
    **hparams,
) -> dict:
    """Train/evaluate RecBole 1.2.1 LightGCN on ``data_path`` and return its flat result dict.

    Adds ``venv_setup_s`` (time ``ensure_recbole_venv`` took in this call, ~0 when the venv was
    already there), ``venv_install_s`` (time the venv's install took when it was built) and
    ``subprocess_wall_s`` (wall time of the whole subprocess, interpreter start-up included).
    """
    unknown = set(hparams) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"unknown RecBole hyper-parameters: {sorted(unknown)}")

    t0 = time.perf_counter()
    venv_kwargs = {} if venv_dir is None else {"venv_dir": Path(venv_dir)}
    py = ensure_recbole_venv(**venv_kwargs)
    venv_setup_s = time.perf_counter() - t0

    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="recbole-bench-")
        workdir = tmp
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out_path = workdir / "recbole_result.json"
    if out_path.exists():
        out_path.unlink()

    cmd = [
        str(py),
        "-u",
        str(SIDE_SCRIPT),
        "--data",
        str(Path(data_path).resolve()),
        "--workdir",
        str(workdir),
        "--epochs",
        str(int(epochs)),
        "--eval-every",
        str(int(eval_every)),
        "--seed",
        str(int(seed)),
        "--out",
        str(out_path),
    ]
    for key, value in hparams.items():
        if value is not None:
            cmd += [_OPTIONS[key], str(value)]

    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)  # keep leanrec's environment out of the RecBole venv
    env.pop("PYTHONHOME", None)
    env.setdefault("WANDB_MODE", "disabled")

    t0 = time.perf_counter()
    tail: list[str] = []
    killed = threading.Event()
    try:
        with subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        ) as proc:

            def _kill() -> None:
                killed.set()
                proc.kill()

            timer = threading.Timer(timeout, _kill) if timeout is not None else None
            if timer is not None:
                timer.start()
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    tail.append(line)
                    del tail[:-50]
                    if not quiet:
                        print(f"[recbole] {line}", end="", flush=True)
                rc = proc.wait()
            finally:
                if timer is not None:
                    timer.cancel()
        wall = time.perf_counter() - t0
        if killed.is_set():
            raise TimeoutError(f"RecBole run killed after {timeout}s")
        if rc != 0 or not out_path.exists():
            raise RuntimeError(
                f"recbole_side.py failed (exit code {rc}); last output:\n" + "".join(tail)
            )
        result = json.loads(out_path.read_text())
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    result["venv_setup_s"] = venv_setup_s
    result["venv_install_s"] = marker_info(py.parent.parent).get("install_seconds")
    result["subprocess_wall_s"] = wall
    return result


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="run the RecBole side and print its JSON")
    ap.add_argument("--data", default="/work/shared/data/movielens-1m-ratings/ratings.dat")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--out", default=None, help="also write the result JSON here")
    a = ap.parse_args()
    res = run_recbole(a.data, a.epochs, a.eval_every, a.seed, workdir=a.workdir)
    text = json.dumps(res, indent=1)
    if a.out:
        Path(a.out).write_text(text + "\n")
    print(text)
