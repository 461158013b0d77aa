"""An AMEIR architecture (Zhao et al., IJCAI 2021, Sec. 2.1-2.2): the operation sets of the
three-stage space and the description of one model of it.

This is what a saved AMEIR model needs to be rebuilt; drawing architectures from the space is the
search's part (:mod:`leanrec.search.architecture.space`). An :class:`Architecture` is one child
model of the space:

* Stage 1, behaviour modelling: ``L_a`` residual blocks ``H_l = Act(Layer(Norm(H_{l-1}))) +
  H_{l-1}`` (Eq. 1), each a :class:`BlockChoice` from :data:`NORMS` x :data:`LAYERS` x
  :data:`ACTIVATIONS`; the sequence is read out into ``h^a`` by the concatenated
  :data:`READOUT_PARTS` of the architecture's ``readout`` (the paper: sum pooling, the last state
  and target attention, :data:`PAPER_READOUT`).
* Stage 2, interactions: ``M`` Hadamard products ``e_{i1} ⊙ ... ⊙ e_{ir}`` of non-sequential
  fields, each named by its sorted field names (``p^b``).
* Stage 3, aggregation MLP over ``h^c_0 = [h^a, e^b, p^b]``: per layer a width ratio of
  ``K^c_0`` from :data:`WIDTH_RATIOS` (non-increasing) and an activation from
  :data:`MLP_ACTIVATIONS` (Eq. 2); plus the Squeeze-and-Excitation shortcut over ``[e^b, p^b]``
  and, as a backbone option, a factorization-machine shortcut over ``[e^b, p^b]`` and the pooled
  history (the paper's Sec. 3 backbone analysis: searched "interactions applied to MLP and FM";
  its AMEIR-I is a DeepFM backbone with searched interactions).

Architectures are saved as JSON (``leanrec train --architecture file.json`` rebuilds one).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

NORMS: tuple[str, ...] = ("layernorm", "none")
"""Normalisation set of a building block."""
LAYERS: tuple[str, ...] = (
    "conv1",
    "conv3",
    "dilated_conv3",
    "dilated_conv5",
    "dilated_conv7",
    "avg_pool3",
    "max_pool3",
    "bigru",
    "self_attention2",
    "self_attention4",
    "target_attention",
    "zero",
)
"""Layer set of a building block: 1-D convolutions (k 1, 3), dilated convolutions (k 3, 5, 7;
dilation 2), average / max pooling (k 3), Bi-GRU, 2- and 4-head bidirectional self-attention,
attention from the target to every position (only when a target exists) and zero (which
shortens the network). All keep the sequence length (stride 1, SAME padding)."""
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "swish", "identity")
"""Activation set of a building block."""
MLP_ACTIVATIONS: tuple[str, ...] = ("relu", "swish", "identity", "dice")
"""Activation set of an aggregation-MLP layer."""
READOUT_PARTS: tuple[str, ...] = ("sum", "mean", "last", "attention")
"""Parts a behaviour readout may concatenate: sum or mean pooling over the real positions, the
state at the last real position, DIN target attention (only when a target exists)."""
PAPER_READOUT: tuple[str, ...] = ("sum", "last", "attention")
"""The readout of the paper, ``h^a = [Σ_i h_i, h_T, Σ_i a_i h_i]`` (Sec. 2.1)."""


def check_readout(parts: tuple[str, ...] | str, has_target: bool = True) -> tuple[str, ...]:
    """``parts`` as a tuple after checking it is a non-empty set of :data:`READOUT_PARTS`
    (a string is read as comma-separated parts: ``"mean,last"``)."""
    if isinstance(parts, str):
        parts = tuple(p.strip() for p in parts.split(",") if p.strip())
    parts = tuple(parts)
    if not parts:
        raise ValueError("a behaviour readout needs at least one part")
    unknown = [p for p in parts if p not in READOUT_PARTS]
    if unknown:
        raise ValueError(f"unknown readout parts {unknown}; known: {', '.join(READOUT_PARTS)}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"readout {parts} repeats a part")
    if "attention" in parts and not has_target:
        raise ValueError("the 'attention' readout part needs a target (has_target=False)")
    return parts


WIDTH_RATIOS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
"""Hidden width of an MLP layer as a fraction of the MLP input width ``K^c_0``."""


@dataclass(frozen=True)
class BlockChoice:
    """One building block: ``Act(Layer(Norm(H))) + H``."""

    norm: str = "none"
    layer: str = "zero"
    activation: str = "identity"

    def __post_init__(self) -> None:
        for value, options, what in (
            (self.norm, NORMS, "norm"),
            (self.layer, LAYERS, "layer"),
            (self.activation, ACTIVATIONS, "activation"),
        ):
            if value not in options:
                raise ValueError(f"unknown block {what} {value!r}; known: {', '.join(options)}")


Interaction = tuple[str, ...]
"""A Hadamard interaction: the sorted names of the (distinct) fields it multiplies."""


@dataclass(frozen=True)
class Architecture:
    """A child model of the AMEIR space (see the module docstring).

    Attributes:
        blocks: ``L_a`` building blocks (empty: no behaviour modelling, the embedded sequence
            is read out directly).
        interactions: ``p^b``, Hadamard interactions of order >= 2 (empty: none).
        mlp_widths: per hidden layer, a ratio of ``K^c_0`` (non-increasing).
        mlp_activations: per hidden layer, an activation from :data:`MLP_ACTIVATIONS`.
        se_shortcut: whether the SE shortcut over ``[e^b, p^b]`` feeds the output.
        fm_shortcut: whether the FM pairwise term ``Σ_{i<j} <q_i, q_j>`` over ``[e^b, p^b]`` and
            the pooled history is added to the logit (no parameters; a file without it: off).
        readout: the parts of ``h^a`` (:data:`READOUT_PARTS`); a file without it gets the
            paper's :data:`PAPER_READOUT`.
    """

    blocks: tuple[BlockChoice, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    mlp_widths: tuple[float, ...] = ()
    mlp_activations: tuple[str, ...] = ()
    se_shortcut: bool = True
    readout: tuple[str, ...] = PAPER_READOUT
    fm_shortcut: bool = False
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    """Free-form notes (how it was found, its validation score); not part of the identity."""

    def __post_init__(self) -> None:
        check_readout(self.readout)
        if len(self.mlp_widths) != len(self.mlp_activations):
            raise ValueError(
                f"{len(self.mlp_widths)} MLP widths but {len(self.mlp_activations)} activations"
            )
        for ratio in self.mlp_widths:
            if not 0.0 < ratio <= 1.0:
                raise ValueError(f"MLP width ratio {ratio} is not in (0, 1]")
        if any(b > a + 1e-9 for a, b in zip(self.mlp_widths, self.mlp_widths[1:])):
            raise ValueError(f"MLP widths must be non-increasing, got {self.mlp_widths}")
        for name in self.mlp_activations:
            if name not in MLP_ACTIVATIONS:
                raise ValueError(
                    f"unknown MLP activation {name!r}; known: {', '.join(MLP_ACTIVATIONS)}"
                )
        for interaction in self.interactions:
            if len(interaction) < 2 or len(set(interaction)) != len(interaction):
                raise ValueError(
                    f"interaction {interaction} must multiply at least 2 distinct fields"
                )
            if tuple(sorted(interaction)) != tuple(interaction):
                raise ValueError(f"interaction {interaction} must list its fields sorted")

    def mlp_dims(self, input_dim: int) -> tuple[int, ...]:
        """Hidden widths in units for an MLP input of ``input_dim`` (``K^c_0``), at least 1."""
        return tuple(max(1, round(ratio * input_dim)) for ratio in self.mlp_widths)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, object]:
        raw = asdict(self)
        raw["blocks"] = [asdict(b) for b in self.blocks]
        raw["interactions"] = [list(i) for i in self.interactions]
        raw["readout"] = list(self.readout)
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Architecture:
        known = {
            "blocks",
            "interactions",
            "mlp_widths",
            "mlp_activations",
            "se_shortcut",
            "readout",
            "fm_shortcut",
            "extra",
        }
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown architecture keys {sorted(unknown)}; known: {sorted(known)}")
        blocks = tuple(BlockChoice(**b) for b in raw.get("blocks", []))  # type: ignore[attr-defined]
        interactions = tuple(tuple(i) for i in raw.get("interactions", []))  # type: ignore[attr-defined]
        return cls(
            blocks=blocks,
            interactions=interactions,
            mlp_widths=tuple(float(w) for w in raw.get("mlp_widths", [])),  # type: ignore[attr-defined]
            mlp_activations=tuple(raw.get("mlp_activations", [])),  # type: ignore[arg-type]
            se_shortcut=bool(raw.get("se_shortcut", True)),
            readout=tuple(raw.get("readout", PAPER_READOUT)),  # type: ignore[arg-type]
            fm_shortcut=bool(raw.get("fm_shortcut", False)),
            extra=dict(raw.get("extra", {})),  # type: ignore[call-overload]
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> Architecture:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"architecture file not found: {path}")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
        try:
            return cls.from_dict(raw)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None


def interaction_name(fields: tuple[str, ...]) -> Interaction:
    """The canonical (sorted, distinct) form of an interaction."""
    if len(set(fields)) != len(fields):
        raise ValueError(f"interaction {fields} repeats a field")
    return tuple(sorted(fields))
