"""NAS baselines on AMEIR's space and budget (paper Table 4), and the joint one-shot model.

* :func:`random_search_from_scratch`: sample whole architectures, train each from scratch for a
  short budget, keep the best on validation, retrain it (the "Random" row of Table 4).
* :func:`single_stage_one_shot`: one one-shot model over the joint space (blocks, ``M``
  interaction slots, MLP), children sampled jointly; the best child is derived and retrained
  ("One-shot Random Search", Li & Talwalkar 2019).

Both only read validation samples for selection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from leanrec.data.behavior import BehaviorSplit, FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr.ameir.architecture import (
    Architecture,
    BlockChoice,
    Interaction,
    interaction_name,
)
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel, field_indices
from leanrec.search.architecture.config import ArchitectureSearchConfig
from leanrec.search.architecture.model import MLPChoice, MLPStepModel, derive_ameir_model
from leanrec.search.architecture.policy import (
    SearchResult,
    _model_config,
    _trainer,
    epoch_samples,
    fraction_rows,
    one_shot_checkpoint,
    pick_best,
    search_executor,
    train_epochs,
    train_one_shot,
    validation_subset,
)
from leanrec.search.architecture.space import sample_blocks, sample_mlp
from leanrec.train.pointwise import evaluate_ctr


def embedded_field_names(feature_map: FeatureMap) -> list[str]:
    """Names of the non-sequential fields ``e^b`` as the CTR embedder orders them."""
    names = [f.name for f in feature_map.categorical]
    if feature_map.tag_field:
        names.append(f"target_{feature_map.tag_field}")
    return names


def sample_interactions(
    rng: np.random.Generator, field_names: list[str], count: int, max_order: int
) -> tuple[Interaction, ...]:
    """``count`` distinct Hadamard interactions, order uniform in ``[2, max_order]``, fields
    uniform without replacement."""
    chosen: list[Interaction] = []
    max_order = min(max_order, len(field_names))
    for _ in range(100 * max(1, count)):
        if len(chosen) == count:
            break
        order = int(rng.integers(2, max_order + 1))
        picks = rng.choice(len(field_names), order, replace=False)
        interaction = interaction_name(tuple(field_names[i] for i in picks))
        if interaction not in chosen:
            chosen.append(interaction)
    return tuple(chosen)


def sample_architecture(
    rng: np.random.Generator, field_names: list[str], config: ArchitectureSearchConfig
) -> Architecture:
    """A uniform child of the whole space."""
    widths, activations = sample_mlp(rng, config.mlp_layers)
    return Architecture(
        blocks=sample_blocks(rng, config.behavior_blocks, has_target=True),
        interactions=sample_interactions(
            rng, field_names, config.interactions, config.evolution_cycles + 1
        ),
        mlp_widths=widths,
        mlp_activations=activations,
        se_shortcut=True,
        readout=tuple(config.readout),
        fm_shortcut=config.fm_shortcut,
    )


@dataclass(frozen=True)
class JointChoice:
    """A child of :class:`JointOneShotModel`."""

    blocks: tuple[BlockChoice, ...]
    interactions: tuple[Interaction, ...]
    mlp: MLPChoice


class JointOneShotModel(MLPStepModel):
    """One one-shot model over blocks x interaction slots x MLP (single-stage baseline).

    The ``M`` interaction slots share their MLP input weights by position, whatever
    interaction fills them; blocks and MLP share weights like the per-step models.
    """

    name = "ameir_joint"

    def __init__(
        self,
        feature_map: FeatureMap,
        config: AMEIRConfig | None = None,
        table_factory: TableFactory | None = None,
        n_interactions: int = 5,
        max_order: int = 4,
    ) -> None:
        cfg = config if config is not None else AMEIRConfig()
        blocks = tuple(BlockChoice() for _ in range(cfg.behavior_blocks))
        # placeholder interactions fix the slot count; replaced per child
        names_probe = embedded_field_names(feature_map)
        placeholder = tuple(
            interaction_name((names_probe[0], names_probe[1 + i % (len(names_probe) - 1)]))
            for i in range(n_interactions)
        )
        super().__init__(feature_map, cfg, table_factory, blocks, placeholder)
        self.max_order = max_order
        self.n_interactions = n_interactions
        self.active = JointChoice(self.blocks, self.interactions, self.active)

    def sample(self, rng: np.random.Generator, attempts: int = 1000) -> JointChoice:  # type: ignore[override]
        """A uniform joint child; its MLP is drawn within ``max_parameters`` counted with the
        child's own blocks and interactions."""
        names = self.embedder.field_names
        blocks = sample_blocks(rng, self.config.behavior_blocks, has_target=True)
        interactions = sample_interactions(rng, names, self.n_interactions, self.max_order)
        self._use_child(JointChoice(blocks, interactions, self.active.mlp))
        return JointChoice(blocks, interactions, MLPStepModel.sample(self, rng, attempts))

    def _use_child(self, choice: JointChoice) -> None:
        self.blocks = choice.blocks
        if choice.interactions != self.interactions:
            self.interactions = choice.interactions
            self.interaction_index = field_indices(self.embedder.field_names, self.interactions)

    def logits(self, inputs: Any) -> torch.Tensor:
        choice: JointChoice = self.active
        self._use_child(choice)
        self.active = choice.mlp
        try:
            return super().logits(inputs)
        finally:
            self.active = choice

    def derive(self, choice: JointChoice) -> AMEIRModel:
        """The derived model of ``choice`` with inherited weights."""
        self._use_child(choice)
        return derive_ameir_model(self, choice.mlp)


def single_stage_one_shot(
    split: BehaviorSplit, config: ArchitectureSearchConfig, log: Any = None
) -> SearchResult:
    """Single-stage one-shot random search with the same one-shot training epochs as the
    three steps together and as many scored children as Steps 1 and 3 together."""
    say = log or (lambda message: None)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rng = np.random.default_rng(config.seed)
    subset = validation_subset(split.valid, config.validation_subset, config.seed)
    began = time.perf_counter()
    torch.manual_seed(config.seed)
    model = JointOneShotModel(
        split.feature_map,
        _model_config(config),
        n_interactions=config.interactions,
        max_order=config.evolution_cycles + 1,
    )
    model.max_parameters = config.max_parameters
    model.sampler = lambda: model.sample(rng)
    checkpoint = one_shot_checkpoint(model, config, subset, 4)
    train_one_shot(
        model, split.train, 3 * config.supernet_epochs, config, rng, 40, checkpoint=checkpoint
    )
    if checkpoint is not None:
        checkpoint.restore(model)
    children = [model.sample(rng) for _ in range(2 * config.sampled_children)]
    best, record = pick_best(model, children, subset, split.valid, config)
    if checkpoint is not None:
        record.update(checkpoint.record())
    search_seconds = time.perf_counter() - began
    say(f"single-stage one-shot chose {best}")
    derived = model.derive(best)
    t0 = time.perf_counter()
    result = _trainer(config, config.retrain_epochs, 50).fit(derived, split.train, split.valid)
    return SearchResult(
        architecture=derived.architecture,
        model=derived,
        valid=dict(result.best_valid),
        search_seconds=search_seconds,
        retrain_seconds=time.perf_counter() - t0,
        steps={"joint": {k: v for k, v in record.items() if k != "subset_auc"}},
    )


def random_search_from_scratch(
    split: BehaviorSplit,
    config: ArchitectureSearchConfig,
    budget_seconds: float | None = None,
    epochs_per_child: float = 0.25,
    log: Any = None,
    budget_samples: int | None = None,
) -> SearchResult:
    """Train sampled architectures from scratch (``epochs_per_child`` each, on a random subset
    when fractional) until ``budget_seconds`` of wall time or ``budget_samples`` training
    samples (exactly one of the two) are spent; retrain the best on validation. At least one
    child is always trained."""
    if (budget_seconds is None) == (budget_samples is None):
        raise ValueError("give random search exactly one budget: budget_seconds or budget_samples")
    if epochs_per_child <= 0:
        raise ValueError(f"epochs_per_child must be > 0, got {epochs_per_child}")
    say = log or (lambda message: None)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rng = np.random.default_rng(config.seed)
    subset = validation_subset(split.valid, config.validation_subset, config.seed)
    names = embedded_field_names(split.feature_map)
    per_child = epoch_samples(epochs_per_child, len(split.train))
    train_child = ChildTrainer(split, subset, config, epochs_per_child)
    began = time.perf_counter()
    tried: list[tuple[float, Architecture]] = []

    def draw() -> tuple[Architecture, np.ndarray | None]:
        # the same draws, in the same order, as training the children one by one
        while True:
            architecture = sample_architecture(rng, names, config)
            if config.max_parameters is None:
                break
            model = AMEIRModel.from_architecture(
                split.feature_map, architecture, config.embedding_dim
            )
            if _parameters(model) <= config.max_parameters:
                break
        rows = fraction_rows(rng, epochs_per_child, len(split.train))
        return architecture, rows

    if budget_samples is not None:  # known number of children: trained through the executor
        jobs: list[tuple[int, Architecture, np.ndarray | None]] = []
        while not jobs or len(jobs) * per_child < budget_samples:
            jobs.append((len(jobs), *draw()))
        with search_executor(config) as executor:
            scores = executor.map(train_child, jobs)
        tried = [(float(score), job[1]) for score, job in zip(scores, jobs)]
        say(f"  random search: {len(tried)} children, best subset AUC {max(scores):.4f}")
    else:
        assert budget_seconds is not None
        while not tried or time.perf_counter() - began < budget_seconds:
            job = (len(tried), *draw())
            tried.append((train_child(job), job[1]))
            say(f"  random child {len(tried)}: subset AUC {tried[-1][0]:.4f}")
    search_seconds = time.perf_counter() - began
    best = max(tried, key=lambda pair: pair[0])[1]
    torch.manual_seed(config.seed)  # before building: the retrained model's initialisation
    model = AMEIRModel.from_architecture(split.feature_map, best, config.embedding_dim)
    t0 = time.perf_counter()
    result = _trainer(config, config.retrain_epochs, 70).fit(model, split.train, split.valid)
    return SearchResult(
        architecture=best,
        model=model,
        valid=dict(result.best_valid),
        search_seconds=search_seconds,
        retrain_seconds=time.perf_counter() - t0,
        steps={
            "random": {
                "children": len(tried),
                "training_samples": len(tried) * per_child,
                "subset_auc": [a for a, _ in tried],
            }
        },
    )


class ChildTrainer:
    """Picklable job for an executor: train one random-search child from scratch for
    ``epochs_per_child`` passes and return its validation-subset AUC.

    A job is ``(index, architecture, rows)``: the child's initialisation is seeded by
    ``config.seed`` and ``index`` only, and ``rows`` are its fractional pass's samples
    (:func:`~leanrec.search.architecture.policy.fraction_rows`), so a child trains the same
    wherever it runs.
    """

    def __init__(
        self,
        split: BehaviorSplit,
        subset: Any,
        config: ArchitectureSearchConfig,
        epochs_per_child: float,
    ) -> None:
        self.split = split
        self.subset = subset
        self.config = config
        self.epochs_per_child = epochs_per_child

    def __call__(self, job: tuple[int, Architecture, np.ndarray | None]) -> float:
        index, architecture, rows = job
        config = self.config
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        torch.manual_seed(config.seed * 1000 + 60 + index)
        model = AMEIRModel.from_architecture(
            self.split.feature_map, architecture, config.embedding_dim
        )
        unused = np.random.default_rng(0)  # the rows are given: nothing is drawn from it
        train_epochs(
            model,
            self.split.train,
            self.epochs_per_child,
            config,
            unused,
            60 + index,
            fraction=rows,
        )
        return float(evaluate_ctr(model, self.subset)["auc"])


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
