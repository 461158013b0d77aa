"""A sketching policy applied to another base model: the GRU4Rec transfer case (DiPS Fig. 2a).

A next-item model (``leanrec.models.seq``, e.g. GRU4Rec) is trained on the training users'
whole histories. Test users are then streamed through a :class:`StreamingSketcher` (a learned
DiPS policy trained with NCF, or reservoir sampling) and, before every event ``t >= 1``, the
model sees *only* the ``K`` sketch items, oldest first, and ranks all items for event ``t``.
The paper finds the learned policy needs up to 50% fewer sketch items than reservoir sampling
for the same Recall@20.

Online sketches (``τ = 1``) only: with ``τ > 1`` the events pending between two updates are not
part of the sketch a serving system would hand to another model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.streams import UserStreams
from leanrec.models.seq.base import NextItemModel
from leanrec.search.sketch.sketcher import StreamingSketcher


def sketch_snapshots(sketcher: StreamingSketcher, users: np.ndarray) -> np.ndarray:
    """Current sketches of ``users`` as next-item inputs, ``(U, K)`` int64.

    Item IDs are shifted by one (0 is padding, as in :mod:`leanrec.models.seq`), oldest first
    and right-aligned: a sketch holding ``k < K`` items has ``K - k`` zeros on the left.
    """
    k = sketcher.sketch_size
    arrival = sketcher.arrival[users, :k]
    order = np.argsort(arrival, axis=1, kind="stable")  # empty slots (-1) first
    items = np.take_along_axis(sketcher.items[users, :k], order, axis=1) + 1
    held = np.take_along_axis(arrival, order, axis=1) >= 0
    return np.where(held, items, 0)


@dataclass
class SketchedEvents:
    """Every predicted event of a set of streams with the sketch the model sees.

    Attributes:
        inputs: ``(E, K)`` sketch before the event (shifted IDs, right-aligned).
        targets: ``(E,)`` the event's item (shifted ID).
        streams: ``(E,)`` index of the stream the event belongs to.
    """

    inputs: np.ndarray
    targets: np.ndarray
    streams: np.ndarray


def sketched_events(streams: UserStreams, sketcher: StreamingSketcher) -> SketchedEvents:
    """Stream ``streams`` through ``sketcher`` (stream ``s`` is its user ``s``), recording the
    sketch before every event ``t >= 1``. Vectorised over streams: one sketcher round per
    position."""
    if sketcher.update_period != 1:
        raise ValueError("policy transfer is defined for online sketches (update_period τ = 1)")
    if sketcher.n_users < len(streams):
        raise ValueError(
            f"the sketcher holds {sketcher.n_users} users, streams have {len(streams)}"
        )
    lengths = streams.lengths
    ratings = streams.ratings
    inputs, targets, owners = [], [], []
    for position in range(int(lengths.max(initial=0)) - 1):
        active = np.flatnonzero(lengths > position)
        events = streams.offsets[active] + position
        sketcher.process(
            active, streams.items[events], None if ratings is None else ratings[events]
        )
        nxt = active[lengths[active] > position + 1]
        if len(nxt) == 0:
            continue
        inputs.append(sketch_snapshots(sketcher, nxt))
        targets.append(streams.items[streams.offsets[nxt] + position + 1] + 1)
        owners.append(nxt)
    if not inputs:
        k = sketcher.sketch_size
        empty = np.zeros(0, dtype=np.int64)
        return SketchedEvents(np.zeros((0, k), dtype=np.int64), empty, empty)
    return SketchedEvents(np.concatenate(inputs), np.concatenate(targets), np.concatenate(owners))


@torch.no_grad()
def transfer_metrics(
    model: NextItemModel, events: SketchedEvents, k: int = 20, batch_size: int = 2048
) -> dict[str, float]:
    """Recall@k (the next item in the top ``k`` of all items) and MRR@k of ``model`` fed only
    the sketches; ties count against the target."""
    model.eval()
    hits = reciprocal = 0.0
    for start in range(0, len(events.targets), batch_size):
        inputs = torch.from_numpy(events.inputs[start : start + batch_size])
        targets = torch.from_numpy(events.targets[start : start + batch_size])
        scores = model.score_all(inputs)
        target_scores = scores.gather(1, targets[:, None])
        rank = (scores >= target_scores).sum(dim=1, dtype=torch.int32)  # 1 = best; ties pessimistic
        top = rank <= k
        hits += float(top.sum())
        reciprocal += float((top / rank.to(torch.float64)).sum())
    count = max(1, len(events.targets))
    return {f"recall@{k}": hits / count, f"mrr@{k}": reciprocal / count, "events": float(count)}


def streams_as_interactions(streams: UserStreams) -> Interactions:
    """The streams as :class:`Interactions` (users = stream indices, timestamps = positions),
    sharing the item vocabulary, so a next-item model trained on them speaks the same IDs."""
    lengths = streams.lengths
    users = np.repeat(np.arange(len(streams)), lengths)
    positions = np.arange(streams.n_events) - np.repeat(streams.offsets[:-1], lengths)
    return Interactions(
        users=users,
        items=streams.items.copy(),
        user_vocab=IdVocabulary(np.arange(len(streams))),
        item_vocab=streams.item_vocab,
        timestamps=positions.astype(np.int64),
        name=streams.name,
    )
