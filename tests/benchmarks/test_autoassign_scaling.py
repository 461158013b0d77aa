"""The AutoAssign+ cost benchmark (`python -m benchmarks.perf.autoassign_scaling`): its split of
time into base model and agent, and its --quick mode end to end."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from benchmarks.perf import autoassign_scaling as bench

from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.evaluate.prequential import StreamChunk
from leanrec.train.stream import StreamTrainer


class SleepyAssigner:
    """Moves nobody, but spins 20 ms of CPU per chunk: all of it must be agent time
    (:attr:`spun`: the CPU seconds it really spun, a little over 20 ms a chunk)."""

    needs_losses = True

    def __init__(self) -> None:
        self.chunks = 0
        self.spun = 0.0

    def extend(self, sizes: Mapping[str, int]) -> None:
        pass

    def assign(self, batch: StreamChunk, losses: torch.Tensor | None) -> None:
        assert losses is not None and len(losses) == len(batch)
        self.chunks += 1
        self.spun += spin(0.02)

    def nbytes(self) -> int:
        return 0

    def agent_bytes(self) -> int:
        return 0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def spin(seconds: float) -> float:
    """Spins ``seconds`` of this process's CPU time; returns the CPU seconds really spun."""
    began = time.process_time()
    while time.process_time() - began < seconds:
        pass
    return time.process_time() - began


def test_the_assigners_time_is_agent_time_and_the_models_is_base_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the base model's predict also spins 30 ms a chunk: were any of predict counted as the
    # agent's, the agent's excess over its own spins would be 90 ms or more; the losses per
    # event and the timers' own cost are a few ms. The margins are tens of ms, not a share of a
    # small base time, so a loaded machine does not flip the test.
    model_spun = []
    plain_predict = StreamTrainer.predict

    def slow_predict(self: StreamTrainer, batch: StreamChunk) -> Any:
        model_spun.append(spin(0.03))
        return plain_predict(self, batch)

    monkeypatch.setattr(StreamTrainer, "predict", slow_predict)
    stream = make_synthetic_stream(3000, n_users=300, n_items=200, seed=0)
    trainer = bench.build_trainer("all_unique", stream)
    trainer.assigner = SleepyAssigner()
    bench.run_stream(stream, stream.plan(size=1000, warmup_fraction=0.0), trainer)
    assigner = trainer.assigner
    assert assigner.chunks == 3 and assigner.spun >= 0.06 and len(model_spun) == 3
    assert assigner.spun <= trainer.agent_seconds
    assert trainer.agent_seconds - assigner.spun < 0.03
    assert trainer.base_seconds >= sum(model_spun)
    assert trainer.total_seconds == pytest.approx(trainer.base_seconds + trainer.agent_seconds)


def test_quick_mode_writes_the_split_the_scaling_rows_and_the_plot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("benchmarks.common.RESULTS_DIR", tmp_path / "results")
    work = ["--work-dir", str(tmp_path / "work")]
    runs = ["--scale-methods", "all_unique_dense,all_unique,autoassign"]
    bench.main(["--quick", *runs, *work, "--tag", "test"])
    results = json.loads((tmp_path / "results" / "autoassign_scaling--test.json").read_text())
    assert (tmp_path / "results" / "autoassign_scaling--test.png").is_file()
    assert results["cost_methods"] == ",".join(bench.METHOD_KNOBS)
    # all-unique has no assigner: (almost) none of its time is the agent's
    assert results["cost_all_unique_agent_over_base"] < 0.1
    for method in bench.AGENTS:
        agent = results[f"cost_{method}_agent_us_per_event"]
        assign = results[f"cost_{method}_part_assigner.assign_us_per_event"]
        inside = sum(
            results[f"cost_{method}_part_agent.{part}_us_per_event"]
            for part in ("observe", "update", "decide")
        )
        assert 0 < inside <= assign <= agent  # nested timers
        assert results[f"cost_{method}_goal_met"] == (
            results[f"cost_{method}_agent_over_base"] <= 1
        )
        assert 0.5 < results[f"cost_{method}_auc"] <= 1
    assert results["scale_methods"] == "all_unique_dense,all_unique,autoassign"
    # a checkpoint ends the first chunk at or after its mark (the warm-up is 500 events); the
    # dense run stops at the first chunk end at or after 4,000 events
    for run, marks in (("all_unique_dense", (1500, 2500, 3500, 4500)),
                       ("all_unique", (5500, 10000)), ("autoassign", (5500, 10000))):  # fmt: skip
        assert results[f"scale_{run}_done"] is True
        assert results[f"scale_{run}_checkpoints"] == ",".join(map(str, marks))
        assert results[f"scale_{run}_table_gradients"] == ("dense" if "dense" in run else "sparse")
        ids = [results[f"scale_{run}_{n}_distinct_ids"] for n in marks]
        assert min(ids) > 0 and ids == sorted(ids)
    # all-unique holds a 16-wide row and a bias per ID it has met (float32), at least
    ids = results["scale_all_unique_10000_distinct_ids"]
    assert results["scale_all_unique_10000_embedding_bytes"] >= ids * 17 * 4
    # what the work dir holds is not measured again: the records are read back as they were
    written = (tmp_path / "work" / "scale-all_unique.json").stat().st_mtime_ns
    bench.main(["--quick", "--scale-methods", "all_unique", *work, "--tag", "again"])
    assert (tmp_path / "work" / "scale-all_unique.json").stat().st_mtime_ns == written
    again = json.loads((tmp_path / "results" / "autoassign_scaling--again.json").read_text())
    for key in ("scale_all_unique_10000_embedding_bytes", "cost_autoassign_agent_us_per_event"):
        assert again[key] == results[key]
