"""The paper-style experiment: CIESS and its baselines at several budgets (CIESS Table 1).

``leanrec experiment embedding-size --dataset ml-1m --model lightgcn`` runs, in one resumable
output directory:

1. the warm start / full-size reference (pretraining with prefix dropout);
2. the CIESS search (Algorithm 1), checkpointed every iteration;
3. selective retraining of the best masks for each target sparsity ``c`` (Eq. 15-16);
4. the baselines at the same budgets (SU, SR, popularity, MagPrune, PEP, ESAPN-style);
5. ``results.json``, ``table.md`` and three PNGs (reward and size per episode, learned size
   against popularity, quality against sparsity), plus for each ``c`` the searched model as a
   masked checkpoint and as packed safetensors.

Every stage writes its output before the next starts, and a stage already done is skipped when
the command is run again, so a killed experiment loses at most the stage in progress (and the
search and retrainings resume from their own checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from leanrec.data.interactions import Split
from leanrec.data.presets import prepare_split
from leanrec.models.base import Recommender
from leanrec.models.compress import compress, entity_sparsity, save_compressed
from leanrec.options import check_literals
from leanrec.search.embedding_size.baselines import (
    ESAPNPolicy,
    PEPConfig,
    apply_element_masks,
    magnitude_prune,
    nonzero_sparsity,
    pep_masks,
    popularity_sizes,
    random_sizes,
    uniform_sizes,
)
from leanrec.search.embedding_size.config import CIESSConfig
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.policy import CIESSSearch, SearchResult
from leanrec.search.embedding_size.retrain import (
    build_masked_model,
    fit_candidate,
    pretrain_warm_start,
    retrain_model,
    retrain_with_sizes,
    screen_on_validation,
    select_candidates,
    test_metrics,
)
from leanrec.train.bpr import TrainerConfig
from leanrec.train.checkpoint import load_checkpoint, save_atomic

METHODS = ("ciess", "su", "sr", "popularity", "magprune", "pep", "esapn")
SEARCHED = ("ciess", "esapn")
ELEMENT_PRUNERS = ("magprune", "pep")
"""Methods that prune single weights of a trained full-size model (``pruning_base``)."""
REFERENCE_ROWS = ("full", "full_ordinary")
"""Rows of the uncompressed models: the warm start and, with ``pruning_base="ordinary"``,
the ordinary full-size model."""
TABLE_METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")


@dataclass
class EmbeddingSizeExperiment:
    """What to run and where."""

    dataset: str = "ml-1m"
    """Dataset name (see ``leanrec datasets``)."""
    model: str = "lightgcn"
    """Base recommender: ``lightgcn``, ``ngcf``, ``neumf``/``ncf`` or ``mf``."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Base model config overrides (``embedding_dim`` is always ``d_max``)."""
    protocol: str = "ciess"
    """Split protocol (CIESS: all ratings positive, per-user 50/25/25)."""
    data_dir: str | None = None
    """Where the dataset lives (None: ``LEANREC_DATA`` or the cache dir)."""
    out_dir: str = "runs/embedding-size"
    """Output directory (also the resume state)."""
    methods: tuple[str, ...] = METHODS
    """Which methods to run."""
    search: CIESSConfig = field(default_factory=CIESSConfig)
    """CIESS configuration (also the budgets and retraining used by every baseline)."""
    pep: PEPConfig = field(default_factory=PEPConfig)
    """The PEP baseline's threshold learning."""
    warm_start_init: str | None = None
    """Start pretraining from this full-size checkpoint (an earlier run's ``warm_start.pt``, same
    dataset, split seed, model and ``d_max``) and train it further under ``search.pretrain``;
    None: pretrain from a fresh initialisation."""
    split_seed: int | None = None
    """Seed of the random train/valid/test split (None: ``search.seed``). Fix it to compare
    searches of several seeds on one split and one warm start."""
    pruning_base: Literal["warm_start", "ordinary"] = "warm_start"
    """The full-size model MagPrune prunes and PEP learns its thresholds on and retrains from:
    ``warm_start``, the prefix-dropout warm start CIESS searches from (its leading dimensions
    carry the large values, which favours magnitude pruning), or ``ordinary``, a full-size
    model trained without prefix dropout under the same ``search.pretrain`` (fresh
    initialisation, same seed), as the paper's pruning baselines start from. It is saved as
    ``ordinary.pt`` and reported as the row ``full_ordinary``. A run that needs no warm start
    (only element pruners on the ordinary model, and row-size baselines retrained from scratch)
    trains none."""

    def __post_init__(self) -> None:
        check_literals(self)


def _initial_warm_state(
    exp: EmbeddingSizeExperiment, split: Split
) -> dict[str, torch.Tensor] | None:
    """The weights of ``exp.warm_start_init``, checked against this experiment's split and model."""
    if exp.warm_start_init is None:
        return None
    path = Path(exp.warm_start_init)
    if not path.exists():
        raise FileNotFoundError(f"warm_start_init: no such checkpoint {path}")
    state = load_checkpoint(path)
    _check_fits_split(state, exp, split, f"warm_start_init {path}")
    return dict(state["state_dict"])


def _check_fits_split(
    state: dict[str, Any], exp: EmbeddingSizeExperiment, split: Split, what: str
) -> None:
    """Raise if a saved full-size model was not trained on this run's training split.

    A model trained on another split (another ``split_seed``) has seen this split's validation
    and test interactions: starting from it would leak them into every score."""
    problems = []
    if state.get("model") != exp.model:
        problems.append(f"model {state.get('model')!r}, this run {exp.model!r}")
    dim = state.get("config", {}).get("embedding_dim")
    if dim != exp.search.max_dim:
        problems.append(f"embedding_dim {dim}, this run's d_max {exp.search.max_dim}")
    for role, vocab in (("user", split.train.user_vocab), ("item", split.train.item_vocab)):
        if list(state.get(f"{role}_ids", [])) != vocab.raw_ids.tolist():
            problems.append(f"its {role} ids differ from this split's")
    if not problems:
        indptr, indices = split.train.user_items()
        weights = state["state_dict"]
        # both are the sorted CSR of the training matrix (Recommender.attach)
        if not (
            np.array_equal(weights["seen_indptr"].numpy(), indptr)
            and np.array_equal(weights["seen_indices"].numpy(), indices)
        ):
            problems.append(
                "it was trained on other training interactions (another split seed?), so it "
                "has seen this split's validation and test data"
            )
    if problems:
        raise ValueError(f"{what} does not fit this run: {'; '.join(problems)}")


def _save_model(model: Recommender, split: Split, path: Path) -> Path:
    state = model.checkpoint()
    state["user_ids"] = split.train.user_vocab.raw_ids.tolist()
    state["item_ids"] = split.train.item_vocab.raw_ids.tolist()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


class _Rows:
    """``rows.json``: one row per (method, target), written as soon as it exists."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []

    def has(self, method: str, target: float) -> bool:
        return any(r["method"] == method and r["target_sparsity"] == target for r in self.rows)

    def add(self, row: dict[str, Any]) -> None:
        self.rows = [
            r
            for r in self.rows
            if not (r["method"] == row["method"] and r["target_sparsity"] == row["target_sparsity"])
        ]
        self.rows.append(row)
        self.path.write_text(json.dumps(self.rows, indent=2))


def _row(method: str, target: float, sparsity: float, test: dict[str, float], **extra: Any):
    row: dict[str, Any] = {"method": method, "target_sparsity": target, "sparsity": sparsity}
    row.update({f"test_{k}": v for k, v in test.items()})
    row.update(extra)
    return row


def run_experiment(exp: EmbeddingSizeExperiment, log: Any = print) -> dict[str, Any]:
    """Run (or resume) the experiment; returns the summary also written to ``results.json``."""
    cfg = exp.search
    out = Path(exp.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(exp), indent=2, default=str))
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    split_seed = cfg.seed if exp.split_seed is None else exp.split_seed
    split, _ = prepare_split(exp.dataset, exp.protocol, exp.data_dir, split_seed)
    timings_path = out / "timings.json"
    timings: dict[str, float] = (
        json.loads(timings_path.read_text()) if timings_path.exists() else {}
    )

    def save_timings() -> None:
        timings_path.write_text(json.dumps(timings, indent=2))

    def log_epoch(epoch: int, record: dict[str, float]) -> None:
        if "valid_recall@20" in record and "loss" not in record:  # validate_initial
            log(f"  epoch 0 (start): valid recall@20 {record['valid_recall@20']:.4f}")
        elif "valid_recall@20" in record:
            log(
                f"  epoch {epoch}: loss {record['loss']:.4f} "
                f"valid recall@20 {record['valid_recall@20']:.4f} "
                f"({record['train_seconds']:.1f} s)"
            )

    # 1. warm start / full-size references -------------------------------------------
    if cfg.screen_masks < 0:
        raise ValueError(f"screen_masks must be >= 0 (0: no screen), got {cfg.screen_masks}")
    unknown = sorted(set(exp.methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    ordinary = exp.pruning_base == "ordinary" and any(m in ELEMENT_PRUNERS for m in exp.methods)
    rows = _Rows(out / "rows.json")

    def full_model(prefix_dropout: bool) -> Recommender:
        """The warm start (prefix dropout) or the ordinary model, trained once and cached."""
        name = "warm_start" if prefix_dropout else "ordinary"
        path = out / f"{name}.pt"
        if path.exists():
            from leanrec.models.registry import model_from_checkpoint

            state = load_checkpoint(path)
            _check_fits_split(state, exp, split, str(path))
            return model_from_checkpoint(state)
        init_state = _initial_warm_state(exp, split) if prefix_dropout else None
        source = f" from {exp.warm_start_init}" if init_state is not None else ""
        how = "with prefix dropout" if prefix_dropout else "without prefix dropout (ordinary)"
        log(f"pretraining the full-size {exp.model} (d_max = {cfg.max_dim}) {how}{source}")
        state_path = out / ("pretrain_state.pt" if prefix_dropout else "ordinary_state.pt")
        model, pretrained = pretrain_warm_start(
            split,
            exp.model,
            exp.model_options,
            cfg.max_dim,
            dataclasses.replace(cfg.pretrain, progress=cfg.progress),
            cfg.seed,
            checkpoint_path=state_path,
            on_epoch=log_epoch,
            init_state=init_state,
            prefix_dropout=prefix_dropout,
        )
        # the trainer's clock, which a resumed pretraining carries over from its killed legs
        timings["pretrain_seconds" if prefix_dropout else "ordinary_pretrain_seconds"] = (
            pretrained.seconds
        )
        save_timings()
        _save_model(model, split, path)
        state_path.unlink(missing_ok=True)
        return model

    # the searches always need it; the row-size baselines only to retrain from it
    needs_warm = any(
        m in SEARCHED
        or (m in ELEMENT_PRUNERS and exp.pruning_base == "warm_start")
        or (m not in ELEMENT_PRUNERS and cfg.retrain_from_warm_start)
        for m in exp.methods
    )
    warm_model: Recommender | None = None
    warm_state: dict[str, torch.Tensor] = {}
    if needs_warm:
        warm_model = full_model(prefix_dropout=True)
        warm_state = {k: v.clone() for k, v in warm_model.state_dict().items()}
        if not rows.has("full", 0.0):
            rows.add(_row("full", 0.0, 0.0, test_metrics(warm_model, split)))
    prune_model = warm_model  # what MagPrune and PEP start from (None: no pruner runs)
    if ordinary:
        prune_model = full_model(prefix_dropout=False)
        if not rows.has("full_ordinary", 0.0):
            rows.add(_row("full_ordinary", 0.0, 0.0, test_metrics(prune_model, split)))
    prune_state = {k: v.clone() for k, v in prune_model.state_dict().items()} if prune_model else {}

    # 2. searches (CIESS, and the ESAPN-style baseline through the same loop) ---------
    searches: dict[str, SearchResult] = {}
    for method in SEARCHED:
        if method in exp.methods and not all(rows.has(method, c) for c in cfg.target_sparsities):
            assert warm_model is not None
            searches[method] = _run_search(
                exp, split, warm_model, warm_state, out, timings, log, method
            )
            save_timings()
    search_result = searches.get("ciess")

    # 3-4. retraining per budget ----------------------------------------------------
    user_pop = split.train.user_popularity()
    item_pop = split.train.item_popularity()
    n_users, n_items = split.train.n_users, split.train.n_items
    retrain_cfg = dataclasses.replace(cfg.retrain, progress=cfg.progress)
    init = warm_state if cfg.retrain_from_warm_start else None
    # method-major: every budget of the first methods is done before the next method starts
    for method in exp.methods:
        for target in cfg.target_sparsities:
            tag = f"c{round(target * 100)}"
            if rows.has(method, target):
                continue
            began = time.perf_counter()
            if method == "magprune":
                assert prune_model is not None
                pruned = magnitude_prune(prune_model, target)
                rows.add(
                    _row(
                        method,
                        target,
                        nonzero_sparsity(pruned),
                        test_metrics(pruned, split),
                        base=exp.pruning_base,
                    )
                )
                continue
            if method == "pep":
                assert prune_model is not None
                masks = _pep_masks(exp, split, prune_model, out, timings, log)[target]
                # built with the seed the pruned model was pretrained from: its initial values
                model = build_masked_model(
                    split, exp.model, exp.model_options, cfg.max_dim, cfg.seed
                )
                if exp.pep.retrain_from == "trained":  # else "init": keep the initial values
                    model.load_state_dict(prune_state)
                apply_element_masks(model, masks)
                log(f"pep at c = {target:.0%}: retraining its mask")
                retrained = retrain_model(
                    model,
                    split,
                    retrain_cfg,
                    out / "retrain" / f"pep_{tag}.pt",
                    on_epoch=log_epoch,
                )
                (out / "retrain" / f"pep_{tag}.pt").unlink(missing_ok=True)
                rows.add(
                    _row(
                        method,
                        target,
                        entity_sparsity(retrained.model),
                        retrained.test,
                        valid=retrained.valid,
                        seconds=time.perf_counter() - began,
                        epochs=retrained.train_result.epochs_run,
                        base=exp.pruning_base,
                        retrain_from=exp.pep.retrain_from,
                    )
                )
                continue
            screened: dict[str, Any] = {}
            if method in SEARCHED:
                pool = cfg.screen_masks or cfg.top_masks
                chosen = select_candidates(searches[method].candidates, target, pool)
                projections = {
                    "joint": (False,),
                    "per_role": (True,),
                    "both": (False, True),
                }[cfg.budget_projection]
                sized = [
                    fit_candidate(c, cfg.max_dim, target, per_role=per_role)
                    for per_role in projections
                    for c in chosen
                ]
                if cfg.screen_masks:
                    assert warm_model is not None
                    sized, screened = _screened(
                        warm_model, split, sized, cfg, retrain_cfg,
                        out / f"{method}_{tag}_screen.pt", f"{method} at c = {target:.0%}", log,
                    )  # fmt: skip
            elif method == "su":
                sized = [uniform_sizes(n_users, n_items, cfg.max_dim, target)]
            elif method == "sr":
                rng = np.random.default_rng(cfg.seed + 1)
                sized = [random_sizes(n_users, n_items, cfg.max_dim, target, rng)]
            elif method == "popularity":
                sized = [popularity_sizes(user_pop, item_pop, cfg.max_dim, target)]
            else:  # pragma: no cover - methods were checked above
                raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
            best = None
            tried = []
            for index, (user_sizes, item_sizes) in enumerate(sized):
                log(f"{method} at c = {target:.0%}: retraining mask {index + 1}/{len(sized)}")
                retrained = retrain_with_sizes(
                    split,
                    exp.model,
                    exp.model_options,
                    cfg.max_dim,
                    user_sizes,
                    item_sizes,
                    retrain_cfg,
                    cfg.seed,
                    warm_state=init,
                    checkpoint_path=out / "retrain" / f"{method}_{tag}_{index}.pt",
                    on_epoch=log_epoch,
                )
                (out / "retrain" / f"{method}_{tag}_{index}.pt").unlink(missing_ok=True)
                score = retrained.valid.get(retrain_cfg.valid_metric or "recall@20", -1.0)
                tried.append({"valid": retrained.valid, "sparsity": retrained.sparsity})
                if best is None or score > best[0]:
                    best = (score, retrained)
            assert best is not None
            retrained = best[1]
            extra: dict[str, Any] = {
                "valid": retrained.valid,
                "candidates_retrained": tried,
                **screened,
                "seconds": time.perf_counter() - began,
                "epochs": retrained.train_result.epochs_run,
                "embedding_parameters": retrained.model.embedding_parameters(),
                "dense_bytes": retrained.model.embedding_bytes(),
            }
            if method == "ciess":
                _save_model(retrained.model, split, out / f"ciess_{tag}.pt")
                packed_path = save_compressed(
                    retrained.model,
                    out / f"ciess_{tag}.safetensors",
                    split.train.user_vocab.raw_ids,
                    split.train.item_vocab.raw_ids,
                )
                packed = compress(retrained.model)
                extra["packed_bytes"] = packed.embedding_bytes()
                extra["packed_file_bytes"] = packed_path.stat().st_size
                np.savez(
                    out / f"ciess_{tag}_sizes.npz",
                    users=_sizes_of(retrained.model, "user"),
                    items=_sizes_of(retrained.model, "item"),
                )
                timings[f"ciess_retrain_{tag}_seconds"] = extra["seconds"]
                save_timings()
            rows.add(
                _row(method, target, entity_sparsity(retrained.model), retrained.test, **extra)
            )

    # 5. reports ----------------------------------------------------------------------
    summary = _summary(exp, split, rows.rows, timings)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "table.md").write_text(markdown_table(rows.rows, cfg.target_sparsities))
    _plots(out, search_result, rows.rows, split)
    return summary


def _screened(
    warm_model: Recommender,
    split: Split,
    sized: list[tuple[np.ndarray, np.ndarray]],
    cfg: CIESSConfig,
    retrain_cfg: TrainerConfig,
    path: Path,
    what: str,
    log: Any,
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    """The ``top_masks`` best of ``sized`` by untrained validation score, and the row's record
    of the screen. The outcome is cached in ``path``, so a run killed during retraining does not
    screen again; the cache is used only if the candidates and settings are the same."""
    metric = retrain_cfg.valid_metric or "recall@20"
    settings = {
        "metric": metric,
        "top_masks": cfg.top_masks,
        "fingerprint": _sizes_fingerprint(sized),
    }
    if path.exists():
        stored = load_checkpoint(path)
        if stored["settings"] == settings:
            log(f"{what}: the screen of {len(sized)} masks was done before ({path.name})")
            kept_sizes = [(u.numpy(), i.numpy()) for u, i in stored["kept"]]
            return kept_sizes, stored["record"]
    kept, scores = screen_on_validation(warm_model, split, sized, cfg.top_masks, metric)
    log(
        f"{what}: screened {len(sized)} masks on validation {metric} (untrained), "
        f"best {scores[kept[0]]:.4f}"
    )
    kept_sizes = [sized[index] for index in kept]
    record = {
        "screened": len(scores),
        "screen_kept_scores": [scores[index] for index in kept],
        "screen_best_by_quality_score": scores[0],
    }
    stored_kept = [(torch.from_numpy(u), torch.from_numpy(i)) for u, i in kept_sizes]
    save_atomic({"settings": settings, "kept": stored_kept, "record": record}, path)
    return kept_sizes, record


def _sizes_fingerprint(sized: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """A digest of candidate sizes, in order (the screen cache is only valid for the same)."""
    digest = hashlib.sha256()
    for users, items in sized:
        digest.update(np.ascontiguousarray(users, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(items, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _pep_masks(
    exp: EmbeddingSizeExperiment,
    split: Split,
    warm_model: Recommender,
    out: Path,
    timings: dict[str, float],
    log: Any,
) -> dict[float, dict[str, torch.Tensor]]:
    """PEP's masks for every target, learned once and cached in ``pep_masks.pt``."""
    path = out / "pep_masks.pt"
    if path.exists():
        stored = load_checkpoint(path)
        return {float(k): v for k, v in stored.items()}
    log("PEP: learning soft thresholds")
    began = time.perf_counter()
    masks = pep_masks(
        warm_model,
        split.train,
        tuple(exp.search.target_sparsities),
        exp.pep,
        exp.search.seed,
        log=log,
    )
    timings["pep_threshold_seconds"] = time.perf_counter() - began
    save_atomic({str(k): v for k, v in masks.items()}, path)
    return masks


def _sizes_of(model: Recommender, role: str) -> np.ndarray:
    from leanrec.models.compress import entity_sizes

    roles = model.table_roles()
    name = next(n for n, r in roles.items() if r == role)
    return entity_sizes(model)[name]


def _run_search(
    exp: EmbeddingSizeExperiment,
    split: Split,
    warm_model: Recommender,
    warm_state: dict[str, torch.Tensor],
    out: Path,
    timings: dict[str, float],
    log: Any,
    method: str = "ciess",
) -> SearchResult:
    cfg = exp.search
    env = SizeSearchEnvironment(
        warm_model,
        split,
        cfg.eval_ks,
        cfg.inner_batches,
        cfg.inner_batch_size,
        cfg.inner_learning_rate,
        cfg.inner_negatives,
        cfg.pretrain.l2,
        warm_state,
        cfg.seed,
        item_quality=cfg.item_quality,
    )
    prefix = "" if method == "ciess" else f"{method}_"
    search = CIESSSearch(
        env,
        split.train.user_popularity(),
        split.train.item_popularity(),
        cfg,
        checkpoint_path=out / f"{prefix}search_state.pt",
        policy=ESAPNPolicy(cfg.max_dim, seed=cfg.seed) if method == "esapn" else None,
    )
    total = cfg.episodes * cfg.iterations

    def report(record: dict[str, float]) -> None:
        step = (int(record["episode"]) - 1) * cfg.iterations + int(record["iteration"])
        if step % cfg.iterations == 0 or step == 1:
            log(
                f"{method} search {step}/{total}: reward {record['mean_reward']:.4f} "
                f"size {record['mean_size']:.1f} q {record['mean_quality']:.4f} "
                f"sparsity {record['sparsity']:.3f} ({record['seconds']:.1f} s)"
            )
        (out / f"{prefix}search_history.json").write_text(json.dumps(search.history, indent=1))

    log(f"{method} search: {cfg.episodes} episodes x {cfg.iterations} iterations")
    result = search.run(resume=True, on_iteration=report)
    timings[f"{prefix}search_seconds"] = result.seconds
    timings[f"{prefix}search_iterations"] = len(result.history)
    timings[f"{prefix}seconds_per_iteration"] = result.seconds / max(1, len(result.history))
    (out / f"{prefix}search_history.json").write_text(json.dumps(result.history, indent=1))
    # the warm model was used as the environment's working copy: put its weights back
    warm_model.load_state_dict(warm_state)
    from leanrec.models.compress import set_entity_sizes

    set_entity_sizes(
        warm_model,
        np.full(split.train.n_users, cfg.max_dim),
        np.full(split.train.n_items, cfg.max_dim),
    )
    return result


def _summary(
    exp: EmbeddingSizeExperiment,
    split: Split,
    rows: list[dict[str, Any]],
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "dataset": exp.dataset,
        "model": exp.model,
        "protocol": exp.protocol,
        "users": split.train.n_users,
        "items": split.train.n_items,
        "train_interactions": len(split.train),
        "reward_lambda": exp.search.reward_lambda,
        "reward_lambda_final": exp.search.reward_lambda_final,
        "noise": exp.search.noise,
        "random_walk": exp.search.random_walk,
        "episodes": exp.search.episodes,
        "iterations": exp.search.iterations,
        "timings": timings,
        "rows": rows,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def markdown_table(rows: list[dict[str, Any]], targets: tuple[float, ...]) -> str:
    """CIESS Table 1 layout: per target sparsity, one line per method."""
    header = "| c | method | sparsity | R@5 | R@20 | N@5 | N@20 |\n|---|---|---|---|---|---|---|\n"
    lines = []
    full = [r for r in rows if r["method"] in REFERENCE_ROWS]
    for r in full:
        lines.append(_table_line("—", r))
    for target in targets:
        for r in rows:
            if r["method"] not in REFERENCE_ROWS and r["target_sparsity"] == target:
                lines.append(_table_line(f"{target:.0%}", r))
    return header + "\n".join(lines) + "\n"


def _table_line(target: str, row: dict[str, Any]) -> str:
    values = " | ".join(f"{row.get('test_' + m, float('nan')):.4f}" for m in TABLE_METRICS)
    return f"| {target} | {row['method']} | {row['sparsity']:.2%} | {values} |"


def _plots(
    out: Path, search: SearchResult | None, rows: list[dict[str, Any]], split: Split
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if search is not None and search.history:
        episodes = sorted({int(r["episode"]) for r in search.history})
        reward = [
            np.mean([r["mean_reward"] for r in search.history if r["episode"] == e])
            for e in episodes
        ]
        size = [
            np.mean([r["mean_size"] for r in search.history if r["episode"] == e]) for e in episodes
        ]
        fig, left = plt.subplots(figsize=(6, 3.5))
        left.plot(episodes, reward, color="tab:blue", marker="o", label="mean reward")
        left.set_xlabel("episode")
        left.set_ylabel("mean reward", color="tab:blue")
        right = left.twinx()
        right.plot(episodes, size, color="tab:red", marker="s", label="mean size")
        right.set_ylabel("mean embedding size", color="tab:red")
        lambdas = [r["reward_lambda"] for r in search.history if "reward_lambda" in r]
        scheduled = bool(lambdas) and min(lambdas) != max(lambdas)
        fig.suptitle(
            "CIESS search: reward and size per episode"
            + (f" (λ {lambdas[0]:.2g} → {lambdas[-1]:.2g})" if scheduled else "")
        )
        fig.tight_layout()
        fig.savefig(out / "search_curve.png", dpi=120)
        plt.close(fig)

    sizes_files = sorted(out.glob("ciess_c*_sizes.npz"))
    if sizes_files:
        data = np.load(sizes_files[len(sizes_files) // 2])
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.scatter(split.train.user_popularity(), data["users"], s=3, alpha=0.4, label="users")
        ax.scatter(split.train.item_popularity(), data["items"], s=3, alpha=0.4, label="items")
        ax.set_xscale("log")
        ax.set_xlabel("training interactions (popularity)")
        ax.set_ylabel("learned embedding size")
        ax.set_title(f"CIESS sizes ({sizes_files[len(sizes_files) // 2].stem})")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "size_vs_popularity.png", dpi=120)
        plt.close(fig)

    methods = sorted({r["method"] for r in rows if r["method"] not in REFERENCE_ROWS})
    if methods:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for method in methods:
            points = sorted(
                (r["sparsity"], r.get("test_recall@20", np.nan))
                for r in rows
                if r["method"] == method
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        for r, style in zip(
            [r for r in rows if r["method"] in REFERENCE_ROWS], ("--", ":"), strict=False
        ):
            ax.axhline(r.get("test_recall@20", np.nan), color="grey", ls=style, label=r["method"])
        ax.set_xlabel("embedding sparsity")
        ax.set_ylabel("test Recall@20")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "quality_vs_sparsity.png", dpi=120)
        plt.close(fig)
