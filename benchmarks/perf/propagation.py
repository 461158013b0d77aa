"""Graph propagation kernel: leanrec's symmetric operator vs ``torch.sparse.mm``.

One LightGCN propagation step ``Â X`` with its backward pass, on the real ML-1M (RecBole
protocol train split) and Gowalla (given train file) graphs, d = 64. The peer is what RecBole and
the LightGCN reference code use: ``torch.sparse.mm`` on a COO tensor (and CSR for reference).
leanrec's operator runs with its default torch CSR kernel and with the SciPy kernel it used
before. Reported as the ratio peer / leanrec in the same run.

Writes ``results/propagation.json`` (``--tag T``: ``results/propagation--T.json``). Run from the
repository root:

    python -m benchmarks.perf.propagation [--repeats 20]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from functools import partial

import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.graph import SparseGraph, normalized_adjacency

warnings.filterwarnings("ignore", message=".*Sparse.*")


def time_it(fn: Callable[[], None], repeats: int) -> float:
    fn()
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats


def step(op: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``op`` at ``x``."""

    def run() -> None:
        x.grad = None
        op(x).sum().backward()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--dim", type=int, default=64)
    add_tag_argument(parser, "propagation")
    args = parser.parse_args()
    results: dict[str, float | int | str] = {"dim": args.dim, "repeats": args.repeats}
    rows = []
    for dataset, protocol in [("ml-1m", "recbole"), ("gowalla", "lightgcn")]:
        split, _ = prepare_split(dataset, protocol, data_dir())
        graph = SparseGraph(normalized_adjacency(split.train))
        n = graph.shape[0]
        coo = graph.torch_csr(torch.device("cpu")).to_sparse_coo().coalesce()
        csr = graph.torch_csr(torch.device("cpu"))
        x = torch.randn(n, args.dim, requires_grad=True)

        ours = time_it(step(graph.matmul, x), args.repeats)
        scipy_graph = SparseGraph(graph.matrix)
        scipy_graph.kernel = "scipy"
        ours_scipy = time_it(step(scipy_graph.matmul, x), args.repeats)
        peer_coo = time_it(step(partial(torch.sparse.mm, coo), x), args.repeats)
        peer_csr = time_it(step(partial(torch.sparse.mm, csr), x), args.repeats)
        rows.append([dataset, n, graph.matrix.nnz, ours * 1e3, ours_scipy * 1e3, peer_coo * 1e3,
                     peer_csr * 1e3, peer_coo / ours, peer_csr / ours])  # fmt: skip
        results.update(
            {
                f"{dataset}_nodes": n,
                f"{dataset}_nnz": int(graph.matrix.nnz),
                f"{dataset}_leanrec_ms": ours * 1e3,
                f"{dataset}_leanrec_scipy_kernel_ms": ours_scipy * 1e3,
                f"{dataset}_torch_coo_ms": peer_coo * 1e3,
                f"{dataset}_torch_csr_ms": peer_csr * 1e3,
                f"{dataset}_speedup_vs_torch_coo": peer_coo / ours,
                f"{dataset}_speedup_vs_torch_csr": peer_csr / ours,
            }
        )
    print_table(
        ["graph", "nodes", "nnz", "leanrec ms", "leanrec, SciPy kernel ms", "torch COO ms",
         "torch CSR ms", "x vs COO", "x vs CSR"],
        rows,
    )  # fmt: skip
    print(f"wrote {write_results('propagation', results, args.tag)}")


if __name__ == "__main__":
    main()
