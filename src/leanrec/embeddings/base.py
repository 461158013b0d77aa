"""The one interface every model uses to get ID vectors.

A model never owns a raw ``nn.Embedding``: it holds :class:`EmbeddingTable` objects and asks them
for vectors with :meth:`EmbeddingTable.lookup`. Later capabilities swap a table for a masked,
ragged (packed) or shared one without touching the model, and count memory through
:meth:`num_parameters` (logical values) and :meth:`nbytes` (physical bytes held in RAM).

Tables that live along an event stream (IDs keep arriving, rows come and go) also implement
:class:`StreamTable`: ``extend_ids`` when the vocabulary grows, ``observe`` once per chunk, and
``row_sync`` so an optimiser's per-row state follows rows that move.

Sparse updates: a table whose lookups read its parameters row by row names them in
:meth:`EmbeddingTable.row_parameters`; with :attr:`EmbeddingTable.sparse_gradients` on (a
trainer turns it on for its training steps, see :func:`sparse_gradients`), lookups give those
parameters a sparse COO gradient holding only the looked-up rows, so a row-wise optimiser
(:mod:`leanrec.train.row_optim`) updates ``k`` rows instead of ``N``. ``all()`` still gives a
dense gradient (every row is read).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

CatchUp = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor | None]
"""``catch_up(parameter, index)`` of :attr:`EmbeddingTable.catch_up`: brings the rows
``index`` ``(B,)`` of ``parameter`` up to date and returns them read (``(B, ...)``, see
:func:`sparse_rows`) or None; ``index`` None announces a read of every row as stored
(:meth:`EmbeddingTable._stored`), so rows the optimiser holds are written first."""


class EmbeddingTable(nn.Module, ABC):
    """A table of ``num_embeddings`` vectors, each read out with width ``embedding_dim``.

    Contract (checked by ``tests/embeddings/contract.py`` for every table):

    - ``lookup(ids)`` with ``ids`` of shape ``(B,)`` returns ``(B, embedding_dim)`` float32.
    - ``all()`` returns ``(num_embeddings, embedding_dim)`` equal to ``lookup(arange(N))``.
    - ``num_parameters()`` counts stored values that carry information (a masked-out
      dimension does not count); ``nbytes()`` counts the bytes the table really holds.
    - out-of-range IDs raise ``IndexError``.
    - ``state_dict`` round-trips: a table loaded from another's state gives identical lookups.

    Saving and loading: a table describes itself with :meth:`spec` (its ``kind`` and the
    constructor options named in ``spec_options``) and :meth:`from_spec` rebuilds an empty one
    of that kind; ``load_state_dict`` then adopts the stored shapes of the tensors named in
    ``resized_on_load`` before copying, so a rebuilt table takes the saved layout.
    """

    num_embeddings: int
    embedding_dim: int

    kind: ClassVar[str] = ""
    """The table's name in a saved spec (``"full"``, ``"growing"``...); empty: not saveable."""
    spec_options: ClassVar[tuple[str, ...]] = ()
    """Constructor keywords a spec records, each read from the attribute of the same name."""
    resized_on_load: ClassVar[tuple[str, ...]] = ()
    """Parameters and buffers whose layout changes with use (capacities, per-ID state, packed
    values): a load takes their stored shapes instead of requiring the current ones."""
    sparse_gradients: bool = False
    """Lookups give :meth:`row_parameters` a sparse gradient of the looked-up rows only (off:
    the dense ``(N, ...)`` gradient of plain indexing). Set through :func:`sparse_gradients`."""
    catch_up: CatchUp | None = None
    """With :attr:`sparse_gradients` on, called as ``catch_up(parameter, index)`` before rows
    are read, so an optimiser that defers updates of rows not read (``sparse_adam``) brings
    them up to date first; when it returns the rows (``parameter[index]`` with a sparse
    gradient, see :func:`sparse_rows`: it had to read them anyway), the lookup uses them
    instead of reading the table again. Set through :func:`sparse_gradients` for its block
    only."""

    def row_parameters(self) -> list[nn.Parameter]:
        """Parameters indexed by row along dim 0 (``(N, d)``, ``(N, 1)``, or the packed
        ``(sum d_n,)`` values) that lookups read row by row through :meth:`_gather`, so that
        with :attr:`sparse_gradients` on they receive sparse gradients and a row-wise
        optimiser may update only the rows a batch read. Default: none (the table's
        parameters are updated densely)."""
        return []

    def _gather(self, parameter: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``parameter[index]`` (``index`` of shape ``(B,)``, result ``(B, ...)``); with
        :attr:`sparse_gradients` on, its gradient is sparse: ``(k, ...)`` values at the
        ``k`` distinct indices read (duplicates summed when the optimiser coalesces)."""
        if not self.sparse_gradients:
            return parameter[index]
        if self.catch_up is not None:
            rows = self.catch_up(parameter, index)
            if rows is not None:
                return rows
        if parameter.dim() == 2:
            return F.embedding(index, parameter, sparse=True)
        return _SparseGather.apply(parameter, index)

    def _stored(self, parameter: torch.Tensor) -> torch.Tensor:
        """``parameter`` itself, for a read of every row that bypasses :meth:`_gather` (a
        table's ``all()``): with :attr:`catch_up` set, an optimiser that holds caught-up rows
        not yet written (``sparse_adam`` between a lookup and its step) writes them first."""
        if self.sparse_gradients and self.catch_up is not None:
            self.catch_up(parameter, None)
        return parameter

    @abstractmethod
    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """Vectors of ``ids``.

        Args:
            ids: int64 tensor of shape ``(B,)``.

        Returns:
            float tensor of shape ``(B, embedding_dim)``.
        """

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(ids)

    def all(self) -> torch.Tensor:
        """Every row, shape ``(num_embeddings, embedding_dim)`` (graph models propagate these)."""
        return self.lookup(torch.arange(self.num_embeddings, device=self._device()))

    def kept_width(self) -> int:
        """Leading columns that may be non-zero: in every row looked up, the columns from this
        index on are zero (``embedding_dim``, unless the table keeps a prefix of each row)."""
        return self.embedding_dim

    @abstractmethod
    def num_parameters(self) -> int:
        """Logical number of stored values (e.g. ``sum(d_n)`` for per-row sizes)."""

    def nbytes(self) -> int:
        """Physical bytes held by this table's parameters and buffers."""
        total = 0
        for tensor in list(self.parameters()) + list(self.buffers()):
            total += tensor.numel() * tensor.element_size()
        return total

    def spec(self) -> dict[str, Any]:
        """JSON-able description of the table's kind, enough to rebuild an empty table of the
        same layout before ``load_state_dict`` (see :func:`leanrec.embeddings.table_from_spec`):
        ``{"kind": kind, option: value, ...}`` for each of ``spec_options`` in order."""
        if not self.kind:
            raise NotImplementedError(f"{type(self).__name__} does not describe itself")
        return {"kind": self.kind, **{name: getattr(self, name) for name in self.spec_options}}

    @classmethod
    def from_spec(
        cls, spec: dict[str, Any], num_embeddings: int, embedding_dim: int
    ) -> EmbeddingTable:
        """An empty table of this kind laid out as ``spec`` says, ready for ``load_state_dict``.

        Default: ``cls(num_embeddings, embedding_dim, **options)`` with the spec's values of
        ``spec_options``; an option the spec lacks (a spec saved before the option existed)
        takes the constructor's default.
        """
        options = {name: spec[name] for name in cls.spec_options if name in spec}
        return cls(num_embeddings, embedding_dim, **options)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # a table rebuilt from its spec (or saved at another capacity) may have another layout:
        # adopt the stored shapes of ``resized_on_load`` before the values are copied
        for name in self.resized_on_load:
            stored = state_dict.get(prefix + name)
            if stored is None:
                continue
            current = getattr(self, name)
            if isinstance(current, nn.Parameter):
                # same Parameter object (an optimiser may hold it), new float32 storage
                current.data = torch.empty_like(stored, dtype=torch.float32)
                current.grad = None
            else:
                # the table's own dtype (e.g. int32 ID maps read from an int64 file)
                setattr(self, name, torch.empty_like(stored, dtype=current.dtype))
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _check_ids(self, ids: torch.Tensor) -> None:
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):
            raise IndexError(
                f"{type(self).__name__}: id out of range [0, {self.num_embeddings}): "
                f"min {int(ids.min())}, max {int(ids.max())}"
            )

    def _device(self) -> torch.device:
        for tensor in list(self.parameters()) + list(self.buffers()):
            return tensor.device
        return torch.device("cpu")

    def extra_repr(self) -> str:
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"


class StreamTable(EmbeddingTable):
    """An ID table along a stream, where IDs keep arriving (optional interface).

    IDs are the indices of a growing stream vocabulary (``leanrec.data.vocab_stream``), i.e.
    codes in order of first appearance. The table is told of new IDs (``extend_ids``) and of
    the chunk's events (``observe``); an ID it has been told of but has not seen yet reads a
    shared vector (cold start) and never gets a row before the table decides it. An ID beyond
    ``num_embeddings`` is a caller error (``IndexError``, as for every table): a server meeting
    a new raw ID adds it to the vocabulary and calls ``extend_ids`` first.

    The streaming trainer calls, per chunk::

        table.extend_ids(vocabulary.size)   # before predicting: the chunk's new IDs come
                                            # into range and read the shared vector
        ... predict the chunk ...
        table.observe(chunk_ids)            # after predicting: (n,) int64 indices in order
        ... optimiser steps ...

    and once, after building the optimiser, ``table.row_sync(optimizer)``.

    :meth:`nbytes` of a stream table counts every byte it holds for ID representations:
    allocated rows (capacity, not only used rows), shared vectors and per-ID state (ID maps,
    counters, positions). Each kind's docstring gives its formula.
    """

    def observe(self, ids: torch.Tensor) -> None:
        """Account for one chunk of events: ``ids`` is the ``(n,)`` int64 tensor of the chunk's
        indices in event order (repeats included). Updates counters, admissions, recency.
        Called once per chunk, after the chunk is predicted (its own events are not known when
        they are predicted: no look-ahead) and before learning on it. Default: nothing kept."""
        self._check_ids(torch.as_tensor(ids))

    @abstractmethod
    def extend_ids(self, num_embeddings: int) -> None:
        """Accept IDs ``0..num_embeddings-1`` (a smaller value than the current one is a
        no-op); new IDs read the table's shared vector until the table gives them more."""

    def row_sync(self, optimizer: torch.optim.Optimizer) -> None:
        """Keep ``optimizer``'s per-row state (Adam moments, momentum) in step with this table's
        rows from now on: moved with rows on regrowth and compaction, zeroed when a row is
        given to another ID. Call once after building the optimiser. Default: rows never move
        (nothing to do)."""

    def get_extra_state(self) -> dict[str, int]:
        """The ID space so far (a plain int, so saved beside the tensors)."""
        return {"num_embeddings": self.num_embeddings}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.num_embeddings = int(state["num_embeddings"])


class _SparseGather(torch.autograd.Function):
    """``values[index]`` for a parameter of any rank whose gradient is a sparse COO tensor
    (``F.embedding`` covers 2-d weights only; packed values are 1-d), or ``read`` when the
    rows were read already (:func:`sparse_rows`)."""

    @staticmethod
    def forward(
        ctx: Any, values: torch.Tensor, index: torch.Tensor, read: torch.Tensor | None = None
    ) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.shape = values.shape
        return values[index] if read is None else read

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (index,) = ctx.saved_tensors
        flat = index.reshape(1, -1)
        values = grad.reshape(-1, *ctx.shape[1:])
        sparse = torch.sparse_coo_tensor(flat, values, ctx.shape, check_invariants=False)
        return sparse, None, None


def sparse_rows(parameter: torch.Tensor, rows: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``rows`` (``parameter[index]``, already read elsewhere: ``(B, ...)`` or ``(B, 1)`` for a
    1-d ``parameter``) as the result of :meth:`EmbeddingTable._gather` with sparse gradients:
    shaped ``index.shape + parameter.shape[1:]``, its gradient reaching ``parameter`` as the
    same sparse COO tensor ``F.embedding(..., sparse=True)`` gives (``index`` and the
    gradient rows, uncoalesced). A row-wise optimiser that caught the rows up returns them
    through this, so the lookup does not read the table a second time."""
    shaped = rows.view(*index.shape, *parameter.shape[1:])
    return _SparseGather.apply(parameter, index, shaped)


@contextmanager
def sparse_gradients(
    tables: Iterable[EmbeddingTable],
    enabled: bool = True,
    catch_up: CatchUp | None = None,
) -> Iterator[None]:
    """Turn :attr:`EmbeddingTable.sparse_gradients` on (``enabled``) for ``tables`` during
    the block, with ``catch_up`` as their :attr:`EmbeddingTable.catch_up`, then back to each
    table's previous settings, so a model leaves training with plain dense lookups (an
    optimiser outside the trainer, such as ``torch.optim.Adam``, rejects sparse gradients)
    and holds no reference to the trainer's optimiser."""
    tables = [table for table in tables if table.row_parameters()]
    previous = [(table.sparse_gradients, table.catch_up) for table in tables]
    for table in tables:
        table.sparse_gradients = enabled
        table.catch_up = catch_up if enabled else None
    try:
        yield
    finally:
        for table, (before, hook) in zip(tables, previous, strict=True):
            table.sparse_gradients = before
            table.catch_up = hook


TableFactory = Callable[[str, int, int], EmbeddingTable]
"""Builds a table from ``(name, num_embeddings, embedding_dim)``; models take one of these."""
