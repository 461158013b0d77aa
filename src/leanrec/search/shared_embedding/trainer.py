"""The stream trainer with an assignment step: IDs move between levels before each chunk is
learnt.

:class:`AssigningTrainer` is a :class:`~leanrec.train.stream.StreamTrainer` whose ``learn``
first lets an :class:`~leanrec.search.shared_embedding.baselines.Assigner` move the chunk's IDs
(the Identity Agent, or fixed thresholds), then learns the chunk with the new assignment. Per
chunk, in order::

    assigner.see(chunk)      # optional: what the events say of their IDs (side groups)
    predict(chunk)           # evaluated chunks: scored under the current assignment
    L = per-event loss       # of that prediction (warm-up chunks: the same forward pass)
    assigner.assign(chunk, L)  # rewards, critic and actor updates, moves (between steps)
    StreamTrainer.learn      # tables observe the chunk, the base model learns it
    assigner.learnt(chunk)   # optional: e.g. level-1 group vectors follow their rows

The loss ``L`` is the prequential loss, measured before the model learns the chunk, so the
reward of a decision is what the model predicted with it, not a training loss. Embedding bytes
add the assigner's per-ID state (the agent's loss histories and open decisions) to the
tables' bytes; the agent's networks and replay are reported beside them (``agent``). The
assigner's state travels in the trainer's checkpoint, so :func:`~leanrec.train.stream.run_stream`
resumes a run exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from leanrec.evaluate.prequential import Prediction, StreamChunk
from leanrec.models.stream import StreamModel
from leanrec.search.shared_embedding.baselines import Assigner
from leanrec.train.stream import StreamTrainer, StreamTrainerConfig


def event_losses(prediction: Prediction, batch: StreamChunk, objective: str) -> torch.Tensor:
    """Per-event loss of a prediction, ``(n,)`` float32: BCE of the probability on the label,
    or the squared error of the rating."""
    if objective == "bce":
        assert prediction.probability is not None
        p = np.clip(prediction.probability, 1e-7, 1 - 1e-7)
        y = batch.events.label
        return torch.from_numpy(-(y * np.log(p) + (1 - y) * np.log1p(-p))).float()
    assert prediction.rating is not None and batch.events.rating is not None
    return torch.from_numpy((prediction.rating - batch.events.rating) ** 2).float()


class AssigningTrainer(StreamTrainer):
    """A stream trainer that runs ``assigner`` on each chunk before learning it.

    Args:
        model: the stream model.
        config: the base model's training.
        assigner: who moves IDs (None: a plain :class:`StreamTrainer`).
    """

    def __init__(
        self,
        model: StreamModel,
        config: StreamTrainerConfig | None = None,
        assigner: Assigner | None = None,
    ) -> None:
        super().__init__(model, config)
        self.assigner = assigner
        self._predicted: tuple[int, Prediction] | None = None

    def _extend(self, sizes: Mapping[str, int]) -> None:
        self.model.extend_ids(sizes)
        if self.assigner is not None:
            self.assigner.extend(sizes)

    def predict(self, batch: StreamChunk) -> Prediction:
        self._extend(batch.observed.sizes)
        self._hook("see", batch)
        prediction = super().predict(batch)
        self._predicted = (batch.chunk.index, prediction)
        return prediction

    def learn(self, batch: StreamChunk) -> None:
        if self.assigner is not None:
            self._extend(batch.observed.sizes)
            self._hook("see", batch)
            losses = None
            if self.assigner.needs_losses:
                cached = self._predicted
                prediction = (
                    cached[1]
                    if cached is not None and cached[0] == batch.chunk.index
                    else super().predict(batch)
                )
                losses = event_losses(prediction, batch, self.config.objective)
            self._shared_step(batch)
            self.assigner.assign(batch, losses)
        self._predicted = None
        super().learn(batch)
        self._hook("learnt", batch)

    def _hook(self, name: str, batch: StreamChunk) -> None:
        """The assigner's optional ``see`` / ``learnt`` hook on ``batch``, when it has one."""
        hook = getattr(self.assigner, name, None)
        if hook is not None:
            hook(batch)

    def _shared_step(self, batch: StreamChunk) -> None:
        """One step of the assigner's own optimiser of the shared vectors (if it has one) on
        the mean loss of the chunk's events that read a shared vector, before the moves: the
        shared vectors learn what they predicted (new and rare IDs), the rest of the model is
        left alone (its gradients are dropped)."""
        optimizer = getattr(self.assigner, "shared_optimizer", None)
        reads_shared = getattr(self.assigner, "reads_shared", None)
        if optimizer is None or reads_shared is None:
            return
        if self.config.objective == "mse" and self.rating_offset is None:
            return  # no rating offset before the first chunk is learnt
        events = torch.nonzero(reads_shared(batch)).reshape(-1)
        if len(events) == 0:
            return
        ids = {f: v[events] for f, v in self._ids(batch).items()}
        target = self._target(batch)[events]
        self.model.train()
        loss = self._event_losses(self.model(ids), target.to(torch.float32)).mean()
        self.model.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.model.zero_grad(set_to_none=True)

    def memory(self) -> int:
        """Embedding bytes: the tables and the assigner's per-ID state."""
        extra = 0 if self.assigner is None else self.assigner.nbytes()
        return super().memory() + extra

    def bytes_report(self) -> dict[str, int]:
        report = super().bytes_report()
        report["embedding"] = self.memory()
        report["agent"] = 0 if self.assigner is None else self.assigner.agent_bytes()
        return report

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["assigner"] = {} if self.assigner is None else self.assigner.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        if self.assigner is not None:
            self.assigner.load_state_dict(state["assigner"])


__all__ = ["AssigningTrainer", "event_losses"]
