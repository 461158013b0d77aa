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
* **one stream table per field.** A model may read a field through several table slots: the
  ``d``-wide tables of every family (``replace_table``), the embedder's first-order (1-wide)
  tables of the CTR models with a linear part (DeepFM, Wide&Deep), NeuMF's GMF and MLP towers.
  The slots of a field get one stream table whose width is the sum of theirs (DeepFM
  ``d + 1``, NeuMF ``2d``, DNN ``d``), and each slot reads its columns through a
  :class:`~leanrec.embeddings.columns.ColumnView` (no state of its own). So a field's per-ID
  state (ID -> row map, counts, positions) is held once, whatever the method: an ID's
  first-order weight costs its 4 bytes, not another copy of the maps, and every method pays
  one map per field alike. A field's slots also share the method's decisions (an ID holds a
  row, or a level, for all of its columns at once);
* :meth:`StreamModel.forward` turns per-field ID tensors into the model's input (the field
  vectors of a batch without history for CTR models, user/item pairs for NeuMF) and returns
  one logit per event.

Bytes. :meth:`StreamModel.embedding_bytes` is the sum of the field tables' ``nbytes()``: a
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
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import nn

from leanrec.data.behavior import BehaviorBatch, FeatureMap, FieldSpec
from leanrec.embeddings.base import EmbeddingTable, StreamTable, TableFactory
from leanrec.embeddings.columns import ColumnView, FieldLookups
from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.models.base import Recommender
from leanrec.models.ctr.base import CTRModel
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ncf import NeuMF

__all__ = [
    "AllUniqueFactory",
    "SlotColumns",
    "StreamModel",
    "StreamTableFactory",
    "build_stream_model",
    "stream_feature_map",
]


StreamTableFactory = TableFactory
"""``(field, IDs known so far, width) -> stream table``: a :data:`TableFactory` whose tables
:class:`StreamModel` checks to be :class:`StreamTable`. It is called once per stream field
(``"user"``, ``"item"``) with the summed width of the model's slots of that field, so a
factory can treat fields differently (e.g. one hash per field)."""


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
        assert isinstance(model, NeuMF)
        return model.score_pairs(ids["user"], ids["item"])

    def logits_of_vectors(
        self, model: nn.Module, vectors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor | None:
        return None  # NeuMF looks its tables up itself


def _family(model: nn.Module) -> _Family:
    if isinstance(model, CTRModel):
        return _CTRFamily()
    if isinstance(model, NeuMF):
        return _PairFamily()
    raise TypeError(
        f"{type(model).__name__} is not a pointwise model StreamModel can feed "
        "(a leanrec.models.ctr model or NeuMF)"
    )


# ---------------------------------------------------------------------------------- wrapper
@dataclass(frozen=True)
class SlotColumns:
    """Where one of the model's ID table slots reads: columns ``start:stop`` of the stream
    table of ``field``."""

    field: str
    start: int
    stop: int


class StreamModel(nn.Module):
    """A pointwise model whose ID tables are column views of one stream table per field (see
    the module docstring).

    Args:
        model: a :class:`~leanrec.models.ctr.base.CTRModel` built on
            :func:`stream_feature_map`, or a :class:`~leanrec.models.ncf.NeuMF`.
        table_factory: builds each field's stream table from ``(field, N, width)``: ``N`` is
            the vocabulary size of the tables it replaces, ``width`` the sum of their widths
            (DeepFM: ``d + 1``; NeuMF: ``2d``; DNN: ``d``).
        generator: the generator the factory's tables initialise rows with, if any: a
            checkpoint of a stream run carries its state (see :mod:`leanrec.train.stream`).

    Attributes:
        model: the wrapped model (its ID tables are now :class:`ColumnView` s of the field
            tables).
        fields: stream field of each stream table, by table name (the table of a field is
            named after it: ``{"user": "user", "item": "item"}``).
        columns: the columns each of the model's slots reads, by slot name (``"user"``,
            ``"user.first_order"``, ``"gmf_user"``), in column order per field.
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
        slots: dict[str, list[_Slot]] = {}
        for slot in self._family.slots(model):
            slots.setdefault(slot.field, []).append(slot)
        self.fields: dict[str, str] = {}
        self.columns: dict[str, SlotColumns] = {}
        tables: dict[str, StreamTable] = {}
        self._lookups: list[FieldLookups] = []
        for field, field_slots in slots.items():
            if "." in field or not field:
                raise ValueError(f"a stream field name must be non-empty without '.': {field!r}")
            num_embeddings = max(s.table.num_embeddings for s in field_slots)
            width = sum(s.width for s in field_slots)
            table = table_factory(field, num_embeddings, width)
            if not isinstance(table, StreamTable):
                raise TypeError(
                    f"the factory built a {type(table).__name__} for {field!r}, not a stream "
                    "table (a StreamTable: extend_ids, observe, row_sync)"
                )
            if (table.num_embeddings, table.embedding_dim) != (num_embeddings, width):
                raise ValueError(
                    f"stream table {field!r} must start as {num_embeddings} x {width}, got "
                    f"{table.num_embeddings} x {table.embedding_dim}"
                )
            lookups = FieldLookups(table)
            self._lookups.append(lookups)
            start = 0
            for slot in field_slots:
                self._family.put(model, slot, ColumnView(lookups, start, start + slot.width))
                self.columns[slot.name] = SlotColumns(field, start, start + slot.width)
                start += slot.width
            tables[field] = table
            self.fields[field] = field
        self.field_tables = nn.ModuleDict(tables)  # each field table registered once, here

    # ------------------------------------------------------------------ stream steps
    @property
    def stream_fields(self) -> tuple[str, ...]:
        """The stream ID fields the model reads, in first-use order."""
        return tuple(self.fields)

    def id_tables(self) -> dict[str, StreamTable]:
        """The stream tables by field name (``"user"``, ``"item"``), one per field."""
        return {name: cast(StreamTable, table) for name, table in self.field_tables.items()}

    def extend_ids(self, sizes: Mapping[str, int]) -> None:
        """Accept the IDs of each field seen so far (``sizes[field]`` = vocabulary size)."""
        for name, table in self.id_tables().items():
            table.extend_ids(int(sizes[self.fields[name]]))

    def observe(self, ids: Mapping[str, torch.Tensor]) -> None:
        """Let every stream table see its field's IDs of one chunk ``(n,)``, in stream order."""
        for name, table in self.id_tables().items():
            table.observe(ids[self.fields[name]])

    def forward(self, ids: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)`` of events given per-field ID tensors ``(B,)`` (vocabulary indices).

        Each field table is read once per call: CTR models score the field vectors
        (:meth:`logits_of_vectors`, the same logits as the model's own forward); NeuMF's
        slots of a field share one lookup of the IDs it passes them."""
        if self.reads_vectors:
            tables = self.id_tables()
            return self.logits_of_vectors({f: t.lookup(ids[f]) for f, t in tables.items()})
        with ExitStack() as stack:
            for lookups in self._lookups:
                stack.enter_context(lookups.shared())
            return self._family.logits(self.model, ids)

    def logits_of_vectors(self, vectors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits ``(B,)`` from each field table's vectors ``(B, width)`` by field, e.g. rows
        gathered by a trainer that updates them itself (:mod:`leanrec.train.row_optim`); each
        slot reads its :attr:`columns`. Equals :meth:`forward` when ``vectors[field]`` is
        ``table.lookup(ids[field])``; only for CTR models (:meth:`reads_vectors`)."""
        if not self.reads_vectors:
            raise TypeError(f"{type(self.model).__name__} does not take looked-up vectors")
        per_slot = {name: vectors[c.field][:, c.start : c.stop] for name, c in self.columns.items()}
        logits = self._family.logits_of_vectors(self.model, per_slot)
        if logits is None:
            raise TypeError(f"{type(self.model).__name__} does not take looked-up vectors")
        return logits

    @property
    def reads_vectors(self) -> bool:
        """Whether :meth:`logits_of_vectors` works for this model (the CTR models)."""
        return isinstance(self._family, _CTRFamily)

    # ------------------------------------------------------------------ bytes
    def _table_parameter_ids(self) -> set[int]:
        return {id(p) for p in self.field_tables.parameters()}

    def table_parameters(self) -> list[nn.Parameter]:
        """Parameters of the stream tables (rows, shared vectors)."""
        return list(self.field_tables.parameters())

    def dense_parameters(self) -> list[nn.Parameter]:
        """Every other parameter of the model (MLP, biases, output layers)."""
        seen = self._table_parameter_ids()
        return [p for p in self.parameters() if id(p) not in seen]

    def embedding_bytes(self) -> int:
        """Bytes the stream tables hold: allocated rows (capacity), shared vectors and per-ID
        state, i.e. ``sum(table.nbytes())`` over the field tables (the column views hold
        nothing)."""
        return sum(table.nbytes() for table in self.id_tables().values())

    def dense_bytes(self) -> int:
        """Bytes of the dense part (parameters and buffers outside the stream tables)."""
        tables = self._table_parameter_ids() | {id(b) for b in self.field_tables.buffers()}
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
