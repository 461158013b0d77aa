"""One optimizer step of a training batch, shared by the BPR, CTR and sequential trainers and the
CIESS and PEP inner loops: stop on a NaN or infinite loss with the trainer's own message, else
zero, backpropagate, step. (The sketch trainer accumulates gradients over time steps and the
stream trainer steps two optimisers; each keeps its own step.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from leanrec.errors import TrainingError as TrainingError  # importable from here too


def gradient_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    failure: str,
    clip: tuple[Iterable[torch.Tensor], float] | None = None,
    synchronize: Callable[[], None] | None = None,
) -> None:
    """One optimizer step on a scalar ``loss``: zero the gradients, backpropagate, call
    ``synchronize`` (a data-parallel run averages the gradients DDP does not), clip the
    gradients' total norm when ``clip = (parameters, max_norm)`` is given, step.

    Raises:
        TrainingError: when ``loss`` is NaN or infinite (checked first: a non-finite loss
            changes no weight), with the message ``failure``, ``{loss}`` in it replaced by the
            loss value. Each trainer words its own (where in the run, which setting to lower).
    """
    if not torch.isfinite(loss):
        raise TrainingError(failure.replace("{loss}", str(loss.item())))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if synchronize is not None:
        synchronize()
    if clip is not None:
        parameters, max_norm = clip
        clip_gradients(parameters, max_norm)
    optimizer.step()


def clip_gradients(parameters: Iterable[torch.Tensor], max_norm: float) -> None:
    """Scale the gradients of ``parameters`` so that their total L2 norm is at most
    ``max_norm`` (``torch.nn.utils.clip_grad_norm_``), sparse gradients of row-wise tables
    included: their norm is that of their coalesced values (duplicate rows summed first)."""
    parameters = [p for p in parameters if p.grad is not None]
    if not any(p.grad is not None and p.grad.is_sparse for p in parameters):
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)
        return
    squares = []
    for parameter in parameters:
        grad = parameter.grad
        assert grad is not None
        if grad.is_sparse:
            grad = parameter.grad = grad.coalesce()
            squares.append(grad.values().pow(2).sum())
        else:
            squares.append(grad.pow(2).sum())
    total = torch.stack(squares).sum().sqrt()
    factor = (max_norm / (total + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s rule
    for parameter in parameters:
        assert parameter.grad is not None
        parameter.grad.mul_(factor)
