"""The one interface every model uses to get ID vectors.

A model never owns a raw ``nn.Embedding``: it holds :class:`EmbeddingTable` objects and asks them
for vectors with :meth:`EmbeddingTable.lookup`. Later capabilities swap a table for a masked,
ragged (packed) or shared one without touching the model, and count memory through
:meth:`num_parameters` (logical values) and :meth:`nbytes` (physical bytes held in RAM).

Tables that live along an event stream (IDs keep arriving, rows come and go) also implement
:class:`StreamTable`: ``extend_ids`` when the vocabulary grows, ``observe`` once per chunk, and
``row_sync`` so an optimiser's per-row state follows rows that move.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn


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


TableFactory = Callable[[str, int, int], EmbeddingTable]
"""Builds a table from ``(name, num_embeddings, embedding_dim)``; models take one of these."""
