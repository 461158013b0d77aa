"""Sparse normalised user-item graph and a fast symmetric propagation operator.

The bipartite adjacency ``A = [[0, R], [R^T, 0]]`` of shape ``(U + I, U + I)`` is normalised as
``Â = D^{-1/2} A D^{-1/2}`` (LightGCN Eq. 7 / NGCF Eq. 8) and kept sparse (CSR): nothing of size
``(U + I)^2`` is ever built. Because ``Â`` is symmetric, the gradient of ``Â X`` with respect to
``X`` is ``Â G``: :class:`SymmetricPropagation` reuses the forward kernel for the backward pass
instead of transposing. The kernel of each direction is a plain CSR x dense product: torch's
(default, :attr:`SparseGraph.kernel` ``"torch"``) or SciPy's (``"scipy"``). Either is 2-4x faster
than differentiating through ``torch.sparse.mm``, which transposes the matrix in its backward
pass; torch's CSR product is the faster of the two in torch 2.13 on one CPU thread
(``benchmarks/perf/propagation.py`` measures all of them).

Training can instead propagate only over a sampled neighbourhood of the batch
(:class:`NeighbourSampler`, ``propagation="sampled"`` in the model configs): every node of the
batch keeps at most ``F`` (the fan-out) of its neighbours per hop, each weighted by
``Â_vw * deg(v) / F`` so that the sampled product equals ``Â x`` in expectation. A step then
costs ``O(B F^L d)`` whatever the size of the graph, and an epoch is linear in the edges;
evaluation still propagates once over the whole graph.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.models.base import DotProductRecommender, PairwiseOutput

PROPAGATION_MODES = ("auto", "full", "sampled", "snapshot")
"""How a graph model propagates during training: over the whole graph at every step
(``"full"``), over the batch's sampled L-hop neighbourhood (``"sampled"``), from a full
propagation taken at the start of each epoch corrected through the edges among the batch's own
nodes (``"snapshot"``, :class:`PropagationSnapshot`), or ``"auto"``: full up to
``sampled_above_edges`` training edges, snapshot above. Evaluation always propagates over the
whole graph, once."""

DEFAULT_SAMPLED_ABOVE_EDGES = 1_000_000
"""Training edges above which ``propagation="auto"`` trains on snapshots. Below it a full
propagation per step costs about as much as a batch's sampled neighbourhood and is exact;
above it, it makes an epoch's cost grow with the square of the edges (figures:
docs/design/linear-training-cost.md)."""


def check_propagation(config: Any) -> None:
    """Validate the propagation options of a graph config."""
    if config.propagation not in PROPAGATION_MODES:
        raise ValueError(
            f"propagation must be one of {PROPAGATION_MODES}, got {config.propagation!r}"
        )
    if config.fanout < 1:
        raise ValueError(f"fanout must be at least 1, got {config.fanout}")
    if config.sampled_above_edges < 0:
        raise ValueError(f"sampled_above_edges must be >= 0, got {config.sampled_above_edges}")
    snapshots = getattr(config, "snapshots_per_epoch", 1)
    if snapshots < 1:
        raise ValueError(f"snapshots_per_epoch must be at least 1, got {snapshots}")


def normalized_adjacency(train: Interactions, self_loops: bool = False) -> sp.csr_matrix:
    """Symmetric normalised bipartite adjacency, shape ``(U + I, U + I)``, float32 CSR.

    Args:
        train: training interactions (duplicates collapse to one edge).
        self_loops: add ``I`` before normalising (NGCF's ``L + I`` variant uses it separately).

    Isolated nodes (degree 0) get zero rows instead of ``inf``.
    """
    n_users, n_items = train.n_users, train.n_items
    r = train.to_csr()
    n = n_users + n_items
    adj = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    adj = sp.csr_matrix(adj, shape=(n, n))
    if self_loops:
        adj = adj + sp.identity(n, dtype=np.float32, format="csr")
    degree = np.asarray(adj.sum(axis=1)).reshape(-1)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0).astype(np.float32)
    scale = sp.diags(inv_sqrt)
    norm = (scale @ adj @ scale).tocsr().astype(np.float32)
    norm.sort_indices()
    return norm


class SparseGraph:
    """A symmetric sparse matrix usable from torch autograd, on CPU (SciPy) or GPU (torch).

    Shape ``(N, N)``; :meth:`matmul` maps ``(N, d)`` to ``(N, d)``.
    """

    kernel: str = "torch"
    """CPU product used in both directions: ``"torch"`` (torch CSR) or ``"scipy"`` (SciPy CSR);
    the results are identical, only the speed differs."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        if matrix.shape[0] != matrix.shape[1]:
            raise ValueError("SparseGraph needs a square matrix")
        self.matrix = matrix.astype(np.float32).tocsr()
        self._torch: dict[torch.device, torch.Tensor] = {}

    def __getstate__(self) -> dict[str, Any]:
        # copies and pickles carry the SciPy matrix only; torch CSR tensors cannot be
        # deep-copied and are rebuilt on first use
        return {**self.__dict__, "_torch": {}}

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.matrix.shape[0]), int(self.matrix.shape[1]))

    def torch_csr(self, device: torch.device) -> torch.Tensor:
        """The matrix as a torch CSR tensor on ``device`` (built once per device)."""
        if device not in self._torch:
            m = self.matrix
            with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on @ only
                warnings.simplefilter("ignore", UserWarning)
                self._torch[device] = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int64)),
                    torch.from_numpy(m.indices.astype(np.int64)),
                    torch.from_numpy(m.data),
                    size=m.shape,
                    device=device,
                )
        return self._torch[device]

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        """``Â x`` with autograd; ``x`` of shape ``(N, d)``."""
        if x.device.type != "cpu":
            return torch.sparse.mm(self.torch_csr(x.device), x)
        return SymmetricPropagation.apply(x, self)  # type: ignore[no-any-return]

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors that fully describe the graph (for checkpoints)."""
        m = self.matrix
        return {
            "indptr": torch.from_numpy(m.indptr.astype(np.int64)),
            "indices": torch.from_numpy(m.indices.astype(np.int64)),
            "data": torch.from_numpy(m.data.astype(np.float32)),
        }


def _cpu_matmul(graph: SparseGraph, x: torch.Tensor) -> torch.Tensor:
    """``Â x`` on CPU, without autograd, with the graph's :attr:`~SparseGraph.kernel`."""
    dense = x.detach().contiguous()
    if dense.dtype != torch.float32:
        dense = dense.to(torch.float32)
    if graph.kernel == "scipy":
        return torch.from_numpy(np.ascontiguousarray(graph.matrix @ dense.numpy()))
    if graph.kernel != "torch":
        raise ValueError(f"unknown propagation kernel {graph.kernel!r}; use 'torch' or 'scipy'")
    return graph.torch_csr(dense.device) @ dense


class SymmetricPropagation(torch.autograd.Function):
    """``y = Â x`` for symmetric ``Â``; backward is ``Â grad`` (no transpose needed)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, graph: SparseGraph) -> torch.Tensor:
        ctx.graph = graph
        return _cpu_matmul(graph, x)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _cpu_matmul(ctx.graph, grad_output), None


class SampledOperator:
    """A sampled propagation matrix ``P`` of shape ``(n_out, n_in)`` and its transpose, as torch
    CSR tensors: :meth:`matmul` maps ``(n_in, d)`` to ``(n_out, d)`` with autograd."""

    def __init__(self, matrix: sp.csr_matrix) -> None:
        self.shape = (int(matrix.shape[0]), int(matrix.shape[1]))
        self.forward_csr = _torch_csr(matrix)
        self.backward_csr = _torch_csr(matrix.T.tocsr())

    def matmul(self, x: torch.Tensor) -> torch.Tensor:
        return SampledPropagation.apply(x, self)  # type: ignore[no-any-return]


def _torch_csr(m: sp.csr_matrix) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on @ only
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
        )


class SampledPropagation(torch.autograd.Function):
    """``y = P x`` for a sampled (non-symmetric) ``P``; backward is ``P^T grad``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, operator: SampledOperator) -> torch.Tensor:
        ctx.operator = operator
        dense = x.detach().contiguous().to(torch.float32)
        return operator.forward_csr.to(dense.device) @ dense

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        grad = grad_output.contiguous().to(torch.float32)
        return ctx.operator.backward_csr.to(grad.device) @ grad, None


@dataclass
class SampledHops:
    """Nested neighbourhoods of a batch: ``nodes[0] ⊆ nodes[1] ⊆ ... ⊆ nodes[L]``.

    Attributes:
        nodes: global node ids (users ``0..U-1``, items ``U..U+I-1``); ``nodes[j]`` is a prefix
            of ``nodes[j + 1]``, so a layer computed on ``nodes[j + 1]`` holds the rows of
            ``nodes[j]`` first.
        operators: ``operators[j]`` of shape ``(len(nodes[j]), len(nodes[j + 1]))``, the
            sampled rows of ``Â`` of ``nodes[j]`` (columns local to ``nodes[j + 1]``).
    """

    nodes: list[torch.Tensor]
    operators: list[SampledOperator]


class NeighbourSampler:
    """Samples the L-hop neighbourhood of a batch's nodes with a fixed fan-out per hop.

    A node ``v`` of degree ``deg(v) <= F`` keeps all its neighbours with their weights
    ``Â_vw`` (exact); a node of larger degree draws ``F`` neighbours uniformly with replacement,
    each weighted ``Â_vw * deg(v) / F``, so ``E[P] = Â`` row by row. Hops are drawn
    independently, hence ``E[P_0 P_1 ... P_{k-1}] = Â^k``: sampled LightGCN layers equal full
    propagation in expectation (NGCF's nonlinear layers only approximately).

    Randomness comes from torch's default generator, which the trainers seed once per run.
    Memory: the graph's CSR arrays and one ``(U + I,)`` position array, reused across steps.

    Args:
        matrix: the normalised adjacency ``Â`` (CSR, ``(N, N)``).
        fanout: ``F``, neighbours kept per node and hop.
    """

    def __init__(self, matrix: sp.csr_matrix, fanout: int) -> None:
        self.fanout = fanout
        self.indptr = torch.from_numpy(matrix.indptr.astype(np.int64))
        self.indices = torch.from_numpy(matrix.indices.astype(np.int64))
        self.data = torch.from_numpy(matrix.data.astype(np.float32))
        self.degree = self.indptr[1:] - self.indptr[:-1]
        self._position = torch.full((matrix.shape[0],), -1, dtype=torch.int64)

    def sample(self, seeds: torch.Tensor, n_hops: int) -> SampledHops:
        """Neighbourhoods of ``seeds`` (distinct global node ids, ``(n,)``) over ``n_hops``."""
        position = self._position
        nodes = [seeds]
        operators: list[SampledOperator] = []
        position[seeds] = torch.arange(len(seeds))
        try:
            for _ in range(n_hops):
                current = nodes[-1]
                rows, local_cols, weights, grown = self._hop(current)
                nodes.append(grown)
                matrix = sp.csr_matrix(
                    (weights.numpy(), local_cols.numpy(), rows.numpy()),
                    shape=(len(current), len(grown)),
                )
                operators.append(SampledOperator(matrix))
        finally:
            position[nodes[-1]] = -1
        return SampledHops(nodes, operators)

    def _hop(
        self, current: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One hop from ``current`` (whose positions are set): CSR row pointer ``(n + 1,)``,
        local columns and weights ``(nnz,)``, and ``current`` grown by the new neighbours."""
        fanout = self.fanout
        degree = self.degree[current]
        take = degree.clamp(max=fanout)
        row_ptr = torch.zeros(len(current) + 1, dtype=torch.int64)
        torch.cumsum(take, 0, out=row_ptr[1:])
        total = int(row_ptr[-1])
        start = torch.repeat_interleave(self.indptr[current], take, output_size=total)
        row_degree = torch.repeat_interleave(degree, take, output_size=total)
        rank = torch.arange(total) - torch.repeat_interleave(row_ptr[:-1], take, output_size=total)
        drawn = row_degree > fanout
        random_offset = (torch.rand(total) * row_degree).long().clamp_(max=row_degree - 1)
        edge = start + torch.where(drawn, random_offset, rank)
        neighbours = self.indices[edge]
        scale = torch.where(drawn, row_degree.to(torch.float32) / fanout, 1.0)
        weights = self.data[edge] * scale
        position = self._position
        new = torch.unique(neighbours[position[neighbours] < 0])
        position[new] = torch.arange(len(current), len(current) + len(new))
        grown = torch.cat([current, new])
        return row_ptr, position[neighbours], weights, grown


@dataclass
class PropagationSnapshot:
    """Every node's layers from one full propagation, held fixed while a training epoch runs.

    The layers sit side by side in one ``(N, W)`` array, so a batch reads each node's layers
    with one gather of contiguous memory instead of one random read per layer.

    Attributes:
        table: ``(N, W)``: for each propagation step ``k = 0..L-1`` its input ``ego_k`` (layer
            ``k`` of every node; layer 0 is the embedding table) and its aggregate
            ``side_k = Â ego_k``, each ``(N, d_k)``, at the column spans below.
        ego: ``ego[k] = (start, stop)``, the columns of ``ego_k``.
        side: ``side[k] = (start, stop)``, the columns of ``side_k``. For LightGCN
            ``ego_{k+1} = side_k``: both name the same columns.
    """

    table: torch.Tensor
    ego: list[tuple[int, int]]
    side: list[tuple[int, int]]

    @classmethod
    def from_layers(
        cls, egos: list[torch.Tensor], sides: list[torch.Tensor]
    ) -> PropagationSnapshot:
        """Lay out ``egos[k]`` and ``sides[k]`` (``(N, d_k)`` each) in one table, storing a
        tensor that is both some ``sides[k - 1]`` and ``egos[k]`` once."""
        columns: list[torch.Tensor] = []
        spans: dict[int, tuple[int, int]] = {}
        start = 0

        def span(tensor: torch.Tensor) -> tuple[int, int]:
            nonlocal start
            if id(tensor) not in spans:
                spans[id(tensor)] = (start, start + tensor.shape[1])
                start += tensor.shape[1]
                columns.append(tensor)
            return spans[id(tensor)]

        ego = [span(tensor) for tensor in egos[:1]]
        side: list[tuple[int, int]] = []
        for index, tensor in enumerate(sides):
            side.append(span(tensor))
            if index + 1 < len(egos):
                ego.append(span(egos[index + 1]))
        return cls(torch.cat(columns, dim=1), ego, side)


class BatchSubgraph:
    """Sampled edges of the training graph among a batch's nodes, as a symmetric operator.

    The graph is bipartite, so every edge among the batch's nodes lies in the adjacency row of
    one of the batch's users. Each user draws at most ``F`` (the fan-out) of its neighbours as
    :class:`NeighbourSampler` does (all of them at ``Â_uv`` if its degree is at most ``F``,
    else ``F`` uniformly with replacement at ``Â_uv deg(u) / F``) and keeps those in the
    batch; each kept edge enters in both directions with the same weight. Every entry then
    equals ``Â_uv`` in expectation, in the user's row and in the item's, and a step costs at
    most ``F`` entries per batch user, whatever the size of the graph.

    Memory: the graph's CSR arrays and one ``(U + I,)`` position array, reused across steps.

    Args:
        matrix: the normalised adjacency ``Â`` as a torch CSR tensor (``(N, N)``, users
            ``0..U-1`` first; :meth:`SparseGraph.torch_csr`, whose arrays are shared).
        n_users: ``U``.
        fanout: ``F``.
    """

    def __init__(self, matrix: torch.Tensor, n_users: int, fanout: int) -> None:
        self.n_users = n_users
        self.fanout = fanout
        self.indptr = matrix.crow_indices()
        self.indices = matrix.col_indices()
        self.data = matrix.values()
        self._position = torch.full((matrix.shape[0],), -1, dtype=torch.int64)

    def operator(self, nodes: torch.Tensor) -> torch.Tensor:
        """The sampled ``Â[S, S]`` of ``nodes`` (distinct global ids ``S``, ``(n,)``):
        a symmetric torch CSR tensor of shape ``(n, n)`` indexed by position in ``nodes``."""
        fanout = self.fanout
        position = self._position
        position[nodes] = torch.arange(len(nodes))
        try:
            users = nodes[nodes < self.n_users]
            degree = self.indptr[users + 1] - self.indptr[users]
            take = degree.clamp(max=fanout)
            total = int(take.sum())
            row_start = torch.cumsum(take, 0) - take
            rank = torch.arange(total) - torch.repeat_interleave(row_start, take, output_size=total)
            row_degree = torch.repeat_interleave(degree, take, output_size=total)
            drawn = row_degree > fanout
            random_offset = (torch.rand(total) * row_degree).long().clamp_(max=row_degree - 1)
            start = torch.repeat_interleave(self.indptr[users], take, output_size=total)
            edge = start + torch.where(drawn, random_offset, rank)
            tail = position[self.indices[edge]]
            kept = tail >= 0
            scale = torch.where(drawn, row_degree.to(torch.float32) / fanout, 1.0)
            weight = (self.data[edge] * scale)[kept]
            head = torch.repeat_interleave(position[users], take, output_size=total)[kept]
            tail = tail[kept]
        finally:
            position[nodes] = -1
        rows = torch.cat([head, tail])
        order = torch.argsort(rows, stable=True)
        row_ptr = torch.zeros(len(nodes) + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(rows, minlength=len(nodes)), 0, out=row_ptr[1:])
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we rely on @ only
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(
                row_ptr,
                torch.cat([tail, head])[order],
                torch.cat([weight, weight])[order],
                size=(len(nodes), len(nodes)),
            )


class BatchPropagation(torch.autograd.Function):
    """``y = M x`` for a symmetric sparse ``M`` (torch CSR); backward is ``M grad``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        ctx.matrix = matrix
        return matrix @ x.detach().contiguous()

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return ctx.matrix @ grad_output.contiguous(), None


class GraphRecommender(DotProductRecommender):
    """A dot-product model that propagates over the normalised training graph (LightGCN, NGCF).

    :meth:`attach` builds the graph from the training interactions; a loaded model rebuilds it
    from its stored seen-item CSR, so checkpoints never hold the ``(U + I)``-sized adjacency.

    Training propagates as :attr:`training_propagation` says: ``"full"`` runs
    :meth:`final_embeddings` over the whole graph at every step (an epoch costs steps x edges);
    ``"sampled"`` runs :meth:`propagate_sampled` over the batch's neighbourhood drawn with
    fan-out ``config.fanout`` (a step costs the same whatever the graph's size);
    ``"snapshot"`` propagates the whole graph once per epoch (:class:`PropagationSnapshot`) and
    corrects each step through the edges among the batch's own nodes; ``"auto"`` is full up to
    ``config.sampled_above_edges`` training edges and snapshot above. Evaluation and serving
    always use the full propagation, computed once and cached.
    """

    graph: SparseGraph | None = None
    _sampler: NeighbourSampler | None = None
    _subgraph: BatchSubgraph | None = None
    _snapshot: PropagationSnapshot | None = None
    _since_snapshot: int = 0
    """Training interactions (batch rows) scored since the snapshot was taken."""

    @property
    def training_propagation(self) -> str:
        """``"full"``, ``"sampled"`` or ``"snapshot"``: ``config.propagation``, with ``"auto"``
        resolved by the attached graph's edges against ``config.sampled_above_edges``."""
        mode = str(self.config.propagation)
        if mode == "auto":
            large = len(self.seen_indices) > self.config.sampled_above_edges
            return "snapshot" if large else "full"
        return mode

    @property
    def n_hops(self) -> int:
        """Propagation depth ``L`` (hops of neighbourhood a batch's embeddings depend on)."""
        raise NotImplementedError

    def attach(self, train: Interactions) -> None:
        super().attach(train)
        self.graph = SparseGraph(normalized_adjacency(train))
        self._forget_graph_state()

    def after_load(self) -> None:
        super().after_load()
        seen = self.seen_matrix().tocoo()
        train = Interactions(
            users=seen.row.astype(np.int64),
            items=seen.col.astype(np.int64),
            user_vocab=IdVocabulary.identity(self.n_users, "user"),
            item_vocab=IdVocabulary.identity(self.n_items, "item"),
        )
        self.graph = SparseGraph(normalized_adjacency(train))
        self._forget_graph_state()

    def _forget_graph_state(self) -> None:
        self._sampler = None
        self._subgraph = None
        self._snapshot = None

    def train(self, mode: bool = True) -> GraphRecommender:
        """Also drops the propagation snapshot: the next training step takes a new one, so
        every epoch (and the steps after an evaluation) starts from the current weights."""
        self._snapshot = None
        super().train(mode)
        return self

    def require_graph(self) -> SparseGraph:
        if self.graph is None:
            raise RuntimeError(
                f"{self.name} needs its training graph: call model.attach(train) first"
            )
        return self.graph

    # ------------------------------------------------------------------ sampled training
    def neighbour_sampler(self) -> NeighbourSampler:
        """The sampler over the attached graph with ``config.fanout`` (built on first use)."""
        if self._sampler is None or self._sampler.fanout != self.config.fanout:
            self._sampler = NeighbourSampler(self.require_graph().matrix, self.config.fanout)
        return self._sampler

    def node_embeddings(self, nodes: torch.Tensor) -> torch.Tensor:
        """Layer-0 vectors of global node ids ``(n,)`` (users first, then items) -> ``(n, d)``."""
        user_table, item_table = self.id_tables()
        is_user = nodes < self.n_users
        user_rows = torch.nonzero(is_user).reshape(-1)
        item_rows = torch.nonzero(~is_user).reshape(-1)
        user_vectors = user_table.lookup(nodes[user_rows])
        item_vectors = item_table.lookup(nodes[item_rows] - self.n_users)
        stacked = torch.cat([user_vectors, item_vectors])
        order = torch.empty(len(nodes), dtype=torch.int64)
        order[torch.cat([user_rows, item_rows])] = torch.arange(len(nodes))
        return stacked[order]

    def sorted_node_embeddings(self, nodes: torch.Tensor) -> torch.Tensor:
        """:meth:`node_embeddings` of ascending ids (users first, then items: two lookups
        and one concatenation, no reordering) -> ``(n, d)``."""
        user_table, item_table = self.id_tables()
        n_user_nodes = int(torch.searchsorted(nodes, self.n_users))
        return torch.cat(
            [
                user_table.lookup(nodes[:n_user_nodes]),
                item_table.lookup(nodes[n_user_nodes:] - self.n_users),
            ]
        )

    def propagate_sampled(self, hops: SampledHops) -> torch.Tensor:
        """Final representations of ``hops.nodes[0]`` computed over the sampled hops,
        ``(len(hops.nodes[0]), d')``; the same equations as :meth:`final_embeddings`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ snapshot training
    def propagation_layer(
        self, index: int, side: torch.Tensor, ego: torch.Tensor, training: bool
    ) -> torch.Tensor:
        """Layer ``index + 1`` from layer ``index`` (``ego``, ``(n, d_k)``) and its neighbours'
        aggregate ``side = (Â ego)`` of the same rows; ``training`` turns dropout on."""
        raise NotImplementedError

    def readout(self, layers: list[torch.Tensor]) -> torch.Tensor:
        """Final representations ``(n, d')`` from the layers ``0..L`` of the same ``n`` rows."""
        raise NotImplementedError

    @torch.no_grad()
    def take_snapshot(self) -> PropagationSnapshot:
        """One full propagation of the current weights, without dropout or gradients:
        ``(U + I, (L + 1) d)`` for LightGCN, ``(U + I, 2 sum_k d_k)`` for NGCF."""
        graph = self.require_graph()
        user_table, item_table = self.id_tables()
        ego = torch.cat([user_table.all(), item_table.all()], dim=0).detach()
        egos, sides = [], []
        for index in range(self.n_hops):
            side = graph.matmul(ego)
            egos.append(ego)
            sides.append(side)
            ego = self.propagation_layer(index, side, ego, training=False)
        return PropagationSnapshot.from_layers(egos, sides)

    def batch_subgraph(self) -> BatchSubgraph:
        """Samples the edges among a batch's nodes with ``config.fanout`` (built on first use)."""
        if self._subgraph is None or self._subgraph.fanout != self.config.fanout:
            matrix = self.require_graph().torch_csr(torch.device("cpu"))
            self._subgraph = BatchSubgraph(matrix, self.n_users, self.config.fanout)
        return self._subgraph

    def propagate_snapshot(self, nodes: torch.Tensor) -> torch.Tensor:
        """Final representations of ``nodes`` (ascending distinct global ids, ``(n,)``) ->
        ``(n, d')``.

        The snapshot is taken at the first step after :meth:`train` and again after every
        ``len(train) / config.snapshots_per_epoch`` training interactions.

        Step ``k`` aggregates ``side_k = Â ego_k`` as the snapshot's value plus the change of
        the batch's own rows since the snapshot, passed through the edges among them::

            side_k[S] = snapshot.side[k][S] + Â[S, S] (ego_k[S] - snapshot.ego[k][S])

        where ``ego_0[S]`` are the table rows read now. Neighbours outside the batch enter at
        their snapshot values, so the forward pass is full propagation of slightly stale
        weights (exact right after the snapshot), and gradients reach the batch's rows only,
        through the edges among them (all of full propagation's when the batch holds every
        node). A step costs the batch's rows and the edges among them, never the graph's
        size; the snapshot costs one full propagation per epoch.
        """
        refresh_every = len(self.seen_indices) / getattr(self.config, "snapshots_per_epoch", 1)
        if self._snapshot is None or self._since_snapshot >= refresh_every:
            self._snapshot = self.take_snapshot()
            self._since_snapshot = 0
        snapshot = self._snapshot
        among = self.batch_subgraph().operator(nodes)
        rows = snapshot.table.index_select(0, nodes)
        ego = self.sorted_node_embeddings(nodes)
        layers = [ego]
        for index in range(self.n_hops):
            stale = rows[:, slice(*snapshot.ego[index])]
            side = rows[:, slice(*snapshot.side[index])]
            side = side + BatchPropagation.apply(ego - stale, among)
            ego = self.propagation_layer(index, side, ego, training=True)
            layers.append(ego)
        return self.readout(layers)

    def pairwise(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> PairwiseOutput:
        mode = self.training_propagation if self.training else "full"
        if mode == "full":
            return super().pairwise(users, positives, negatives)
        item_nodes = torch.cat([positives, negatives.reshape(-1)]) + self.n_users
        seeds, inverse = torch.unique(torch.cat([users, item_nodes]), return_inverse=True)
        if mode == "snapshot":  # seeds ascend (torch.unique), as propagate_snapshot needs
            final = self.propagate_snapshot(seeds).index_select(0, inverse)
            self._since_snapshot += len(users)
        else:
            hops = self.neighbour_sampler().sample(seeds, self.n_hops)
            final = self.propagate_sampled(hops)[inverse]
        n = len(users)
        u = final[:n]
        pos = (u * final[n : 2 * n]).sum(-1)
        if negatives.dim() == 1:
            neg = (u * final[2 * n :]).sum(-1)
        else:
            neg_final = final[2 * n :].reshape(n, negatives.shape[1], -1)
            neg = torch.einsum("bd,bnd->bn", u, neg_final)
        return PairwiseOutput(pos, neg, self.batch_l2(users, positives, negatives))
