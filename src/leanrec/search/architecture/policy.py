"""AMEIR's three-step one-shot random search (paper Sec. 2.3) and the two NAS baselines' cores.

Every step: train a one-shot model sampling one child uniformly per batch, score children with
the inherited weights on a validation subset, re-score the best ``top_children`` on the whole
validation set and keep the best. Step 2 instead evolves interactions: start from single
fields, mutate by a Hadamard product with every field, keep the top-k per cycle (the one-shot
model's weights are inherited from cycle to cycle), keep ``M`` at the end. The derived model is
initialised from Step 3's weights and retrained (early stopping on validation AUC). With
``keep_best_one_shot`` every one-shot model is probed on the validation subset after each pass
and goes back to its best-probed state at the end of its step (:class:`OneShotCheckpoint`).

Model selection only ever reads validation samples; test samples are never touched here.
A finished step is saved as JSON in ``out_dir`` with the sampler's state, so a killed search
resumes after its last step and ends as an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from leanrec.data.behavior import BehaviorSamples, BehaviorSplit
from leanrec.models.ctr.ameir.architecture import Architecture, BlockChoice, Interaction
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel
from leanrec.models.ctr.base import CTRModel
from leanrec.runner import Executor, SerialExecutor, Shared, make_executor
from leanrec.runner.rundir import atomic_write_text
from leanrec.search.architecture.config import ArchitectureSearchConfig
from leanrec.search.architecture.interactions import initial_population, mutate
from leanrec.search.architecture.model import (
    BehaviorStepModel,
    InteractionStepModel,
    MLPChoice,
    MLPStepModel,
    derive_ameir_model,
)
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, EpochHook, evaluate_ctr

Log = Callable[[str], None]
T = TypeVar("T")

INHERITED_FROM_STEP1 = ("embedder.", "behavior.")
"""State-dict prefixes Step 3 copies from Step 1's one-shot model: field embeddings, the
behaviour blocks (Step 3 runs the chosen ones) and the read-out."""
CARRIED_FROM_STEP2 = ("embedder.",)
"""With ``carry_embeddings``: what Step 2 starts from (Step 1's) and Step 3 takes from Step 2."""


def inherit(
    model: torch.nn.Module, state: dict[str, torch.Tensor] | None, prefixes: tuple[str, ...]
) -> None:
    """Copy the entries of ``state`` under ``prefixes`` whose name and shape ``model`` has."""
    if state is None:
        return
    own = model.state_dict()
    picked = {
        k: v
        for k, v in state.items()
        if k.startswith(prefixes) and k in own and own[k].shape == v.shape
    }
    model.load_state_dict(picked, strict=False)


@dataclass
class SearchResult:
    """What a search found and what it cost.

    Attributes:
        architecture: the derived architecture.
        model: the retrained derived model (best validation epoch).
        valid: its validation AUC / log loss.
        search_seconds: wall time of the three steps (one-shot training + child scoring).
        retrain_seconds: wall time of the derived model's retraining.
        steps: per-step records (chosen child, scores, seconds).
    """

    architecture: Architecture
    model: AMEIRModel
    valid: dict[str, float]
    search_seconds: float
    retrain_seconds: float
    steps: dict[str, Any] = field(default_factory=dict)


def _trainer(
    config: ArchitectureSearchConfig,
    epochs: int,
    seed_offset: int,
    schedule: str = "constant",
    window: tuple[float, float] = (0.0, 1.0),
    on_epoch: EpochHook | None = None,
) -> CTRTrainer:
    return CTRTrainer(
        CTRTrainerConfig(
            embedding_optimizer="dense_adam",  # as the published figures were trained
            learning_rate=config.learning_rate,
            batch_size=config.batch_size,
            max_epochs=max(1, epochs),
            patience=config.retrain_patience,
            seed=config.seed * 1000 + seed_offset,
            num_threads=config.num_threads,
            progress=config.progress,
            validate_initial=config.keep_inherited,
            lr_schedule=schedule,
            schedule_window=window,
        ),
        on_epoch,
    )


def fraction_rows(rng: np.random.Generator, epochs: float, n_train: int) -> np.ndarray | None:
    """The sorted random rows of the fractional pass of ``epochs`` (None: no fraction), drawn
    from ``rng`` as :func:`train_epochs` draws them."""
    fraction = epochs - math.floor(epochs)
    if fraction <= 1e-9:
        return None
    return np.sort(rng.choice(n_train, max(1, int(fraction * n_train)), replace=False))


def epoch_samples(epochs: float, n_train: int) -> int:
    """Training samples :func:`train_epochs` uses for ``epochs`` passes over ``n_train``
    samples (the whole passes, then a random subset for the fraction)."""
    whole = math.floor(epochs)
    fraction = epochs - whole
    return whole * n_train + (max(1, int(fraction * n_train)) if fraction > 1e-9 else 0)


def one_shot_samples(config: ArchitectureSearchConfig, n_train: int) -> int:
    """Training samples AMEIR's one-shot models see in a search: ``supernet_epochs`` passes
    for Step 1, Step 3 and (with interactions to search) Step 2, whose cycles split theirs."""
    total = 2 * epoch_samples(config.supernet_epochs, n_train)
    if config.interactions > 0:
        cycle = config.supernet_epochs / config.evolution_cycles
        total += config.evolution_cycles * epoch_samples(cycle, n_train)
    return total


def train_epochs(
    model: CTRModel,
    train: BehaviorSamples,
    epochs: float,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    seed_offset: int,
    schedule: str = "constant",
    window: tuple[float, float] = (0.0, 1.0),
    on_epoch: EpochHook | None = None,
    fraction: np.ndarray | None = None,
) -> float:
    """Train ``model`` for ``epochs`` passes without validation (a fractional pass: a random
    subset of that size, drawn from ``rng`` unless ``fraction`` gives its rows, as
    :func:`fraction_rows` draws them); returns seconds.

    With ``schedule="cosine"`` these passes cover the stretch ``window`` of one cosine decay
    (the whole passes first, the fraction last). ``on_epoch`` is called after every pass,
    the fractional one included."""
    began = time.perf_counter()
    whole = math.floor(epochs)
    rows = fraction_rows(rng, epochs, len(train)) if fraction is None else fraction
    start, end = window
    middle = start + (end - start) * whole / epochs if epochs > 0 else end
    if whole:
        _trainer(config, whole, seed_offset, schedule, (start, middle), on_epoch).fit(model, train)
    if rows is not None:
        _trainer(config, 1, seed_offset + 1, schedule, (middle, end), on_epoch).fit(
            model, train.subset(rows)
        )
    model.eval()
    return time.perf_counter() - began


def train_one_shot(
    model: Any,
    train: BehaviorSamples,
    epochs: float,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    seed_offset: int,
    window: tuple[float, float] = (0.0, 1.0),
    checkpoint: OneShotCheckpoint | None = None,
) -> float:
    """:func:`train_epochs` for a one-shot model, drawing one child per batch, with the step
    size of ``config.one_shot_schedule`` (over ``window`` of it); ``checkpoint`` probes the
    model after every pass."""
    model.sample_each_batch = True
    hook: EpochHook | None = None
    if checkpoint is not None:

        def hook(epoch: int, record: dict[str, float]) -> None:
            checkpoint.observe(model)

    try:
        return train_epochs(
            model, train, epochs, config, rng, seed_offset, config.one_shot_schedule, window, hook
        )
    finally:
        model.sample_each_batch = False


class OneShotCheckpoint:
    """The best-probed state of a one-shot model while it trains (``keep_best_one_shot``).

    After every pass, :meth:`observe` scores the fixed ``children`` on ``subset`` with the
    inherited weights; the mean AUC is the probe. The state (only the entries under
    ``prefixes``, when given) of the best probe is copied; :meth:`restore` loads it back.

    Args:
        children: the probed children (fixed for the whole step).
        subset: validation samples of the probe.
        prefixes: state-dict prefixes to keep (None: the whole state).
    """

    def __init__(
        self,
        children: Sequence[Any],
        subset: BehaviorSamples,
        prefixes: tuple[str, ...] | None = None,
    ) -> None:
        if not children:
            raise ValueError("a one-shot checkpoint needs at least one child to probe")
        self.children = list(children)
        self.subset = subset
        self.prefixes = prefixes
        self.probes: list[float] = []
        self.best_pass = 0
        self.state: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0

    def observe(self, model: Any) -> float:
        """Probe ``model`` now (left in eval mode, its ``active`` child restored)."""
        began = time.perf_counter()
        active = model.active
        probe = float(np.mean(score_children(model, self.children, self.subset, 8192)))
        model.active = active
        self.probes.append(probe)
        if self.state is None or probe > max(self.probes[:-1]):
            self.best_pass = len(self.probes)
            self.state = {
                k: v.detach().clone()
                for k, v in model.state_dict().items()
                if self.prefixes is None or k.startswith(self.prefixes)
            }
        self.seconds += time.perf_counter() - began
        return probe

    def restore(self, model: Any) -> None:
        """Load the best-probed state into ``model`` (nothing when no pass was probed)."""
        if self.state is not None:
            model.load_state_dict(self.state, strict=self.prefixes is None)

    def record(self) -> dict[str, Any]:
        """``probe_auc`` per pass and the kept pass (1-based), for the step's JSON."""
        return {
            "probe_auc": list(self.probes),
            "kept_pass": self.best_pass,
            "probe_seconds": self.seconds,
        }


def draw_probe_children(model: Any, config: ArchitectureSearchConfig, stream: int) -> list[Any]:
    """``config.probe_children`` distinct children of ``model`` drawn from their own generator
    (seeded by ``config.seed`` and ``stream``), so the search's sampler is not advanced."""
    rng = np.random.default_rng([config.seed, 7919, stream])
    return _unique([model.sample(rng) for _ in range(config.probe_children)])


def one_shot_checkpoint(
    model: Any,
    config: ArchitectureSearchConfig,
    subset: BehaviorSamples,
    stream: int,
    prefixes: tuple[str, ...] | None = None,
    children: Sequence[Any] | None = None,
) -> OneShotCheckpoint | None:
    """A :class:`OneShotCheckpoint` of ``model`` when ``config.keep_best_one_shot``, else None
    (``children`` default: :func:`draw_probe_children` on ``stream``)."""
    if not config.keep_best_one_shot:
        return None
    if children is None:
        children = draw_probe_children(model, config, stream)
    return OneShotCheckpoint(children, subset, prefixes)


class ChildScorer:
    """Picklable job for an :class:`~leanrec.runner.Executor`: the validation AUC of one child
    with the inherited weights of a frozen copy of a one-shot model.

    Args:
        model: the one-shot model (copied without its sampler, so later training does not
            change the scores and the job pickles); shipped once per ``map`` call, since the
            one-shot model trains between calls.
        subset: validation samples, as a handle stored once per search
            (:meth:`~leanrec.runner.Executor.share_once`).
        batch_size: evaluation batch size.
    """

    def __init__(self, model: Any, subset: Shared[BehaviorSamples], batch_size: int = 8192) -> None:
        sampler, model.sampler = model.sampler, None
        try:
            self.model = copy.deepcopy(model).eval()
        finally:
            model.sampler = sampler
        self.subset = subset
        self.batch_size = batch_size

    def __call__(self, child: Any) -> float:
        self.model.active = child
        return float(evaluate_ctr(self.model, self.subset.get(), self.batch_size)["auc"])


def score_children(
    model: Any,
    children: Sequence[Any],
    subset: BehaviorSamples,
    batch_size: int,
    executor: Executor | None = None,
) -> list[float]:
    """Validation AUC of each child with the one-shot model's inherited weights; through
    ``executor`` (e.g. Ray) when given, in this process otherwise. Same scores either way."""
    model.eval()
    if executor is not None and not isinstance(executor, SerialExecutor):
        return [
            float(score)
            for score in executor.map(
                ChildScorer(model, executor.share_once(subset), batch_size), children
            )
        ]
    scores = []
    for child in children:
        model.active = child
        scores.append(evaluate_ctr(model, subset, batch_size)["auc"])
    return scores


def pick_best(
    model: Any,
    children: Sequence[Any],
    subset: BehaviorSamples,
    valid: BehaviorSamples,
    config: ArchitectureSearchConfig,
    executor: Executor | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Score ``children`` on ``subset``, re-score the top ones on ``valid``, return the best
    (through ``executor``, default: a :func:`search_executor` of ``config``)."""
    with _executor(config, executor) as executor:
        scores = score_children(model, children, subset, 8192, executor)
        top = np.argsort(scores)[::-1][: config.top_children]
        full = score_children(model, [children[i] for i in top], valid, 8192, executor)
    best = int(top[int(np.argmax(full))])
    return children[best], {
        "subset_auc": [float(s) for s in scores],
        "top": [int(i) for i in top],
        "top_valid_auc": [float(s) for s in full],
        "best": best,
    }


def search_executor(config: ArchitectureSearchConfig) -> Executor:
    """The executor of ``config.executor`` (Ray: ``executor_cpus_per_job``, no progress bar).
    One search opens one (a local Ray cluster starts once) and passes it to its steps."""
    if config.executor == "ray":
        return make_executor(
            "ray", num_cpus_per_job=config.executor_cpus_per_job, show_progress=False
        )
    return make_executor("serial", show_progress=False)


@contextlib.contextmanager
def _executor(config: ArchitectureSearchConfig, given: Executor | None) -> Iterator[Executor]:
    """``given``, or a :func:`search_executor` closed on exit when none is given."""
    if given is not None:
        yield given
        return
    with search_executor(config) as executor:
        yield executor


def _step_seconds(record: dict[str, Any]) -> float:
    """Wall time of a finished step (training + scoring for records written before it was
    kept)."""
    if "wall_seconds" in record:
        return float(record["wall_seconds"])
    return float(record.get("train_seconds", 0.0)) + float(record.get("score_seconds", 0.0))


def _unique(children: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for child in children:
        if child not in seen:
            seen.add(child)
            out.append(child)
    return out


# ---------------------------------------------------------------------------------- the steps
def step1_blocks(
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    step1_models: list[Any] | None = None,
    executor: Executor | None = None,
) -> tuple[tuple[BlockChoice, ...], dict[str, Any]]:
    """Step 1: behaviour blocks with the predefined MLP over ``[h^a, e^b]``; the trained
    one-shot model is appended to ``step1_models`` when given (Step 3 inherits from it)."""
    torch.manual_seed(config.seed)
    model = BehaviorStepModel(split.feature_map, _model_config(config))
    model.sampler = lambda: model.sample(rng)
    if step1_models is not None:
        step1_models.append(model)

    def describe(best: tuple[BlockChoice, ...], children: list[Any]) -> dict[str, Any]:
        return {
            "children": [[vars(b) for b in c] for c in children],
            "chosen": [vars(b) for b in best],
        }

    return _one_shot_step(model, split, subset, config, rng, (1, 1), executor, describe)


def step2_interactions(
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    log: Log | None = None,
    initial_state: dict[str, torch.Tensor] | None = None,
    step2_models: list[Any] | None = None,
    executor: Executor | None = None,
) -> tuple[tuple[Interaction, ...], dict[str, Any]]:
    """Step 2: evolve Hadamard interactions (behaviour network left out); the field
    embeddings start from ``initial_state`` when given, and the trained one-shot model is
    appended to ``step2_models`` when given. Candidates are scored through ``executor``
    (default: a :func:`search_executor` of ``config``)."""
    with _executor(config, executor) as scoring:
        return _evolve_interactions(
            split, subset, config, rng, log, initial_state, step2_models, scoring
        )


def _evolve_interactions(
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    log: Log | None,
    initial_state: dict[str, torch.Tensor] | None,
    step2_models: list[Any] | None,
    executor: Executor,
) -> tuple[tuple[Interaction, ...], dict[str, Any]]:
    if config.interactions == 0:
        return (), {"cycles": []}
    torch.manual_seed(config.seed + 1)
    model = InteractionStepModel(split.feature_map, _model_config(config))
    inherit(model, initial_state, CARRIED_FROM_STEP2)
    if step2_models is not None:
        step2_models.append(model)
    model.sampler = lambda: model.sample(rng)
    # the fields without an interaction: what every cycle's candidates are added to
    checkpoint = one_shot_checkpoint(model, config, subset, 2, CARRIED_FROM_STEP2, [None])
    names = model.field_names
    population: list[Interaction] = initial_population(names)
    cycles = []
    train_seconds = score_seconds = 0.0
    scored: dict[Interaction, float] = {}
    for cycle in range(config.evolution_cycles):
        candidates = mutate(population, names)
        if not candidates:
            break
        model.set_candidates(candidates)
        train_seconds += train_one_shot(
            model,
            split.train,
            config.supernet_epochs / config.evolution_cycles,
            config,
            rng,
            10 + cycle,
            (cycle / config.evolution_cycles, (cycle + 1) / config.evolution_cycles),
            checkpoint,
        )
        t0 = time.perf_counter()
        scores = score_children(model, candidates, subset, 8192, executor)
        score_seconds += time.perf_counter() - t0
        order = np.argsort(scores)[::-1][: config.keep_per_cycle]
        population = [candidates[i] for i in order]
        for i in order:
            scored[candidates[i]] = float(scores[i])
        cycles.append(
            {
                "candidates": len(candidates),
                "kept": [list(candidates[i]) for i in order],
                "auc": [float(scores[i]) for i in order],
            }
        )
        if log is not None:
            log(
                f"  step 2 cycle {cycle + 1}: {len(candidates)} candidates, best "
                f"{'x'.join(candidates[order[0]])} (subset AUC {scores[order[0]]:.4f})"
            )
    # top-M over everything kept in any cycle, so low and high orders compete; re-scored with
    # the final one-shot weights (a cycle's scores come from a model trained for fewer batches,
    # which would favour the last cycle's candidates)
    kept = list(scored)
    t0 = time.perf_counter()
    final = score_children(model, kept, subset, 8192, executor)
    score_seconds += time.perf_counter() - t0
    order = np.argsort(final)[::-1][: config.interactions]
    ranked = [kept[i] for i in order]
    record: dict[str, Any] = {
        "cycles": cycles,
        "train_seconds": train_seconds,
        "score_seconds": score_seconds,
        "chosen": [list(i) for i in ranked],
        "final_auc": [float(final[i]) for i in order],
    }
    if checkpoint is not None:  # what Step 3 takes: the embeddings of the best-probed pass
        checkpoint.restore(model)
        record.update(checkpoint.record())
    return tuple(ranked), record


def step3_mlp(
    split: BehaviorSplit,
    subset: BehaviorSamples,
    blocks: tuple[BlockChoice, ...],
    interactions: tuple[Interaction, ...],
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    step1_state: dict[str, torch.Tensor] | None = None,
    step2_state: dict[str, torch.Tensor] | None = None,
    executor: Executor | None = None,
) -> tuple[MLPStepModel, MLPChoice, dict[str, Any]]:
    """Step 3: MLP widths and activations by slicing, with the SE shortcut; embeddings, blocks
    and readout inherited from Step 1, then the embeddings from ``step2_state`` when given."""
    torch.manual_seed(config.seed + 2)
    model = MLPStepModel(
        split.feature_map, _model_config(config), blocks=blocks, interactions=interactions
    )
    inherit(model, step1_state, INHERITED_FROM_STEP1)
    inherit(model, step2_state, CARRIED_FROM_STEP2)
    model.max_parameters = config.max_parameters
    share = config.largest_child_share

    def draw() -> MLPChoice:
        # the sandwich rule's "max" child on a share of the batches, else a uniform child
        if share > 0 and rng.random() < share:
            return model.sample_largest(rng)
        return model.sample(rng)

    model.sampler = draw

    def describe(best: MLPChoice, children: list[Any]) -> dict[str, Any]:
        return {
            "chosen": {"widths": list(best.widths), "activations": list(best.activations)},
            "chosen_parameters": model.child_parameters(best),
        }

    best, record = _one_shot_step(model, split, subset, config, rng, (20, 3), executor, describe)
    return model, best, record


def _one_shot_step(
    model: Any,
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    rng: np.random.Generator,
    streams: tuple[int, int],
    executor: Executor | None,
    describe: Callable[[Any, list[Any]], dict[str, Any]],
) -> tuple[Any, dict[str, Any]]:
    """The one-shot random search of Steps 1 and 3: train ``model`` for ``supernet_epochs``
    drawing a child per batch (back to its best-probed state with ``keep_best_one_shot``),
    draw ``sampled_children`` distinct children from ``rng`` and keep the best on validation
    (:func:`pick_best`).

    Args:
        streams: ``(seed offset of the training, probe children's stream)``.
        describe: ``(best, children) -> fields`` of the step's record about its choice.

    Returns:
        The best child and the step's record: :func:`pick_best`'s fields, ``train_seconds``,
        ``score_seconds``, ``describe``'s fields and the probes'.
    """
    seed_offset, stream = streams
    checkpoint = one_shot_checkpoint(model, config, subset, stream)
    seconds = train_one_shot(
        model, split.train, config.supernet_epochs, config, rng, seed_offset, checkpoint=checkpoint
    )
    if checkpoint is not None:
        checkpoint.restore(model)
    children = _unique([model.sample(rng) for _ in range(config.sampled_children)])
    t0 = time.perf_counter()
    best, record = pick_best(model, children, subset, split.valid, config, executor)
    record.update(train_seconds=seconds, score_seconds=time.perf_counter() - t0)
    record.update(describe(best, children))
    if checkpoint is not None:
        record.update(checkpoint.record())
    return best, record


def _model_config(config: ArchitectureSearchConfig) -> AMEIRConfig:
    return AMEIRConfig(
        embedding_dim=config.embedding_dim,
        mlp_dims=config.predefined_mlp,
        behavior_blocks=config.behavior_blocks,
        mlp_layers=config.mlp_layers,
        readout=tuple(config.readout),
        fm_shortcut=config.fm_shortcut,
    )


def validation_subset(valid: BehaviorSamples, size: int, seed: int) -> BehaviorSamples:
    """A fixed random subset of the validation samples for scoring children."""
    if size >= len(valid):
        return valid
    rows = np.sort(np.random.default_rng(seed).choice(len(valid), size, replace=False))
    return valid.subset(rows)


def search_architecture(
    split: BehaviorSplit,
    config: ArchitectureSearchConfig,
    out_dir: str | Path | None = None,
    log: Log | None = None,
) -> SearchResult:
    """Run the three steps, derive the model from Step 3's weights and retrain it.

    With ``out_dir``, each finished step is written to ``step<k>.json`` (and Step 1's one-shot
    weights are not needed again), and a rerun skips finished steps.
    """
    with search_executor(config) as executor:
        return _search_architecture(split, config, out_dir, log, executor)


def _search_architecture(
    split: BehaviorSplit,
    config: ArchitectureSearchConfig,
    out_dir: str | Path | None,
    log: Log | None,
    executor: Executor,
) -> SearchResult:
    say = log or (lambda message: None)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rng = np.random.default_rng(config.seed)
    steps = FinishedSteps(Path(out_dir) if out_dir is not None else None, rng, say)
    subset = validation_subset(split.valid, config.validation_subset, config.seed)
    blocks, step1_state = _step1_or_resume(steps, split, subset, config, executor)
    say(f"step 1 chose {[f'{b.norm}/{b.layer}/{b.activation}' for b in blocks]}")
    interactions, step2_state = _step2_or_resume(
        steps, split, subset, config, executor, step1_state
    )
    say(f"step 2 chose {['x'.join(i) for i in interactions]}")
    step3, choice = _step3_or_resume(
        steps, split, subset, blocks, interactions, config, executor, step1_state, step2_state
    )
    say(f"step 3 chose widths {choice.widths}, activations {choice.activations}")
    # the three steps' own wall times, so a resumed search reports what it cost in total
    search_seconds = sum(
        _step_seconds(steps.records.get(name, {})) for name in ("step1", "step2", "step3")
    )
    # derive + retrain ---------------------------------------------------------------------
    model = derive_ameir_model(step3, choice)
    t0 = time.perf_counter()
    result = _trainer(config, config.retrain_epochs, 30).fit(model, split.train, split.valid)
    retrain_seconds = time.perf_counter() - t0
    architecture = model.architecture
    if steps.folder is not None:
        architecture.save(steps.folder / "architecture.json")
        model.save(steps.folder / "model.pt")
    return SearchResult(
        architecture=architecture,
        model=model,
        valid=dict(result.best_valid),
        search_seconds=search_seconds,
        retrain_seconds=retrain_seconds,
        steps=steps.records,
    )


class FinishedSteps:
    """The finished steps of one search, so a killed search resumes after its last one.

    Each step's record is kept in :attr:`records` and, with a ``folder``, written to
    ``<folder>/step<k>.json`` together with the sampler's state after the step: a resumed
    search loads it back into ``rng`` and draws what an uninterrupted one would have drawn
    from there on. The one-shot weights later steps inherit are kept next to it
    (``<folder>/step<k>_state.pt``, :meth:`save` and :meth:`load_state`).

    Args:
        folder: where the steps are kept (created; None: in memory only, nothing resumes).
        rng: the search's sampler.
        say: stage lines.
    """

    def __init__(self, folder: Path | None, rng: np.random.Generator, say: Log) -> None:
        self.folder = folder
        self.rng = rng
        self.say = say
        self.records: dict[str, Any] = {}
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path | None:
        """``<folder>/<name>`` (None without a folder)."""
        return self.folder / name if self.folder is not None else None

    def load(self, name: str) -> dict[str, Any] | None:
        """The record of step ``name`` when it finished before (the sampler set to its state
        after that step), else None."""
        path = self.path(f"{name}.json")
        if path is None or not path.is_file():
            return None
        record: dict[str, Any] = json.loads(path.read_text())
        if "rng_state" in record:
            self.rng.bit_generator.state = record["rng_state"]
        else:
            self.say(
                f"{name}.json has no sampler state (written by an older leanrec): the steps "
                "after it draw other children than an uninterrupted search would"
            )
        self.records[name] = record
        return record

    def load_state(self, name: str) -> dict[str, torch.Tensor] | None:
        """The one-shot weights step ``name`` kept (:meth:`save`), None when there are none."""
        path = self.path(f"{name}_state.pt")
        if path is None or not path.is_file():
            return None
        state: dict[str, torch.Tensor] = torch.load(path, weights_only=True)
        return state

    def save(
        self, name: str, record: dict[str, Any], state: dict[str, torch.Tensor] | None = None
    ) -> None:
        """Keep the finished step ``name`` with the sampler's state after it, and the one-shot
        weights ``state`` later steps inherit when given (written first: a step whose record
        is there has its weights there too)."""
        state_path = self.path(f"{name}_state.pt")
        if state is not None and state_path is not None:
            torch.save(state, state_path)
        record["rng_state"] = self.rng.bit_generator.state
        self.records[name] = record
        path = self.path(f"{name}.json")
        if path is not None:
            atomic_write_text(path, json.dumps(record))

    def run(
        self, title: str, step: Callable[[], tuple[T, dict[str, Any]]]
    ) -> tuple[T, dict[str, Any]]:
        """Say ``title``, run ``step`` and add its ``wall_seconds`` to the record it returns."""
        self.say(title)
        t0 = time.perf_counter()
        chosen, record = step()
        record["wall_seconds"] = time.perf_counter() - t0
        return chosen, record


TORCH_RNG_KEY = "__torch_rng_state__"
"""Key of torch's generator state in Step 3's saved weights: the derived model draws its
fresh parameters from it, so a resumed search derives the very model an uninterrupted one
would."""


def _step3_or_resume(
    steps: FinishedSteps,
    split: BehaviorSplit,
    subset: BehaviorSamples,
    blocks: tuple[BlockChoice, ...],
    interactions: tuple[Interaction, ...],
    config: ArchitectureSearchConfig,
    executor: Executor,
    step1_state: dict[str, torch.Tensor] | None,
    step2_state: dict[str, torch.Tensor] | None,
) -> tuple[MLPStepModel, MLPChoice]:
    """Step 3's one-shot model and chosen child: read back with its weights (and torch's
    generator state after it) when a resumed search finished it before, else trained now and
    kept. Its weights initialise the derived model, so a search whose Step 3 record has no
    weights beside it (written by an older leanrec) runs Step 3 again."""
    record = steps.load("step3")
    state = steps.load_state("step3") if record is not None else None
    if record is not None and state is not None:
        generator = state.pop(TORCH_RNG_KEY)
        model = MLPStepModel(
            split.feature_map, _model_config(config), blocks=blocks, interactions=interactions
        )
        model.load_state_dict(state)
        model.max_parameters = config.max_parameters
        torch.set_rng_state(generator)
        chosen = record["chosen"]
        return model, MLPChoice(tuple(chosen["widths"]), tuple(chosen["activations"]))
    steps.say("step 3: MLP")
    t0 = time.perf_counter()
    model, choice, record = step3_mlp(
        split, subset, blocks, interactions, config, steps.rng, step1_state, step2_state,
        executor,
    )  # fmt: skip
    record["wall_seconds"] = time.perf_counter() - t0
    steps.save("step3", record, {**model.state_dict(), TORCH_RNG_KEY: torch.get_rng_state()})
    return model, choice


def _step1_or_resume(
    steps: FinishedSteps,
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    executor: Executor,
) -> tuple[tuple[BlockChoice, ...], dict[str, torch.Tensor] | None]:
    """Step 1's blocks and its one-shot weights (None when a resumed search lost them)."""
    record = steps.load("step1")
    if record is not None:
        return tuple(BlockChoice(**b) for b in record["chosen"]), steps.load_state("step1")
    trained: list[Any] = []
    blocks, record = steps.run(
        "step 1: behaviour blocks",
        lambda: step1_blocks(split, subset, config, steps.rng, trained, executor),
    )
    state = trained[0].state_dict()
    steps.save("step1", record, state)
    return blocks, state


def _step2_or_resume(
    steps: FinishedSteps,
    split: BehaviorSplit,
    subset: BehaviorSamples,
    config: ArchitectureSearchConfig,
    executor: Executor,
    step1_state: dict[str, torch.Tensor] | None,
) -> tuple[tuple[Interaction, ...], dict[str, torch.Tensor] | None]:
    """Step 2's interactions and, with ``carry_embeddings``, the field embeddings Step 3
    takes from it (None otherwise, or when a resumed search lost them)."""
    record = steps.load("step2")
    if record is not None:
        interactions = tuple(tuple(i) for i in record["chosen"])
        state = steps.load_state("step2") if config.carry_embeddings else None
        if state is None and config.carry_embeddings and config.interactions > 0:
            steps.say(
                f"no {steps.path('step2_state.pt')}: Step 3 starts from Step 1's embeddings, "
                "not Step 2's"
            )
        return interactions, state
    trained: list[Any] = []
    initial = step1_state if config.carry_embeddings else None
    interactions, record = steps.run(
        "step 2: interactions",
        lambda: step2_interactions(
            split, subset, config, steps.rng, steps.say, initial, trained, executor
        ),
    )
    state = None
    if config.carry_embeddings and trained:  # only what Step 3 takes from it
        state = {
            k: v for k, v in trained[0].state_dict().items() if k.startswith(CARRIED_FROM_STEP2)
        }
    steps.save("step2", record, state)
    return interactions, state
