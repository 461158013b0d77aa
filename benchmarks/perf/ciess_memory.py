"""Real bytes of a searched model: packed (ragged) table vs the dense d_max table.

Loads the CIESS model an ``leanrec experiment embedding-size`` run saved for c = 90%
(``ciess_c90.pt``, masked tables), packs it, and reports in one run:

- bytes of the dense ``d_max`` table (the peer: what an uncompressed model holds), of the masked
  table (dense weights + sizes: what masking-only research code holds), of the packed table in
  memory and of the safetensors file;
- that the packed model's top-k lists equal the masked model's for every user;
- lookup time of the packed table relative to the dense table, same ids, same run.

Writes ``results/ciess_memory.json`` (``--tag T``: ``results/ciess_memory--T.json``). Run from the
repository root:

    python -m benchmarks.perf.ciess_memory --run runs/es-ml1m-lightgcn --target 90
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open

from benchmarks.common import add_tag_argument, print_table, write_results
from leanrec.api import load_model
from leanrec.embeddings import FullEmbedding
from leanrec.models.compress import compress, entity_sparsity, load_compressed, save_compressed
from leanrec.models.memory import dense_table_bytes


def time_lookup(table: torch.nn.Module, ids: torch.Tensor, repeats: int) -> float:
    best = float("inf")
    with torch.no_grad():
        for _ in range(repeats):
            began = time.perf_counter()
            table.lookup(ids)  # type: ignore[operator]
            best = min(best, time.perf_counter() - began)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/es-ml1m-lightgcn")
    parser.add_argument("--target", type=int, default=90)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    add_tag_argument(parser, "ciess_memory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    source = Path(args.run) / f"ciess_c{args.target}.pt"
    masked, user_vocab, item_vocab = load_model(source)
    masked.eval()
    packed = compress(masked)
    tables = masked.embedding_tables()
    dense_bytes = sum(dense_table_bytes(t.num_embeddings, t.embedding_dim) for t in tables.values())
    masked_bytes = masked.embedding_bytes()
    packed_bytes = packed.embedding_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        path = save_compressed(
            masked,
            Path(tmp) / "model.safetensors",
            None if user_vocab is None else user_vocab.raw_ids,
            None if item_vocab is None else item_vocab.raw_ids,
        )
        file_bytes = path.stat().st_size
        # the served model: read back from the file, as `leanrec recommend` does
        served, _, _ = load_compressed(path)
        served.eval()
        served_bytes = served.embedding_bytes()
        # what else the file stores, at its stored dtypes: seen-item lists, raw IDs, buffers
        with safe_open(str(path), framework="pt") as handle:
            stored = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    tables_in_file = tuple(f"state.{name}." for name in packed.embedding_tables())
    non_table = sum(
        v.numel() * v.element_size() for k, v in stored.items() if not k.startswith(tables_in_file)
    )

    users = torch.arange(masked.n_users)
    top_masked = masked.recommend(users, args.k)[0]
    top_packed = packed.recommend(users, args.k)[0]
    top_served = served.recommend(users, args.k)[0]
    identical_users = int((top_masked == top_packed).all(dim=1).sum())
    identical_served = int((top_masked == top_served).all(dim=1).sum())

    # lookup speed: the item table, every id, dense vs packed
    name, table = next((n, t) for n, t in tables.items() if "item" in n)
    dense = FullEmbedding.from_tensor(table.all().detach())
    ids = torch.randint(
        0, table.num_embeddings, (200_000,), generator=torch.Generator().manual_seed(0)
    )
    dense_seconds = time_lookup(dense, ids, 5)
    packed_seconds = time_lookup(packed.embedding_tables()[name], ids, 5)

    rows = [
        ["dense d_max table (peer)", dense_bytes, 1.0],
        ["masked table (dense + sizes)", masked_bytes, masked_bytes / dense_bytes],
        ["packed table in memory", packed_bytes, packed_bytes / dense_bytes],
        ["packed, loaded from safetensors", served_bytes, served_bytes / dense_bytes],
    ]
    print(f"{source}: sparsity {entity_sparsity(masked):.4f}, {masked.n_users} users")
    print_table(["storage", "bytes", "ratio to dense"], rows)
    print(
        f"safetensors file: {file_bytes} bytes ({non_table} of them seen-item lists, raw IDs "
        "and buffers)"
    )
    print(
        f"top-{args.k} identical to the masked model for {identical_users}/{masked.n_users} "
        f"users (packed in memory) and {identical_served}/{masked.n_users} (loaded from file)"
    )
    print(
        f"lookup of 200k ids: packed {packed_seconds * 1e3:.2f} ms, "
        f"dense {dense_seconds * 1e3:.2f} ms "
        f"({packed_seconds / dense_seconds:.2f}x)"
    )
    write_results(
        "ciess_memory",
        {
            "run": str(args.run),
            "target_sparsity": args.target / 100,
            "sparsity": entity_sparsity(masked),
            "dense_table_bytes": dense_bytes,
            "masked_table_bytes": masked_bytes,
            "packed_table_bytes": packed_bytes,
            "packed_ratio_to_dense": packed_bytes / dense_bytes,
            "goal_packed_ratio": 0.12,
            "goal_met": packed_bytes / dense_bytes <= 0.12
            and identical_users == identical_served == masked.n_users,
            "served_table_bytes": served_bytes,
            "topk_identical_users_loaded": identical_served,
            "safetensors_file_bytes": file_bytes,
            "non_table_bytes": non_table,
            "users": masked.n_users,
            "topk_k": args.k,
            "topk_identical_users": identical_users,
            "lookup_ids": int(ids.numel()),
            "lookup_packed_seconds": packed_seconds,
            "lookup_dense_seconds": dense_seconds,
            "lookup_packed_over_dense": packed_seconds / dense_seconds,
        },
        args.tag,
    )


if __name__ == "__main__":
    main()
