"""RecBole side of ``benchmarks.peers.vs_recbole``: LightGCN on MovieLens-1M with RecBole 1.2.1.

Runs INSIDE the RecBole venv (see ``recbole_env.py``), never in leanrec's environment, by its
path and with no import of ``benchmarks`` or leanrec (``recbole_runner.run_recbole`` starts it)::

    benchmarks/.venv-recbole/bin/python benchmarks/peers/recbole_side.py --data ratings.dat \\
        --workdir DIR \\
        --epochs 2 --eval-every 1 --seed 2020 --out result.json

Protocol (RecBole's own): ratings.dat (``UserID::ItemRank::Rating``) is written as the atomic
file ``DIR/ml-1m/ml-1m.inter``; RecBole keeps ratings >= 3 (``val_interval``), shuffles (RO),
splits every user's interactions 8:1:1 (RS, group_by user) and ranks all items (full mode,
train items masked for valid, train+valid items masked for test). LightGCN with BPR and one
uniform negative per positive, Adam.

Training runs exactly ``--epochs`` epochs (early stopping disabled), validating every
``--eval-every`` epochs on ``recall@10``; the best-valid weights are kept in memory (``saved=False``
writes no checkpoint) and restored for the single test evaluation.

Timing: each ``Trainer._train_epoch`` call (batches, negative sampling in the dataloader, forward,
backward, step), each ``Trainer.evaluate`` call (valid and test, full ranking incl. the LightGCN
propagation it triggers). Dataset loading/filtering, splitting and model construction are timed
separately. The result is a flat JSON object (scalars and lists of scalars).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

DATASET = "ml-1m"
METRIC_KEYS = [
    "recall@10",
    "ndcg@10",
    "mrr@10",
    "hit@10",
    "precision@10",
    "recall@20",
    "ndcg@20",
    "mrr@20",
    "hit@20",
    "precision@20",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RecBole 1.2.1 LightGCN on MovieLens-1M (timed)")
    p.add_argument("--data", type=Path, required=True, help="ratings.dat (UserID::Item::Rating)")
    p.add_argument("--workdir", type=Path, required=True, help="holds ml-1m/ml-1m.inter")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--eval-every", type=int, required=True, help="valid eval every M epochs")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.001)
    p.add_argument("--batch", type=int, default=2048)
    p.add_argument("--reg-weight", type=float, default=1e-5, help="RecBole's LightGCN default")
    p.add_argument(
        "--eval-batch",
        type=int,
        default=2**25,
        help="RecBole eval_batch_size; full-sort batches hold eval_batch // n_items users "
        "(2**25 -> all 6,040 users in one batch)",
    )
    p.add_argument("--min-rating", type=float, default=3.0, help="keep ratings >= this")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument(
        "--split-dir",
        type=Path,
        default=None,
        help="use the given split: ml-1m/ml-1m.{train,valid,test}.inter written by the caller",
    )
    return p.parse_args(argv)


def convert_ratings(src: Path, workdir: Path) -> tuple[Path, int]:
    """Write ``workdir/ml-1m/ml-1m.inter`` (RecBole atomic file) from ``UserID::Item::Rating``."""
    dst_dir = workdir / DATASET
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / f"{DATASET}.inter"
    n = 0
    tmp = dst.with_suffix(".inter.tmp")
    with open(src, encoding="utf-8") as fin, open(tmp, "w", encoding="utf-8") as fout:
        fout.write("user_id:token\titem_id:token\trating:float\n")
        for line in fin:
            line = line.strip()
            if not line:
                continue
            parts = line.split("::")
            if len(parts) < 3:
                raise ValueError(f"bad line in {src}: {line!r}")
            fout.write(f"{parts[0]}\t{parts[1]}\t{parts[2]}\n")
            n += 1
    os.replace(tmp, dst)
    return dst, n


def count_positives(src: Path, min_rating: float) -> int:
    with open(src, encoding="utf-8") as fin:
        return sum(1 for line in fin if line.strip() and float(line.split("::")[2]) >= min_rating)


class _NullWriter:
    """Stands in for RecBole's TensorBoard SummaryWriter (no ./log_tensorboard files)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class _StripColor(logging.Filter):
    _ansi = re.compile(r"\x1b\[[0-9;]*m")

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._ansi.sub("", record.getMessage())
        record.args = None
        return True


def _quiet_warnings() -> None:
    """Hide deprecation noise from RecBole 1.2.1 on pandas 2.2 / torch 2.13 (fillna inplace,
    torch.sparse.FloatTensor, torch.cuda.amp.GradScaler)."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=r".*torch\.sparse\.SparseTensor.*is deprecated")


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s  %(message)s", "%H:%M:%S"))
    handler.addFilter(_StripColor())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def build_config_dict(args: argparse.Namespace, checkpoint_dir: str) -> dict:
    return {
        # environment
        "data_path": str(args.workdir),
        "checkpoint_dir": checkpoint_dir,
        "use_gpu": False,
        "gpu_id": "",
        "worker": 0,
        "seed": args.seed,
        "reproducibility": True,
        "state": "INFO",
        "show_progress": False,
        "log_wandb": False,
        "save_dataset": False,
        "save_dataloaders": False,
        # data: ratings >= min_rating are the positives; the rating column is dropped afterwards
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "RATING_FIELD": "rating",
        "load_col": {"inter": ["user_id", "item_id", "rating"]},
        "val_interval": {"rating": f"[{args.min_rating},inf)"},
        "unused_col": {"inter": ["rating"]},
        "threshold": None,  # would turn ratings into labels instead of dropping them
        "rm_dup_inter": None,
        "filter_inter_by_user_or_item": True,
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        # evaluation protocol
        "eval_args": {
            "split": {"RS": [0.8, 0.1, 0.1]},
            "group_by": "user",
            "order": "RO",
            "mode": "full",
        },
        **(
            {"benchmark_filename": ["train", "valid", "test"]}
            if getattr(args, "split_dir", None) is not None
            else {}
        ),
        "repeatable": False,
        "metrics": ["Recall", "NDCG", "MRR", "Hit", "Precision"],
        "topk": [10, 20],
        "valid_metric": "recall@10",
        "valid_metric_bigger": True,
        "metric_decimal_place": 6,
        "eval_batch_size": args.eval_batch,
        # training
        "epochs": args.epochs,
        "eval_step": args.eval_every,
        "stopping_step": 10**9,  # no early stopping: run exactly `epochs`
        "train_batch_size": args.batch,
        "learner": "adam",
        "learning_rate": args.lr,
        "weight_decay": 0.0,
        "train_neg_sample_args": {
            "distribution": "uniform",
            "sample_num": 1,
            "alpha": 1.0,
            "dynamic": False,
            "candidate_num": 0,
        },
        "shuffle": True,
        # model
        "embedding_size": args.dim,
        "n_layers": args.layers,
        "reg_weight": args.reg_weight,
        "require_pow": False,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    t_start = time.perf_counter()
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    _setup_logging()
    _quiet_warnings()
    log = logging.getLogger("recbole_side")
    args.workdir = args.workdir.resolve()
    args.data = args.data.resolve()
    args.out = args.out.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(args.workdir)  # anything RecBole writes relative to cwd lands here

    t0 = time.perf_counter()
    if args.split_dir is not None:
        # the caller's split, so both libraries train and test on the very same interactions
        args.workdir = args.split_dir.resolve()
        n_pos_expected = sum(
            len((args.workdir / DATASET / f"{DATASET}.{part}.inter").read_text().splitlines()) - 1
            for part in ("train", "valid", "test")
        )
        n_raw = n_pos_expected
        log.info("using the given split in %s (%d interactions)", args.workdir, n_pos_expected)
    else:
        inter_path, n_raw = convert_ratings(args.data, args.workdir)
        n_pos_expected = count_positives(args.data, args.min_rating)
        log.info(
            "wrote %s (%d lines, %d with rating >= %s)",
            inter_path,
            n_raw,
            n_pos_expected,
            args.min_rating,
        )
    convert_s = time.perf_counter() - t0

    import numpy as np
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)

    import recbole
    import recbole.trainer.trainer as rb_trainer_mod
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    rb_trainer_mod.get_tensorboard = lambda logger: _NullWriter()

    class TimedTrainer(Trainer):
        """Trainer that times every epoch / evaluation and keeps the best-valid weights."""

        def __init__(self, config, model):
            super().__init__(config, model)
            self.train_epoch_s: list[float] = []
            self.train_loss: list[float] = []
            self.valid_epochs: list[int] = []
            self.valid_eval_s: list[float] = []
            self.valid_results: list[dict] = []
            self.best_state = None
            self.best_epoch = -1
            self._best = -np.inf
            self._epoch = -1

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            self._epoch = epoch_idx
            t = time.perf_counter()
            loss = super()._train_epoch(train_data, epoch_idx, loss_func, show_progress)
            self.train_epoch_s.append(time.perf_counter() - t)
            self.train_loss.append(float(sum(loss) if isinstance(loss, tuple) else loss))
            log.info(
                "epoch %d: train %.2fs loss %.4f",
                epoch_idx,
                self.train_epoch_s[-1],
                self.train_loss[-1],
            )
            return loss

        def _valid_epoch(self, valid_data, show_progress=False):
            t = time.perf_counter()
            score, result = super()._valid_epoch(valid_data, show_progress)
            self.valid_eval_s.append(time.perf_counter() - t)
            self.valid_epochs.append(self._epoch)
            self.valid_results.append(dict(result))
            log.info(
                "epoch %d: valid eval %.2fs recall@10 %.4f ndcg@10 %.4f",
                self._epoch,
                self.valid_eval_s[-1],
                result["recall@10"],
                result["ndcg@10"],
            )
            # RecBole's early_stopping() takes a new best on `>=`; mirror it.
            if score >= self._best:
                self._best = score
                self.best_epoch = self._epoch
                self.best_state = copy.deepcopy(self.model.state_dict())
            return score, result

    config = Config(
        model="LightGCN",
        dataset=DATASET,
        config_dict=build_config_dict(args, tempfile.mkdtemp(prefix="recbole-ckpt-")),
    )
    init_seed(config["seed"], config["reproducibility"])
    log.info("device %s, torch threads %d", config["device"], torch.get_num_threads())

    t0 = time.perf_counter()
    dataset = create_dataset(config)
    dataset_s = time.perf_counter() - t0
    log.info("%s", dataset)
    n_inter = int(dataset.inter_num)
    if n_inter != n_pos_expected:
        log.warning(
            "RecBole kept %d interactions, expected %d (ratings >= %s)",
            n_inter,
            n_pos_expected,
            args.min_rating,
        )

    t0 = time.perf_counter()
    train_data, valid_data, test_data = data_preparation(config, dataset)
    split_s = time.perf_counter() - t0

    # as recbole.quick_start.run_recbole does before building the model
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    t0 = time.perf_counter()
    model = LightGCN(config, train_data._dataset).to(config["device"])
    model_init_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())

    trainer = TimedTrainer(config, model)
    t0 = time.perf_counter()
    trainer.fit(train_data, valid_data, verbose=True, saved=False, show_progress=False)
    fit_s = time.perf_counter() - t0

    if trainer.best_state is not None:
        model.load_state_dict(trainer.best_state)
    model.restore_user_e, model.restore_item_e = None, None  # recomputed by the test eval
    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    test_eval_s = time.perf_counter() - t0
    log.info(
        "test (best valid epoch %d) in %.2fs: %s",
        trainer.best_epoch,
        test_eval_s,
        {k: round(v, 4) for k, v in test_result.items()},
    )

    out: dict = {
        "framework": "recbole",
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "torch_num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "model": "LightGCN",
        "dataset": DATASET,
        "data_path": str(args.data),
        "seed": args.seed,
        "epochs": args.epochs,
        "eval_every": args.eval_every,
        "n_layers": args.layers,
        "embedding_size": args.dim,
        "learning_rate": args.lr,
        "train_batch_size": args.batch,
        "reg_weight": args.reg_weight,
        "eval_batch_size": args.eval_batch,
        "min_rating": args.min_rating,
        "valid_metric": "recall@10",
        # data
        "raw_interactions": n_raw,
        "expected_positive_interactions": n_pos_expected,
        "n_interactions": n_inter,
        "n_users": int(dataset.user_num - 1),  # RecBole id 0 is [PAD]
        "n_items": int(dataset.item_num - 1),
        "n_train": int(train_data._dataset.inter_num),
        "n_valid": int(valid_data._dataset.inter_num),
        "n_test": int(test_data._dataset.inter_num),
        "n_valid_users": len(getattr(valid_data, "uid_list", [])),
        "n_test_users": len(getattr(test_data, "uid_list", [])),
        "n_parameters": int(n_params),
        # times (seconds)
        "convert_s": convert_s,
        "dataset_load_s": dataset_s,
        "split_dataloader_s": split_s,
        "model_init_s": model_init_s,
        "fit_s": fit_s,
        "train_epoch_s": trainer.train_epoch_s,
        "train_total_s": sum(trainer.train_epoch_s),
        "train_epoch_mean_s": (
            sum(trainer.train_epoch_s) / len(trainer.train_epoch_s)
            if trainer.train_epoch_s
            else None
        ),
        "train_loss": trainer.train_loss,
        "valid_epochs": trainer.valid_epochs,
        "valid_eval_s": trainer.valid_eval_s,
        "test_eval_s": test_eval_s,
        "best_valid_epoch": trainer.best_epoch,
    }
    for key in METRIC_KEYS:
        out[f"valid_{key}"] = [float(r[key]) for r in trainer.valid_results]
    best = (
        trainer.valid_results[trainer.valid_epochs.index(trainer.best_epoch)]
        if (trainer.best_epoch >= 0)
        else {}
    )
    for key in METRIC_KEYS:
        out[f"best_valid_{key}"] = float(best[key]) if key in best else None
    for key in METRIC_KEYS:
        out[f"test_{key}"] = float(test_result[key])
    out["wall_s"] = time.perf_counter() - t_start
    # 1-min load average before/after: > cpu_count means the timings were contended
    out["loadavg_1m_start"] = load_start[0] if load_start else None
    out["loadavg_1m_end"] = os.getloadavg()[0] if load_start else None

    shutil.rmtree(config["checkpoint_dir"], ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    log.info("wrote %s", args.out)
    return out


if __name__ == "__main__":
    argv = sys.argv[1:]
    # RecBole's Config also parses sys.argv ("--key=value"); hide ours from it.
    sys.argv = sys.argv[:1]
    main(argv)
