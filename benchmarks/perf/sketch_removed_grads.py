"""Cost of ``v`` for removed events (DiPS with a queue): forward mode vs per-event reverse.

DiPS (``Q > 1``) needs ``v_e = dℓ/dz_e`` for every event a user's sketch removed in the last
``τ·Q`` steps, at every training step. ``SketchNCF.removed_event_grads`` gets all of them with
one Jacobian-vector product per inner step (tangent: the trajectory's adjoint). The peer is the
implementation it replaced (``directional_loss_grads(mode="reverse")``, used for explicit
ratings): one reverse pass over ``(B·E)`` copies of the user parameters, so the implicit
normaliser over the sampled pool is recomputed once per event instead of once per user. Both
run in this process on the same tensors; the script checks that they agree and prints the
ratio.

Writes ``results/sketch_removed_grads.json`` (``--tag T``:
``results/sketch_removed_grads--T.json``). Run from the repository root:

    python -m benchmarks.perf.sketch_removed_grads [--repeats 5]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import add_tag_argument, print_table, write_results
from leanrec.search.sketch.model import SketchNCF


def case(explicit: bool, batch: int, removed: int, repeats: int) -> dict[str, float]:
    """Time both on one synthetic step of Beauty's (implicit) or ML-1M's (explicit) shape."""
    torch.manual_seed(0)
    n_items = 12101 if not explicit else 3706
    model = SketchNCF(n_items, 32, 32, explicit=explicit)
    sketch = 4
    kept = torch.randint(n_items, (batch, sketch))
    kept_ratings = torch.randint(1, 6, (batch, sketch)).float()
    pool = None if explicit else torch.randint(n_items, (1024,))
    trajectory: list[torch.Tensor] = []
    weights = torch.ones(batch, sketch, requires_grad=True)
    theta = model.adapt(kept, kept_ratings, weights, 2, 0.5, True, pool, sketch, trajectory)
    for point in trajectory[1:]:
        point.retain_grad()
    target = torch.randint(n_items, (batch, 1))
    model.item_losses(theta, target, torch.full((batch, 1), 4.0), pool).sum().backward()
    adjoints = []
    for point in trajectory[1:]:
        assert point.grad is not None  # every inner step is on the loss's path
        adjoints.append(point.grad)
    items = torch.randint(n_items, (batch, removed))
    ratings = torch.randint(1, 6, (batch, removed)).float()
    args = (trajectory, adjoints, items, ratings, pool)
    timings: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    for name, fn in (
        ("jvp", lambda: model.directional_loss_grads(*args)),
        ("reverse", lambda: model.directional_loss_grads(*args, mode="reverse")),
    ):
        fn()  # warm-up
        began = time.perf_counter()
        for _ in range(repeats):
            outputs[name] = fn()
        timings[name] = (time.perf_counter() - began) / repeats
    error = float((outputs["jvp"] - outputs["reverse"]).abs().max())
    scale = float(outputs["reverse"].abs().max())
    return {
        "jvp_ms": 1e3 * timings["jvp"],
        "reverse_ms": 1e3 * timings["reverse"],
        "speedup": timings["reverse"] / timings["jvp"],
        "max_abs_difference": error,
        "max_abs_value": scale,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    add_tag_argument(parser, "sketch_removed_grads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, float | int | str] = {"repeats": args.repeats}
    rows = []
    # batch users 64, removed events remembered: τ·Q (online Q = 50: 50; batch τ = 4: 200)
    for label, explicit, removed in (
        ("implicit, online (E = 50)", False, 50),
        ("implicit, batch tau=4 (E = 200)", False, 200),
        ("explicit, online (E = 50)", True, 50),
    ):
        out = case(explicit, 64, removed, args.repeats)
        key = label.split(",")[0] + f"_E{removed}"
        results.update({f"{key}_{k}": v for k, v in out.items()})
        rows.append(
            [label, out["reverse_ms"], out["jvp_ms"], out["speedup"], out["max_abs_difference"]]
        )
        if out["max_abs_difference"] > 1e-4 * max(1.0, out["max_abs_value"]):
            raise SystemExit(f"{label}: the two implementations disagree: {out}")
    print_table(
        ["64 users, one step", "per-event reverse ms", "JVP ms", "speed-up", "max |diff|"], rows
    )
    print(write_results("sketch_removed_grads", results, args.tag))


if __name__ == "__main__":
    main()
