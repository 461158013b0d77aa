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
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.models.base import DotProductRecommender


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


class GraphRecommender(DotProductRecommender):
    """A dot-product model that propagates over the normalised training graph (LightGCN, NGCF).

    :meth:`attach` builds the graph from the training interactions; a loaded model rebuilds it
    from its stored seen-item CSR, so checkpoints never hold the ``(U + I)``-sized adjacency.
    """

    graph: SparseGraph | None = None

    def attach(self, train: Interactions) -> None:
        super().attach(train)
        self.graph = SparseGraph(normalized_adjacency(train))

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

    def require_graph(self) -> SparseGraph:
        if self.graph is None:
            raise RuntimeError(
                f"{self.name} needs its training graph: call model.attach(train) first"
            )
        return self.graph
