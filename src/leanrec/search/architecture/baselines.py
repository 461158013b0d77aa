r"""Every method of AMEIR's two tables, as registered method objects, and the NAS baselines.

An experiment is a loop over method objects (:data:`METHODS` for the CTR table,
:data:`NEXT_ITEM_METHODS` for the next-item table): each has a ``name``, says whether it
``searches`` (hand-designed baselines are trained first; on CTR the best of them caps the
searches' parameter count) and ``fit``\ s a model for one seed on training data, choosing on
validation data only. The experiment scores it on test afterwards.

The NAS baselines on AMEIR's space and budget (paper Table 4):

* :func:`random_search_from_scratch`: sample whole architectures, train each from scratch for a
  short budget, keep the best on validation, retrain it (the "Random" row of Table 4).
* :func:`single_stage_one_shot`: one one-shot model over the joint space (blocks, ``M``
  interaction slots, MLP), children sampled jointly; the best child is derived and retrained
  ("One-shot Random Search", Li & Talwalkar 2019).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch

from leanrec.data.behavior import BehaviorSplit, FeatureMap
from leanrec.data.sequential import NextItemSplit
from leanrec.embeddings.base import TableFactory
from leanrec.models.ctr import build_ctr_model
from leanrec.models.ctr.ameir.architecture import (
    Architecture,
    BlockChoice,
    Interaction,
    interaction_name,
)
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel, field_indices
from leanrec.models.ctr.base import CTRModel
from leanrec.models.seq import build_next_item_model
from leanrec.models.seq.base import NextItemModel
from leanrec.runner.registry import Registry
from leanrec.runner.rundir import Log, RowStore, RunDirectory
from leanrec.search.architecture.config import (
    HAND_DESIGNED,
    ArchitectureExperiment,
    ArchitectureSearchConfig,
    RetrievalExperiment,
    RetrievalSearchConfig,
)
from leanrec.search.architecture.model import MLPChoice, MLPStepModel, derive_ameir_model
from leanrec.search.architecture.policy import (
    SearchResult,
    _model_config,
    _trainer,
    epoch_samples,
    fraction_rows,
    one_shot_checkpoint,
    one_shot_samples,
    pick_best,
    search_architecture,
    search_executor,
    train_epochs,
    train_one_shot,
    validation_subset,
)
from leanrec.search.architecture.retrieval import search_retrieval, sequential_trainer_config
from leanrec.search.architecture.space import sample_blocks, sample_mlp
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr
from leanrec.train.sequential import SequentialTrainer


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


# ------------------------------------------------------------------------- method objects
ModelT = TypeVar("ModelT")


@dataclass
class FittedModel(Generic[ModelT]):
    """One method's model for one seed, chosen on validation, before its test scores.

    Attributes:
        model: the trained model (its best validation epoch).
        valid: its validation metrics (CTR: ``auc`` and ``logloss``; the next-item table
            scores validation itself).
        train_seconds: wall time of its training (a search's: of the derived model's).
        search_seconds: wall time of the architecture search before it (0: hand-designed).
        extra: the method's own row fields (``best_epoch``, ``architecture``).
        scratch: files to delete once the row is stored (a baseline's resume checkpoint).
    """

    model: ModelT
    valid: dict[str, float]
    train_seconds: float
    search_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    scratch: tuple[Path, ...] = ()


@dataclass
class CTRCell:
    """What a CTR method needs to fit one seed of the table.

    Attributes:
        experiment: the table.
        split: the behaviour samples; a method reads ``train`` and ``valid`` only.
        config: the search settings of this seed (``seed`` set; for the searches
            ``max_parameters`` set to the parameter budget).
        run: the run directory (a search keeps its resumable steps there).
        rows: the rows finished so far (random search reads AMEIR's search time there).
        log: stage lines.
    """

    experiment: ArchitectureExperiment
    split: BehaviorSplit
    config: ArchitectureSearchConfig
    run: RunDirectory
    rows: RowStore
    log: Log

    @property
    def seed(self) -> int:
        return self.config.seed


@dataclass
class NextItemCell:
    """What a next-item method needs to fit one seed of the table (fields as
    :class:`CTRCell`'s; ``split.test`` is never read by a method)."""

    experiment: RetrievalExperiment
    split: NextItemSplit
    config: RetrievalSearchConfig
    run: RunDirectory
    log: Log

    @property
    def seed(self) -> int:
        return self.config.seed


CellT = TypeVar("CellT", contravariant=True)
FittedT = TypeVar("FittedT", covariant=True)


class Method(Protocol[CellT, FittedT]):
    """A row family of a table: a hand-designed model or an architecture search."""

    @property
    def name(self) -> str:
        """The row's ``method``."""
        ...

    @property
    def searches(self) -> bool:
        """True for an architecture search, False for a hand-designed baseline."""
        ...

    def fit(self, cell: CellT) -> FittedT:
        """Train (and search) on the cell's training data, choosing on validation data."""
        ...

    def artifacts(self, run: RunDirectory, seed: int) -> dict[str, Path]:
        """The files of ``seed`` a user takes away, by name (existing ones only)."""
        ...


CTRMethod = Method[CTRCell, FittedModel[CTRModel]]
NextItemMethod = Method[NextItemCell, FittedModel[NextItemModel]]


class _LeavesOnlyItsRow:
    """A method whose row is all it leaves: no take-away files."""

    def artifacts(self, run: RunDirectory, seed: int) -> dict[str, Path]:
        return {}


def _existing(files: dict[str, Path]) -> dict[str, Path]:
    return {name: path for name, path in files.items() if path.is_file()}


@dataclass(frozen=True)
class HandDesignedCTR(_LeavesOnlyItsRow):
    """A CTR model of :mod:`leanrec.models.ctr` trained with early stopping on validation AUC,
    for at most ``experiment.baseline_epochs``. Its checkpoint in the run directory (every
    validated epoch) lets a killed run resume the training; it goes once the row is stored."""

    name: str
    searches: bool = False

    def fit(self, cell: CTRCell) -> FittedModel[CTRModel]:
        cfg = cell.config
        model = build_ctr_model(self.name, cell.split.feature_map, seed=cell.seed)
        checkpoint = cell.run.file(f"{self.name}_seed{cell.seed}.pt")
        trainer = CTRTrainer(
            CTRTrainerConfig(
                embedding_optimizer="dense_adam",  # as the published figures were trained
                learning_rate=cfg.learning_rate,
                batch_size=cfg.batch_size,
                max_epochs=cell.experiment.baseline_epochs,
                patience=cfg.retrain_patience,
                seed=cell.seed,
                num_threads=cfg.num_threads,
                progress=cfg.progress,
            ),
            checkpoint_path=checkpoint,
        )
        trained = trainer.fit(model, cell.split.train, cell.split.valid, resume=True)
        return FittedModel(
            model,
            dict(trained.best_valid),
            trained.train_seconds,
            extra={"best_epoch": trained.best_epoch},
            scratch=(checkpoint,),
        )


def _searched(result: SearchResult) -> FittedModel[CTRModel]:
    return FittedModel(
        result.model,
        result.valid,
        result.retrain_seconds,
        result.search_seconds,
        extra={"architecture": result.architecture.to_dict()},
    )


@dataclass(frozen=True)
class AMEIRSearch:
    """AMEIR's three-step search (:func:`~leanrec.search.architecture.policy.
    search_architecture`), resumable in ``ameir_seed<k>/``. Keeps the derived architecture as
    ``architecture_seed<k>.json`` and the retrained model as ``ameir_seed<k>/model.pt``."""

    name: str = "ameir"
    searches: bool = True

    def fit(self, cell: CTRCell) -> FittedModel[CTRModel]:
        steps = cell.run.file(f"ameir_seed{cell.seed}")
        result = search_architecture(cell.split, cell.config, steps, cell.log)
        result.architecture.save(cell.run.file(f"architecture_seed{cell.seed}.json"))
        return _searched(result)

    def artifacts(self, run: RunDirectory, seed: int) -> dict[str, Path]:
        return _existing(
            {
                f"architecture_seed{seed}": run.path / f"architecture_seed{seed}.json",
                f"model_seed{seed}": run.path / f"ameir_seed{seed}" / "model.pt",
            }
        )


@dataclass(frozen=True)
class OneShotSearch(_LeavesOnlyItsRow):
    """Single-stage one-shot random search over the joint space
    (:func:`single_stage_one_shot`)."""

    name: str = "one_shot"
    searches: bool = True

    def fit(self, cell: CTRCell) -> FittedModel[CTRModel]:
        return _searched(single_stage_one_shot(cell.split, cell.config, cell.log))


@dataclass(frozen=True)
class RandomSearch(_LeavesOnlyItsRow):
    """Random search with training from scratch (:func:`random_search_from_scratch`) on the
    budget ``experiment.random_budget`` names: AMEIR's search time at the same seed (its row
    must be finished first) or as many training samples as AMEIR's one-shot models saw."""

    name: str = "random"
    searches: bool = True

    def fit(self, cell: CTRCell) -> FittedModel[CTRModel]:
        split, config = cell.split, cell.config
        if cell.experiment.random_budget == "samples":
            samples = one_shot_samples(config, len(split.train))
            return _searched(
                random_search_from_scratch(split, config, budget_samples=samples, log=cell.log)
            )
        ameir = cell.rows.get(method="ameir", seed=cell.seed)
        if ameir is None:
            raise ValueError(
                "random search needs AMEIR's search time of the same seed first "
                "(list 'ameir' before 'random' in methods, or use random_budget='samples')"
            )
        seconds = ameir["search_seconds"]
        return _searched(random_search_from_scratch(split, config, seconds, log=cell.log))


@dataclass(frozen=True)
class HandDesignedNextItem(_LeavesOnlyItsRow):
    """A sequence model of :mod:`leanrec.models.seq` (width ``config.embedding_dim``; SASRec
    also reads ``max_length`` positions), trained with early stopping on validation NDCG@5
    for at most ``experiment.baseline_epochs`` (and ``baseline_seconds``). Its checkpoint in
    ``<name>_seed<k>.pt`` resumes a killed training and is deleted once the row is stored."""

    name: str
    reads_max_length: bool = False
    searches: bool = False
    dropout: float | None = None
    """The encoder's dropout (None: its config's default, SASRec 0.5, GRU4Rec 0.25); set by a
    baseline's tuning sweep (``benchmarks/paper/ameir_baseline_sweep.py``)."""

    def fit(self, cell: NextItemCell) -> FittedModel[NextItemModel]:
        cfg, experiment = cell.config, cell.experiment
        options: dict[str, Any] = {"embedding_dim": cfg.embedding_dim}
        if self.reads_max_length:
            options["max_length"] = experiment.max_length
        if self.dropout is not None:
            options["dropout"] = self.dropout
        model = build_next_item_model(self.name, cell.split.n_items, options, seed=cell.seed)
        checkpoint = cell.run.file(f"{self.name}_seed{cell.seed}.pt")
        trainer = SequentialTrainer(
            model,
            cell.split,
            sequential_trainer_config(
                cfg, experiment.baseline_epochs, cfg.eval_every, experiment.baseline_seconds
            ),
            checkpoint,
        )
        began = time.perf_counter()
        trained = trainer.fit(resume=True)
        return FittedModel(
            model,
            {},
            time.perf_counter() - began,
            extra={"best_epoch": trained.best_epoch},
            scratch=(checkpoint,),
        )


@dataclass(frozen=True)
class AMEIRNextItemSearch:
    """AMEIR's Step 1 on next-item sequences
    (:func:`~leanrec.search.architecture.retrieval.search_retrieval`), resumable in
    ``ameir_seed<k>/``. Keeps the chosen blocks as ``architecture_seed<k>.json`` and the
    retrained model in ``ameir_seed<k>/retrained.pt``."""

    name: str = "ameir"
    searches: bool = True

    def fit(self, cell: NextItemCell) -> FittedModel[NextItemModel]:
        steps = cell.run.file(f"ameir_seed{cell.seed}")
        result = search_retrieval(cell.split, cell.config, steps, cell.log)
        architecture = result.architecture_json(cell.config)
        cell.run.write_json(f"architecture_seed{cell.seed}.json", architecture)
        return FittedModel(
            result.model,
            result.valid,
            result.retrain_seconds,
            result.search_seconds,
            extra={"best_epoch": result.best_epoch, "architecture": architecture},
        )

    def artifacts(self, run: RunDirectory, seed: int) -> dict[str, Path]:
        return _existing(
            {
                f"architecture_seed{seed}": run.path / f"architecture_seed{seed}.json",
                f"model_seed{seed}": run.path / f"ameir_seed{seed}" / "retrained.pt",
            }
        )


METHODS: Registry[CTRMethod] = Registry("CTR architecture method")
"""Every method of the CTR table (Tables 1 and 4) in its order: the hand-designed baselines,
then AMEIR and the two NAS baselines on its space."""
for _name in HAND_DESIGNED:
    METHODS.add(HandDesignedCTR(_name))
METHODS.add(AMEIRSearch())
METHODS.add(OneShotSearch())
METHODS.add(RandomSearch())

NEXT_ITEM_METHODS: Registry[NextItemMethod] = Registry("next-item architecture method")
"""Every method of the next-item table (Table 2) in its order: GRU4Rec, SASRec, AMEIR."""
NEXT_ITEM_METHODS.add(HandDesignedNextItem("gru4rec"))
NEXT_ITEM_METHODS.add(HandDesignedNextItem("sasrec", reads_max_length=True))
NEXT_ITEM_METHODS.add(AMEIRNextItemSearch())

MethodT = TypeVar("MethodT", bound=Method[Any, Any])


def resolve_methods(
    registry: Registry[MethodT], names: Sequence[str], searches: bool
) -> list[MethodT]:
    """The methods of ``names`` (unknown names are an error listing the known ones); every
    one must be a search when ``searches``, a hand-designed baseline otherwise."""
    methods = registry.resolve(names)
    misplaced = [m.name for m in methods if m.searches != searches]
    if misplaced:
        listed, wanted = ("methods", "search") if searches else ("baselines", "hand-designed")
        raise ValueError(f"{listed} must name {wanted} methods only, not {misplaced}")
    return methods
