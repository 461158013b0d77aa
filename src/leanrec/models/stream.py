"""Pointwise models fed along an event stream: :class:`StreamModel`.

A model of :mod:`leanrec.models.ctr` (DNN, DeepFM, ...) or :class:`~leanrec.models.ncf.NeuMF`
is built for a fixed vocabulary. On a stream the vocabulary grows, and *how* an ID gets its
vector (its own row on first sight, a row after ``n`` events, a hashed bucket, a shared level)
is the very thing a streaming method decides. :class:`StreamModel` therefore swaps every ID
table of the model for a **stream table** and leaves the model's own code alone:

* a stream table is a :class:`~leanrec.embeddings.StreamTable`: ``extend_ids(n)`` accepts
  IDs ``0..n-1`` (the vocabulary so far; a new ID then reads whatever the table gives an ID it
  holds no state for), ``observe(ids)`` lets the table see one chunk of events (in stream
  order) and update its assignment, e.g. allocate rows, and ``row_sync(optimizer)`` keeps
  per-row optimiser state with the rows;
* the swap goes through the model family's own table slots: ``replace_table`` for the
  ``d``-wide tables of every family, and the embedder's first-order (1-wide) tables of the CTR
  models with a linear part (DeepFM, Wide&Deep), which are per-ID state as well;
* :meth:`StreamModel.forward` turns per-field ID tensors into the model's input (a
  :class:`~leanrec.data.behavior.BehaviorBatch` without history for CTR models, user/item pairs
  for NeuMF) and returns one logit per event.

Bytes. :meth:`StreamModel.embedding_bytes` is the sum of the stream tables' ``nbytes()``: a
stream table counts its allocated rows, shared vectors and per-ID state (ID maps, counters) in
its own ``nbytes``. :meth:`StreamModel.dense_bytes` is everything else the model holds (MLP,
biases), reported beside them.

The simplest stream table is all-unique (:class:`AllUniqueFactory`): a
:class:`~leanrec.embeddings.GrowingEmbedding` that gives every ID its own row the first time
``observe`` sees it (unbounded); before that the ID reads the shared fallback vector.

Example (DeepFM on a stream with the fields ``user`` and ``item``):
    >>> model = DeepFM(stream_feature_map(["user", "item"]), CTRConfig(embedding_dim=16))
    >>> stream_model = StreamModel(model, AllUniqueFactory(init_std=1e-4))
    >>> stream_model.extend_ids({"user": 3, "item": 5})
    >>> stream_model.observe({"user": torch.tensor([0, 2]), "item": torch.tensor([4, 4])})
    >>> stream_model({"user": torch.tensor([0, 1]), "item": torch.tensor([4, 0])}).shape
    torch.Size([2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from leanrec.data.behavior import BehaviorBatch, FeatureMap, FieldSpec
from leanrec.embeddings.base import EmbeddingTable, StreamTable, TableFactory
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.models.base import Recommender
from leanrec.models.ctr.base import CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch

__all__ = [
    "AllUniqueFactory",
    "StreamModel",
    "StreamTableFactory",
    "build_stream_model",
    "stream_feature_map",
]


StreamTableFactory = TableFactory
"""``(table name, IDs known so far, width) -> stream table``: a :data:`TableFactory` whose
tables :class:`StreamModel` checks to be :class:`StreamTable`. The name is the model's table
name (``"user"``, ``"item.first_order"``, ``"gmf_user"``), so a factory can treat tables
differently."""


# ---------------------------------------------------------------------------------- all-unique
class AllUniqueFactory:
    """Builds all-unique tables: :class:`~leanrec.embeddings.GrowingEmbedding` with
    ``allocate_on_observe`` (every observed ID without a row gets one; picklable, unlike a
    lambda).

    Args:
        init_std: std of the normal initialisation of new rows and of the fallback vector.
        min_capacity: first allocation size of each table (doubles after).
        generator: one generator for every table's initialisations (seeded by the caller).
    """

    def __init__(
        self,
        init_std: float = 0.01,
        min_capacity: int = 16,
        generator: torch.Generator | None = None,
    ) -> None:
        self.init_std = init_std
        self.min_capacity = min_capacity
        self.generator = generator

    def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return GrowingEmbedding(
            num_embeddings,
            embedding_dim,
            min_capacity=self.min_capacity,
            init_std=self.init_std,
            generator=self.generator,
            allocate_on_observe=True,
        )


# ---------------------------------------------------------------------------------- families
def stream_feature_map(fields: Sequence[str], item_field: str = "item") -> FeatureMap:
    """A feature map of one categorical field per stream ID field, no history and no tags.

    Table ``f`` of a CTR model built on it is fed the vocabulary index of field ``f``. The
    vocabulary size is 1, a placeholder: :class:`StreamModel` swaps the tables for stream
    tables that grow with the stream.
    """
    if item_field not in fields:
        raise ValueError(f"the item field {item_field!r} must be one of the fields {fields}")
    specs = tuple(FieldSpec(name, "categorical", 1) for name in fields)
    return FeatureMap(
        fields=specs, max_history=0, max_tags=0, target_field=item_field, tag_field=None
    )


@dataclass(frozen=True)
class _Slot:
    """One ID table of a model: where it lives, which stream field feeds it, its width."""

    name: str
    field: str
    width: int
    table: EmbeddingTable


class _Family(Protocol):
    def slots(self, model: nn.Module) -> list[_Slot]: ...

    def put(self, model: nn.Module, slot: _Slot, table: EmbeddingTable) -> None: ...

    def logits(self, model: nn.Module, ids: Mapping[str, torch.Tensor]) -> torch.Tensor: ...

    def logits_of_vectors(
        self, model: nn.Module, vectors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor | None: ...


FIRST_ORDER_SUFFIX = ".first_order"


class _CTRFamily:
    """CTR models: one ``d``-wide table per categorical field (named after it) and, with a
    linear part, one 1-wide first-order table per field; input is a batch without history."""

    def slots(self, model: nn.Module) -> list[_Slot]:
        assert isinstance(model, CTRModel)
        embedder = model.embedder
        if model.feature_map.max_history or model.feature_map.tag_field is not None:
            raise ValueError(
                "a CTR model on a stream needs a feature map without history and tags "
                "(stream_feature_map)"
            )
        out = [_Slot(n, n, t.embedding_dim, t) for n, t in embedder.embedding_tables().items()]
        out += [
            _Slot(n + FIRST_ORDER_SUFFIX, n, t.embedding_dim, t)
            for n, t in embedder.first_order_tables().items()
        ]
        return out

    def put(self, model: nn.Module, slot: _Slot, table: EmbeddingTable) -> None:
        assert isinstance(model, CTRModel)
        if slot.name.endswith(FIRST_ORDER_SUFFIX):
            linear = model.embedder.linear_tables
            assert linear is not None
            linear[slot.field] = table
        else:
            model.replace_table(slot.name, table)

    def logits(self, model: nn.Module, ids: Mapping[str, torch.Tensor]) -> torch.Tensor:
        assert isinstance(model, CTRModel)
        columns = [ids[spec.name] for spec in model.feature_map.categorical]
        sparse = torch.stack(columns, dim=1)
        b = len(sparse)
        empty = sparse.new_zeros(b, 0)
        batch = BehaviorBatch(
            sparse=sparse,
            target_tags=empty,
            history_items=empty,
            history_tags=sparse.new_zeros(b, 0, 0),
            history_length=sparse.new_zeros(b),
            labels=torch.zeros(b),
        )
        logits: torch.Tensor = model(batch)
        return logits

    def logits_of_vectors(
        self, model: nn.Module, vectors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor | None:
        """The model's logits from per-table vectors, skipping the batch and the embedder:
        the :class:`EmbeddedBatch` the embedder would build for a batch without history
        (same values, same order, so the same logits bit for bit)."""
        assert isinstance(model, CTRModel)
        names = [spec.name for spec in model.feature_map.categorical]
        fields = torch.stack([vectors[n] for n in names], dim=1)  # (B, F, d)
        b, d = fields.shape[0], fields.shape[2]
        first_order = None
        if model.embedder.linear_tables is not None:
            weights = [vectors[n + FIRST_ORDER_SUFFIX] for n in names]  # each (B, 1)
            first_order = torch.cat([*weights, fields.new_zeros(b, 1)], dim=1)  # (B, F + 1)
        inputs = EmbeddedBatch(
            fields=fields,
            history=fields.new_zeros(b, 0, d),
            history_mask=torch.zeros(b, 0, dtype=torch.bool),
            target=vectors[model.feature_map.target_field],
            first_order=first_order,
            l2=fields.new_zeros(()),
        )
        logits: torch.Tensor = model.logits(inputs)
        return logits


class _PairFamily:
    """Ranking models scoring (user, item) pairs (NeuMF): tables ``*user*`` / ``*item*`` fed by
    the stream's ``user`` / ``item`` fields."""

    def slots(self, model: nn.Module) -> list[_Slot]:
        assert isinstance(model, Recommender)
        roles = model.table_roles()
        return [_Slot(n, roles[n], t.embedding_dim, t) for n, t in model.embedding_tables().items()]

    def put(self, model: nn.Module, slot: _Slot, table: EmbeddingTable) -> None:
        assert isinstance(model, Recommender)
        model.replace_table(slot.name, table)

    def logits(self, model: nn.Module, ids: Mapping[str, torch.Tensor]) -> torch.Tensor:
        score = getattr(model, "_score", None)
        if score is None:
            raise TypeError(f"{type(model).__name__} does not score (user, item) pairs")
        logits: torch.Tensor = score(ids["user"], ids["item"])
        return logits

    def logits_of_vectors(
        self, model: nn.Module, vectors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor | None:
        return None  # NeuMF looks its tables up itself


def _family(model: nn.Module) -> _Family:
    if isinstance(model, CTRModel):
        return _CTRFamily()
    if isinstance(model, Recommender) and hasattr(model, "_score"):
        return _PairFamily()
    raise TypeError(
        f"{type(model).__name__} is not a pointwise model StreamModel can feed "
        "(a leanrec.models.ctr model or NeuMF)"
    )


# ---------------------------------------------------------------------------------- wrapper
class StreamModel(nn.Module):
    """A pointwise model whose ID tables are stream tables (see the module docstring).

    Args:
        model: a :class:`~leanrec.models.ctr.base.CTRModel` built on
            :func:`stream_feature_map`, or a :class:`~leanrec.models.ncf.NeuMF`.
        table_factory: builds each stream table from ``(name, N, width)``, where ``N`` and
            ``width`` are those of the table it replaces (the replacement keeps the shape).
        generator: the generator the factory's tables initialise rows with, if any: a
            checkpoint of a stream run carries its state (see :mod:`leanrec.train.stream`).

    Attributes:
        model: the wrapped model (its tables are now the stream tables).
        fields: stream field feeding each table, by table name (the tables themselves are
            :meth:`id_tables`; they are registered once, inside ``model``).
    """

    def __init__(
        self,
        model: nn.Module,
        table_factory: StreamTableFactory,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.generator = generator
        self._family = _family(model)
        self.fields: dict[str, str] = {}
        tables: dict[str, StreamTable] = {}
        for slot in self._family.slots(model):
            table = table_factory(slot.name, slot.table.num_embeddings, slot.width)
            if not isinstance(table, StreamTable):
                raise TypeError(
                    f"the factory built a {type(table).__name__} for {slot.name!r}, not a stream "
                    "table (a StreamTable: extend_ids, observe, row_sync)"
                )
            if (table.num_embeddings, table.embedding_dim) != (
                slot.table.num_embeddings,
                slot.width,
            ):
                raise ValueError(
                    f"stream table {slot.name!r} must start as {slot.table.num_embeddings} x "
                    f"{slot.width}, got {table.num_embeddings} x {table.embedding_dim}"
                )
            self._family.put(model, slot, table)
            tables[slot.name] = table
            self.fields[slot.name] = slot.field
        self._by_name = tables  # a plain dict: the modules are registered inside model

    # ------------------------------------------------------------------ stream steps
    @property
    def stream_fields(self) -> tuple[str, ...]:
        """The stream ID fields the model reads, in first-use order."""
        return tuple(dict.fromkeys(self.fields.values()))

    def id_tables(self) -> dict[str, StreamTable]:
        """The stream tables by table name (``"user"``, ``"user.first_order"``, ...)."""
        return dict(self._by_name)

    def extend_ids(self, sizes: Mapping[str, int]) -> None:
        """Accept the IDs of each field seen so far (``sizes[field]`` = vocabulary size)."""
        for name, table in self._by_name.items():
            table.extend_ids(int(sizes[self.fields[name]]))

    def observe(self, ids: Mapping[str, torch.Tensor]) -> None:
        """Let every stream table see its field's IDs of one chunk ``(n,)``, in stream order."""
        for name, table in self._by_name.items():
            table.observe(ids[self.fields[name]])

    def forward(self, ids: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)`` of events given per-field ID tensors ``(B,)`` (vocabulary indices)."""
        return self._family.logits(self.model, ids)

    def logits_of_vectors(self, vectors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)`` from each table's vectors ``(B, width)`` by table name, e.g. rows
        gathered by a trainer that updates them itself (:mod:`leanrec.train.row_optim`).
        Equals :meth:`forward` when ``vectors[name]`` is ``table.lookup(ids[field])``; only for
        CTR models (:meth:`reads_vectors`)."""
        logits = self._family.logits_of_vectors(self.model, vectors)
        if logits is None:
            raise TypeError(f"{type(self.model).__name__} does not take looked-up vectors")
        return logits

    @property
    def reads_vectors(self) -> bool:
        """Whether :meth:`logits_of_vectors` works for this model (the CTR models)."""
        return isinstance(self._family, _CTRFamily)

    # ------------------------------------------------------------------ bytes
    def _table_parameter_ids(self) -> set[int]:
        return {id(p) for t in self._by_name.values() for p in t.parameters()}

    def table_parameters(self) -> list[nn.Parameter]:
        """Parameters of the stream tables (rows, shared vectors)."""
        seen = self._table_parameter_ids()
        return [p for p in self.parameters() if id(p) in seen]

    def dense_parameters(self) -> list[nn.Parameter]:
        """Every other parameter of the model (MLP, biases, output layers)."""
        seen = self._table_parameter_ids()
        return [p for p in self.parameters() if id(p) not in seen]

    def embedding_bytes(self) -> int:
        """Bytes the stream tables hold: allocated rows (capacity), shared vectors and per-ID
        state, i.e. ``sum(table.nbytes())``."""
        return sum(table.nbytes() for table in self._by_name.values())

    def dense_bytes(self) -> int:
        """Bytes of the dense part (parameters and buffers outside the stream tables)."""
        tables = self._table_parameter_ids() | {
            id(b) for t in self._by_name.values() for b in t.buffers()
        }
        return sum(
            t.numel() * t.element_size()
            for t in list(self.model.parameters()) + list(self.model.buffers())
            if id(t) not in tables
        )


# ---------------------------------------------------------------------------------- building
def build_stream_model(
    name: str,
    fields: Sequence[str] = ("user", "item"),
    *,
    embedding_dim: int = 16,
    seed: int = 0,
    table_factory: StreamTableFactory | None = None,
    init_std: float | None = None,
    **config: Any,
) -> StreamModel:
    """A pointwise model on a stream: ``name`` is a CTR model (``deepfm``, ``dnn``, ...) over
    one categorical field per entry of ``fields``, or ``neumf`` (``user`` and ``item``).

    Args:
        name: model name.
        fields: stream ID fields the model reads (CTR models; NeuMF reads user and item).
        embedding_dim: ``d``.
        seed: seeds torch's generator for the dense weights and a generator of its own for the
            stream tables' row initialisations (kept as :attr:`StreamModel.generator`, so a
            checkpoint can carry its state).
        table_factory: the stream tables; default :class:`AllUniqueFactory` (all-unique).
        init_std: std of new rows in the default tables (default: the CTR config's
            ``init_std``, 1e-4; 0.01 for NeuMF).
        **config: other fields of the model's config dataclass.
    """
    from leanrec.models.ctr.registry import build_ctr_model
    from leanrec.models.ncf import NeuMF
    from leanrec.models.registry import make_model_config

    generator = torch.Generator().manual_seed(seed)
    model: nn.Module
    if name.lower() == "neumf":
        neumf_config = make_model_config("neumf", {"embedding_dim": embedding_dim, **config})
        torch.manual_seed(seed)
        model = NeuMF(1, 1, neumf_config)
        std = 0.01 if init_std is None else init_std
    else:
        ctr = build_ctr_model(
            name, stream_feature_map(fields), seed=seed, embedding_dim=embedding_dim, **config
        )
        model = ctr
        std = ctr.config.init_std if init_std is None else init_std
    factory = table_factory or AllUniqueFactory(init_std=std, generator=generator)
    return StreamModel(model, factory, generator=generator)
