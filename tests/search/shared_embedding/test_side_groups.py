"""Level 1 keyed by side features: the groups read from the MovieLens side files by hand, the
groups carried by the events, and a run in which level 1's group vectors are the running mean
of their members' rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.data.events import EventStream
from leanrec.embeddings import HierarchicalSharedEmbedding
from leanrec.search.shared_embedding import AutoAssignConfig
from leanrec.search.shared_embedding import experiment as experiment_module
from leanrec.search.shared_embedding.config import AGENT_PRESETS
from leanrec.search.shared_embedding.side import (
    COLUMN,
    SideGroups,
    load_side_groups,
    with_side_groups,
)
from leanrec.search.shared_embedding.trainer import AssigningTrainer
from tests.search.shared_embedding.test_contract import tiny_experiment, tiny_stream


def test_groups_from_the_movielens_side_files_by_hand(shared_data: Path) -> None:
    # ML-100K u.user: "1|24|M|..." -> age bucket 18-24 (index 1) x M (1) -> 1*2 + 1 = 3;
    # "2|53|F|..." -> bucket 50-55 (index 5) x F (0) -> 10. u.item 1 (Toy Story) flags
    # Animation, Children's, Comedy: the first set flag is Animation, index 3 of the 19
    # (unknown, Action, Adventure, Animation, ...)
    small = load_side_groups("ml-100k", str(shared_data))
    assert small is not None and small.sizes == {"user": 14, "item": 19}
    assert (small.of_raw["user"][1], small.of_raw["user"][2], small.of_raw["item"][1]) == (3, 10, 3)
    # ML-1M users.dat: "1::F::1::..." -> bucket under 18 (0) x F -> 0; "2::M::56::..." -> 56+
    # (index 6) x M -> 13; movies.dat 1 "Animation|Children's|Comedy": the genre columns in
    # name order are Action, Adventure, Animation, ... -> 2, of 18 genres
    large = load_side_groups("ml-1m", str(shared_data))
    assert large is not None and large.sizes == {"user": 14, "item": 18}
    assert (large.of_raw["user"][1], large.of_raw["user"][2], large.of_raw["item"][1]) == (0, 13, 2)
    assert load_side_groups("criteo-8k", str(shared_data)) is None


def test_the_events_carry_their_ids_groups() -> None:
    stream = tiny_stream()
    raw = stream.ids["user"].raw()
    first, other = raw[0], raw[raw != raw[0]][0]
    side = SideGroups(of_raw={"user": {int(first): 1, int(other): 0}}, sizes={"user": 2})
    with_side_groups(stream, side)
    column = stream.values[COLUMN.format(field="user")]
    expected = np.where(raw == first, 1.0, np.where(raw == other, 0.0, -1.0))
    np.testing.assert_array_equal(column, expected.astype(np.float32))
    assert np.array_equal(stream[5:9].values["side_group.user"], column[5:9])  # sliced too


def grouped_trainer(monkeypatch: pytest.MonkeyPatch, **preset: object) -> AssigningTrainer:
    """The leanrec preset's trainer on the tiny stream with the users' level 1 in 3 groups
    (``preset``: fields set over the preset)."""
    from leanrec.search.shared_embedding.baselines import METHODS

    side = SideGroups(of_raw={"user": {}}, sizes={"user": 3})
    monkeypatch.setattr(experiment_module, "side_groups", lambda experiment: side)
    for name, value in preset.items():
        monkeypatch.setitem(AGENT_PRESETS["leanrec"], name, value)
    agent = AutoAssignConfig(batch_size=64, replay_size=2000)
    experiment = tiny_experiment(Path("unused"), 0, agent=agent)
    method = METHODS.resolve(["autoassign_leanrec"])[0]
    return experiment_module._build(experiment, {"user": 150, "item": 100}, method, 1.0, 0, "bce")


def grouped_stream() -> EventStream:
    """The tiny stream whose events carry their user's group, ``code % 3``."""
    stream = tiny_stream()
    codes = stream.ids["user"].codes
    stream.values[COLUMN.format(field="user")] = (codes % 3).astype(np.float32)
    return stream


def test_group_vectors_are_their_members_mean_row_in_a_run(
    monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    # users in 3 groups (code % 3), items ungrouped; group_rate 1 and no minimum count: after
    # each learnt chunk a group's vector is the mean row of the chunk's users of that group
    from leanrec.train.stream import run_stream

    stream = grouped_stream()
    codes = stream.ids["user"].codes
    trainer = grouped_trainer(monkeypatch, side_groups=("user",), group_update="mean",
                              group_rate=1.0, group_min_count=0)  # fmt: skip
    assert trainer.assigner is not None and trainer.assigner.group_update == "mean"  # type: ignore[attr-defined]
    users, items = trainer.model.id_tables()["user"], trainer.model.id_tables()["item"]
    assert isinstance(users, HierarchicalSharedEmbedding) and users.groups == 3
    assert isinstance(items, HierarchicalSharedEmbedding) and items.groups == 0
    plan = stream.plan(size=200, warmup_fraction=0.2)
    run_stream(stream, plan, trainer)
    last = torch.from_numpy(np.unique(codes[plan[-1].slice]))
    rows = users.lookup(last).detach()
    for group in range(3):
        members = rows[last % 3 == group]
        torch.testing.assert_close(users.group_vectors[group].detach(), members.mean(dim=0))
    # every ID of a chunk ascends before the chunk is learnt: no group is held at the end
    assert len(users.grouped_ids) == 0
    # a user met only now reads its group's vector once its group is given
    new = users.num_embeddings
    users.extend_ids(new + 1)
    assert torch.equal(users.lookup(torch.tensor([new])), users.shared[:1].detach())
    users.set_groups(torch.tensor([new]), torch.tensor([2]))
    assert torch.equal(users.lookup(torch.tensor([new]))[0], users.group_vectors[2].detach())


def test_a_run_with_groups_resumes_to_the_same_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, one_torch_thread: None
) -> None:
    # killed after chunk 7 of 12 (a checkpoint every 3 chunks: it restarts after chunk 6) and
    # resumed: the group vectors, the held groups and the members counted travel in the
    # checkpoint, so the record and the vectors are those of one uninterrupted run
    from leanrec.train.stream import run_stream

    preset = {"side_groups": ("user",), "group_update": "mean", "group_rate": 0.5}
    stream = grouped_stream()
    plan = stream.plan(size=200, warmup_fraction=0.2)
    whole = grouped_trainer(monkeypatch, **preset)
    expected = run_stream(stream, plan, whole).summary()["total"]
    run_stream(stream, plan, grouped_trainer(monkeypatch, **preset), checkpoint_dir=tmp_path,
               checkpoint_every=3, stop_chunk=7)  # fmt: skip
    resumed = grouped_trainer(monkeypatch, **preset)
    total = run_stream(stream, plan, resumed, checkpoint_dir=tmp_path, checkpoint_every=3)
    assert total.summary()["total"] == expected
    users, again = whole.model.id_tables()["user"], resumed.model.id_tables()["user"]
    assert isinstance(users, HierarchicalSharedEmbedding)
    assert isinstance(again, HierarchicalSharedEmbedding)
    assert torch.equal(users.group_vectors, again.group_vectors)
