"""CIESS: budgets, quality signals, the policy's choices, resume after SIGKILL, the experiment."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from leanrec.api.embedding_size import search_embedding_sizes
from leanrec.models.compress import load_compressed
from leanrec.search.embedding_size import (
    METHODS,
    BudgetError,
    CIESSConfig,
    CIESSPolicy,
    EmbeddingSizeExperiment,
    SizeCandidate,
    budget_values,
    fit_to_budget,
    run_experiment,
    sparsity,
)
from leanrec.search.embedding_size.baselines import (
    magnitude_prune,
    nonzero_sparsity,
    popularity_sizes,
    uniform_sizes,
)
from leanrec.search.embedding_size.environment import (
    SizeSearchEnvironment,
    item_eval,
    item_hit_eval,
    quality_ratio,
    user_eval,
)
from leanrec.search.embedding_size.policy import (
    SizeTransitions,
    make_states,
    normalized_popularity,
    reward_lambda_at,
)
from leanrec.search.embedding_size.retrain import fit_candidate, select_candidates
from leanrec.train.checkpoint import load_checkpoint
from tests.search.embedding_size.search_job import (
    final_sizes,
    make_search,
    tiny_config,
    tiny_split_and_model,
)

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------- budgets
def test_sparsity_and_budget_by_hand() -> None:
    assert sparsity(np.array([128, 64, 0, 64]), 128) == pytest.approx(0.5)
    # c = 0.8 of 10 entities x 128: 256 values
    assert budget_values(10, 128, 0.8) == 256
    assert budget_values(1000, 128, 0.9) == 12800


def test_unreachable_budget_is_a_clear_error() -> None:
    with pytest.raises(BudgetError, match=r"highest reachable is 0\.9922"):
        budget_values(100, 128, 0.995)
    with pytest.raises(BudgetError, match=r"\[0, 1\)"):
        budget_values(100, 128, 1.0)


def test_uniform_sizes_are_the_paper_su_sizes() -> None:
    users, items = uniform_sizes(30, 20, 128, 0.8)
    assert set(users.tolist()) == {25} and set(items.tolist()) == {25}  # floor(0.2 * 128)
    users, _ = uniform_sizes(30, 20, 128, 0.95)
    assert set(users.tolist()) == {6}


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 0.95, 0.99])
def test_fit_to_budget_never_exceeds_and_keeps_the_order(target: float) -> None:
    rng = np.random.default_rng(int(target * 100))
    weights = rng.pareto(1.2, 5000) + 0.01
    sizes = fit_to_budget(weights, 128, target)
    assert sparsity(sizes, 128) >= target
    assert sizes.min() >= 1 and sizes.max() <= 128
    # a larger weight never gets a smaller size
    order = np.argsort(weights)
    assert (np.diff(sizes[order]) >= 0).all()
    # and the budget is used: one more unit of scale would overshoot, so little is left
    assert sizes.sum() >= budget_values(5000, 128, target) * 0.9


def test_fit_to_budget_grows_an_undershooting_policy() -> None:
    sizes = fit_to_budget(np.array([1.0, 2.0, 4.0, 1.0]), 128, 0.5)
    assert sizes.tolist() == [32, 64, 128, 32]
    assert sparsity(sizes, 128) == pytest.approx(0.5)


def test_popularity_sizes_follow_counts() -> None:
    users, items = popularity_sizes(np.array([1, 10, 100]), np.array([5, 50]), 64, 0.7)
    assert users[0] < users[1] < users[2] and items[0] < items[1]
    assert sparsity(np.concatenate([users, items]), 64) >= 0.7


# ---------------------------------------------------------------------------- quality
def test_user_eval_is_the_mean_of_recall_and_ndcg_over_k() -> None:
    per_user = {
        "recall@5": np.array([0.2, 0.0]),
        "ndcg@5": np.array([0.4, 0.0]),
        "recall@10": np.array([0.6, 0.5]),
        "ndcg@10": np.array([0.8, 0.1]),
    }
    assert user_eval(per_user, (5, 10)).tolist() == pytest.approx([0.5, 0.15])


def test_item_eval_averages_its_training_users_skipping_unmeasured() -> None:
    # item 0: users 0, 1; item 1: users 1, 2 (user 2 unmeasured); item 2: user 2 only
    item_users = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=float))
    scores = np.array([0.2, 0.6, np.nan])
    out = item_eval(scores, item_users)
    assert out[0] == pytest.approx(0.4) and out[1] == pytest.approx(0.6)
    assert np.isnan(out[2])


def test_item_hit_eval_by_hand() -> None:
    # users 0 and 1 ranked (top-2 lists); validation pairs: (0, 2), (1, 2), (1, 0), (0, 0)
    top = np.array([[2, 1], [0, 2]])
    out = item_hit_eval(
        top,
        eval_users=np.array([0, 1]),
        valid_users=np.array([0, 1, 1, 0, 0]),  # (0, 2) twice: counted once
        valid_items=np.array([2, 2, 0, 0, 2]),
        n_items=4,
        ks=(1, 2),
    )
    # item 2: hit@1 for user 0 only, hit@2 for both: (1 + 2) / (2 * 2); item 0: hit@1 and
    # hit@2 for user 1, never for user 0: (1 + 1) / (2 * 2); items 1, 3: no validation pair
    assert out[:3:2].tolist() == pytest.approx([0.5, 0.75])
    assert np.isnan(out[1]) and np.isnan(out[3])


def test_hits_item_quality_depends_on_the_items_own_size() -> None:
    split, model = tiny_split_and_model(16)
    # a model that ranks well: the train matrix's SVD as embeddings
    dense = np.zeros((split.train.n_users, split.train.n_items))
    dense[split.train.users, split.train.items] = 1.0
    u, s, vt = np.linalg.svd(dense, full_matrices=False)
    state = model.state_dict()
    state["item_embedding.weight"] = torch.tensor(vt[:16].T * np.sqrt(s[:16]), dtype=torch.float32)
    state["user_embedding.weight"] = torch.tensor(u[:, :16] * np.sqrt(s[:16]), dtype=torch.float32)
    quality = {}
    for kind in ("users", "hits"):
        env = SizeSearchEnvironment(
            model, split, (5, 10), 0, 512, 0.01, 1, 1e-4, state, seed=0, item_quality=kind
        )
        env.set_reference()
        item_sizes = np.full(split.train.n_items, 16)
        item_sizes[:40] = 1  # starve half of the items, users untouched
        quality[kind] = env.step(np.full(split.train.n_users, 16), item_sizes)["q_items"]
    starved, kept = quality["hits"][:40], quality["hits"][40:]
    # Eq. 9 barely sees an item's own size; the item's own hits do
    assert starved.mean() < kept.mean() - 0.2
    gap_users = quality["users"][40:].mean() - quality["users"][:40].mean()
    assert abs(gap_users) < 0.1


def test_item_quality_choice_is_checked() -> None:
    with pytest.raises(ValueError, match="item_quality"):
        SizeSearchEnvironment(
            torch.nn.Linear(1, 1),  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            (5,),
            0,
            1,
            0.01,
            1,
            0.0,
            {},
            seed=0,
            item_quality="items",
        )


def test_quality_ratio_is_clipped_and_defined_everywhere() -> None:
    current = np.array([0.1, 0.5, 0.3, np.nan, 0.2])
    reference = np.array([0.2, 0.4, 0.0, 0.3, np.nan])
    assert quality_ratio(current, reference).tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0])


def test_states_follow_eq6() -> None:
    pop = normalized_popularity(np.array([2, 4, 10]))
    assert pop.tolist() == pytest.approx([0.0, 0.25, 1.0])
    states = make_states(pop, np.array([1, 128, 64]), np.array([0.5, 1.0, 0.9]), 128)
    assert states[:, 1].tolist() == pytest.approx([0.0, 1.0, 63 / 127])
    assert states.dtype == np.float32


# ---------------------------------------------------------------------------- policy
@pytest.mark.parametrize("walk", [True, False])
def test_policy_sizes_are_integers_in_range(walk: bool) -> None:
    torch.manual_seed(0)
    policy = CIESSPolicy(CIESSConfig(random_walk=walk))
    rng = np.random.default_rng(0)
    states = make_states(np.linspace(0, 1, 500), np.full(500, 128), np.ones(500), 128)
    sizes = policy.choose("user", states, rng)
    assert sizes.dtype == np.int64 and sizes.min() >= 1 and sizes.max() <= 128
    greedy = policy.choose("user", states, rng, explore=False)
    mean_action = policy.agents["user"].act(torch.from_numpy(states))[:, 0].numpy()
    assert np.array_equal(greedy, np.clip(np.rint(mean_action), 1, 128))


def test_random_walk_picks_the_critics_best_candidate() -> None:
    torch.manual_seed(0)
    policy = CIESSPolicy(CIESSConfig(noise_sigma=0.0))
    states = make_states(np.zeros(200), np.full(200, 128), np.ones(200), 128)
    rng = np.random.default_rng(1)
    chosen = policy.choose("item", states, rng)
    start = np.clip(
        np.rint(policy.agents["item"].act(torch.from_numpy(states))[:, 0].numpy()), 1, 128
    )
    # reachable within 5 steps of at most 5
    assert (np.abs(chosen - start) <= 25).all()
    q_chosen = policy.agents["item"].q_value(
        torch.from_numpy(states), torch.from_numpy(chosen[:, None].astype(np.float32))
    )
    q_start = policy.agents["item"].q_value(
        torch.from_numpy(states), torch.from_numpy(start[:, None].astype(np.float32))
    )
    assert (q_chosen >= q_start - 1e-6).all()


def test_reward_lambda_schedule_by_hand() -> None:
    paper = CIESSConfig(episodes=3, reward_lambda=0.4)
    assert [reward_lambda_at(paper, e) for e in (1, 2, 3)] == [0.4, 0.4, 0.4]
    sweep = CIESSConfig(episodes=3, reward_lambda=0.4, reward_lambda_final=1.6)
    # geometric: 0.4, 0.4 * 4 ** (1/2), 0.4 * 4
    assert np.allclose([reward_lambda_at(sweep, e) for e in (1, 2, 3)], [0.4, 0.8, 1.6])
    five = CIESSConfig(episodes=5, reward_lambda=1.0, reward_lambda_final=16.0)
    assert np.allclose([reward_lambda_at(five, e) for e in range(1, 6)], [1, 2, 4, 8, 16])


@pytest.mark.parametrize(
    ("start", "final", "problem"),
    [
        (0.4, 0.0, "reward_lambda_final must be > 0"),
        (0.0, 1.0, "which must then be > 0"),
        (0.4, float("nan"), "reward_lambda_final must be a finite number"),
        (-1.0, None, "reward_lambda must be a finite number"),
    ],
)
def test_unusable_reward_lambdas_are_clear_errors(
    start: float, final: float | None, problem: str
) -> None:
    config = dataclasses.replace(tiny_config(), reward_lambda=start, reward_lambda_final=final)
    with pytest.raises(ValueError, match=problem):
        make_search(None, config)


def test_relabelled_rewards_follow_eq10_with_the_new_lambda() -> None:
    policy = CIESSPolicy(CIESSConfig(max_dim=8))
    states = make_states(np.zeros(3), np.full(3, 8), np.ones(3), 8)
    sizes = np.array([8, 4, 2])
    quality = np.array([1.0, 0.5, 0.25])
    next_states = make_states(np.zeros(3), sizes, quality, 8)
    stale = quality - 0.4 * (sizes / 8) ** 2
    policy.remember("user", SizeTransitions(states, sizes, stale, next_states, False))
    policy.set_reward_lambda(2.0)
    # q - 2 (d/8)^2: 1 - 2, 0.5 - 0.5, 0.25 - 0.125
    assert np.allclose(policy.buffers["user"].rewards[:3], [-1.0, 0.0, 0.125])
    assert len(policy.buffers["item"]) == 0


def test_a_scheduled_search_uses_each_episodes_lambda_and_resumes(tmp_path: Path) -> None:
    config = dataclasses.replace(tiny_config(), episodes=3, iterations=2, reward_lambda_final=3.6)
    uninterrupted = make_search(None, config)
    uninterrupted.run()
    lambdas = [record["reward_lambda"] for record in uninterrupted.history]
    assert np.allclose(lambdas, [0.4, 0.4, 1.2, 1.2, 3.6, 3.6])
    # every stored reward is Eq. 10 at the last episode's λ
    buffer = uninterrupted.policy.buffers["item"]  # type: ignore[attr-defined]
    n = len(buffer)
    expected = buffer.next_states[:n, 2] - 3.6 * (buffer.actions[:n, 0] / 16) ** 2
    assert n == 6 * 80 and np.allclose(buffer.rewards[:n], expected, atol=1e-6)

    # stop after the first iteration of episode 2 (its λ already applied), resume, same masks
    checkpoint = tmp_path / "search.pt"
    kept = tmp_path / "after-3.pt"

    def keep_third(record: dict[str, float]) -> None:
        if len(first.history) == 3:
            kept.write_bytes(checkpoint.read_bytes())

    first = make_search(checkpoint, config)
    first.run(on_iteration=keep_third)
    kept.replace(checkpoint)
    resumed = make_search(checkpoint, config)
    resumed.run(resume=True)
    assert np.array_equal(final_sizes(resumed), final_sizes(uninterrupted))
    assert [r["reward_lambda"] for r in resumed.history] == lambdas


def test_resume_refuses_a_checkpoint_of_another_search(tmp_path: Path) -> None:
    checkpoint = tmp_path / "search.pt"
    config = dataclasses.replace(tiny_config(), episodes=1, iterations=1)
    make_search(checkpoint, config).run()
    other = dataclasses.replace(config, reward_lambda_final=2.0, noise="ou")
    with pytest.raises(ValueError, match=r"noise: 'gaussian' -> 'ou'.*reward_lambda_final"):
        make_search(checkpoint, other).run(resume=True)
    # settings of the retraining may differ: the search itself is the same
    same_search = dataclasses.replace(config, top_masks=3, target_sparsities=(0.5,))
    make_search(checkpoint, same_search).run(resume=True)


def test_selection_keeps_top_quality_masks_meeting_the_target() -> None:
    def cand(q: float, s: float) -> SizeCandidate:
        return SizeCandidate(1, 1, np.array([4]), np.array([4]), q, s)

    pool = [cand(0.9, 0.7), cand(0.8, 0.85), cand(0.7, 0.9), cand(0.95, 0.5), cand(0.6, 0.95)]
    chosen = select_candidates(pool, 0.8, top=2)
    assert [(c.mean_quality, c.sparsity) for c in chosen] == [(0.8, 0.85), (0.7, 0.9)]
    # only one meets 0.92: the sparsest of the rest fills in
    chosen = select_candidates(pool, 0.92, top=2)
    assert [c.sparsity for c in chosen] == [0.95, 0.9]
    users, items = fit_candidate(
        SizeCandidate(1, 1, np.array([100, 50]), np.array([10]), 1, 0), 128, 0.8
    )
    assert sparsity(np.concatenate([users, items]), 128) >= 0.8


# ---------------------------------------------------------------------------- MagPrune
def test_magnitude_prune_keeps_the_largest_values_within_budget() -> None:
    from leanrec.data.interactions import Interactions, Split
    from leanrec.search.embedding_size.retrain import build_masked_model

    rng = np.random.default_rng(0)
    data = Interactions.from_raw(rng.integers(0, 30, 300), rng.integers(0, 20, 300))
    split = Split(data, data.subset(np.arange(0)), data.subset(np.arange(0)))
    model = build_masked_model(split, "neumf", {}, 16, seed=0)
    pruned = magnitude_prune(model, 0.9)
    assert nonzero_sparsity(pruned) >= 0.9
    kept = torch.cat([t.all().reshape(-1) for t in pruned.embedding_tables().values()])
    original = torch.cat([t.all().reshape(-1) for t in model.embedding_tables().values()])
    smallest_kept = kept[kept != 0].abs().min()
    largest_dropped = original[kept == 0].abs().max()
    assert smallest_kept >= largest_dropped


# ---------------------------------------------------------------------------- resume
def test_resume_gives_the_same_masks_as_an_uninterrupted_run(tmp_path: Path) -> None:
    uninterrupted = make_search(None)
    uninterrupted.run()
    expected = final_sizes(uninterrupted)
    assert len(expected) == 8

    checkpoint = tmp_path / "search.pt"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    job = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.search.embedding_size.search_job",
            str(checkpoint),
            str(tmp_path / "unused.npz"),
            "0.5",
        ],
        cwd=REPO,
        env=env,
    )
    deadline = time.time() + 120
    done_steps = 0
    while time.time() < deadline and job.poll() is None:
        if checkpoint.exists():
            done_steps = int(load_checkpoint(checkpoint)["next_step"])
            if done_steps >= 3:
                break
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert 3 <= done_steps < 8, "the job must be killed mid-search"

    resumed = make_search(checkpoint)
    resumed.run(resume=True)
    assert np.array_equal(final_sizes(resumed), expected)
    assert len(resumed.history) == 8


# ---------------------------------------------------------------------------- experiment
def test_experiment_meets_every_budget_and_packs_real_bytes(tmp_path: Path) -> None:
    import dataclasses

    from leanrec.train.bpr import TrainerConfig

    small = TrainerConfig(
        max_epochs=3,
        batch_size=2048,
        learning_rate=0.01,
        eval_every=1,
        valid_metric="recall@20",
        ks=[5, 10, 20],
        progress=False,
    )
    search = dataclasses.replace(
        tiny_config(), pretrain=small, retrain=small, target_sparsities=(0.8, 0.9), top_masks=1
    )
    exp = EmbeddingSizeExperiment(
        dataset="synthetic", model="lightgcn", out_dir=str(tmp_path / "exp"), search=search
    )
    result = search_embedding_sizes(exp, log=lambda message: None)
    rows = result.rows
    methods = {r["method"] for r in rows}
    assert methods == {"full", "ciess", "su", "sr", "popularity", "magprune", "pep", "esapn"}
    assert [r["method"] for r in rows if r["target_sparsity"] == 0.8] == list(METHODS.names())
    for row in rows:
        assert row["sparsity"] >= row["target_sparsity"] - 1e-12
        assert 0.0 <= row["test_recall@20"] <= 1.0
    ciess90 = next(r for r in rows if r["method"] == "ciess" and r["target_sparsity"] == 0.9)
    assert ciess90["packed_bytes"] < 0.2 * ciess90["dense_bytes"]
    out = tmp_path / "exp"
    for name in (
        "results.json",
        "table.md",
        "search_curve.png",
        "quality_vs_sparsity.png",
        "size_vs_popularity.png",
        "ciess_c90.safetensors",
    ):
        assert (out / name).exists(), name
    # the artefacts are the full-size model and CIESS's models, and save() copies them
    assert set(result.artifacts) == {"warm_start"} | {
        f"ciess_c{c}{suffix}" for c in (80, 90) for suffix in ("", "_packed", "_sizes")
    }
    packed, _, _ = load_compressed(result.artifacts["ciess_c90_packed"])
    assert packed.embedding_bytes() == ciess90["packed_bytes"]
    saved = result.save(tmp_path / "saved")
    for name in ("rows.json", "table.md", "ciess_c90.safetensors", "warm_start.pt"):
        assert (saved / name).read_bytes() == (out / name).read_bytes(), name
    # a second run finds everything done and changes nothing
    before = json.loads((out / "rows.json").read_text())
    run_experiment(exp, log=lambda message: None)
    assert json.loads((out / "rows.json").read_text()) == before


def test_esapn_sizes_climb_the_ladder_and_resume(tmp_path: Path) -> None:
    from leanrec.search.embedding_size.baselines import ESAPN_SIZES, ESAPNPolicy

    config = tiny_config()
    search = make_search(tmp_path / "esapn.pt", config)
    search.policy = ESAPNPolicy(config.max_dim)
    result = search.run()
    ladder = {d for d in ESAPN_SIZES if d <= config.max_dim}
    for candidate in result.candidates:
        assert set(candidate.all_sizes().tolist()) <= ladder
    # within an episode sizes never shrink
    first_episode = [c.all_sizes() for c in result.candidates if c.episode == 1]
    for before, after in itertools.pairwise(first_episode):
        assert (after >= before).all()
    state = load_checkpoint(tmp_path / "esapn.pt")
    assert int(state["next_step"]) == config.episodes * config.iterations


def test_reinforce_prefers_the_rewarded_action() -> None:
    from leanrec.rl.reinforce import ReinforceAgent

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    agent = ReinforceAgent(1, 2, learning_rate=0.05)
    states = np.ones((256, 1), dtype=np.float32)
    for _ in range(40):
        actions = agent.act(states, rng)
        agent.record(states, actions, (actions == 1).astype(np.float32))
        agent.finish_episode()
    assert agent.act(states, rng, explore=False).tolist() == [1] * 256


def test_per_role_projection_meets_c_in_each_role_and_keeps_the_order() -> None:
    from leanrec.search.embedding_size.budget import sparsity
    from leanrec.search.embedding_size.policy import SizeCandidate

    rng = np.random.default_rng(0)
    users = rng.integers(20, 120, 50)
    items = rng.integers(1, 10, 30)  # the policy starved the items
    candidate = SizeCandidate(0, 0, users, items, 0.9, 0.5)
    joint_u, joint_i = fit_candidate(candidate, 128, 0.8)
    role_u, role_i = fit_candidate(candidate, 128, 0.8, per_role=True)
    for u, i in ((joint_u, joint_i), (role_u, role_i)):
        assert sparsity(np.concatenate([u, i]), 128) >= 0.8
    assert sparsity(role_u, 128) >= 0.8 and sparsity(role_i, 128) >= 0.8
    assert role_i.mean() > joint_i.mean()  # items get their share of the budget back
    assert sparsity(role_i, 128) < 0.8 + 0.02  # ... and use it
    for sizes, source in ((role_u, users), (role_i, items)):
        order = np.argsort(source, kind="stable")
        assert np.all(np.diff(sizes[order]) >= 0)  # larger policy size -> no smaller size


def _su_experiment(out_dir: Path, epochs: int) -> EmbeddingSizeExperiment:
    """SU only on synthetic data with MF: the smallest run that pretrains a warm start."""
    from leanrec.train.bpr import TrainerConfig

    trainer = TrainerConfig(
        max_epochs=epochs,
        batch_size=2048,
        learning_rate=0.01,
        eval_every=1,
        ks=[20],
        progress=False,
    )
    search = dataclasses.replace(
        tiny_config(), pretrain=trainer, retrain=trainer, target_sparsities=(0.8,)
    )
    return EmbeddingSizeExperiment(
        dataset="synthetic", model="mf", out_dir=str(out_dir), methods=("su",), search=search
    )


def test_pretraining_continues_from_an_earlier_warm_start(tmp_path: Path) -> None:
    first = _su_experiment(tmp_path / "a", epochs=2)
    search, trainer = first.search, first.search.pretrain
    run_experiment(first, log=lambda message: None)
    earlier = load_checkpoint(tmp_path / "a" / "warm_start.pt")["state_dict"]

    # a near-zero step: the continued warm start is the earlier one, not a fresh initialisation
    still = dataclasses.replace(search, pretrain=dataclasses.replace(trainer, learning_rate=1e-9))
    logs: list[str] = []
    second = dataclasses.replace(
        first,
        out_dir=str(tmp_path / "b"),
        search=still,
        warm_start_init=str(tmp_path / "a" / "warm_start.pt"),
    )
    run_experiment(second, log=logs.append)
    continued = load_checkpoint(tmp_path / "b" / "warm_start.pt")["state_dict"]
    assert any("from " + str(tmp_path / "a") in line for line in logs)
    for name, tensor in earlier.items():
        assert torch.allclose(continued[name], tensor, atol=1e-6), name
    fresh = dataclasses.replace(first, out_dir=str(tmp_path / "c"), search=still)
    run_experiment(fresh, log=lambda message: None)
    fresh_state = load_checkpoint(tmp_path / "c" / "warm_start.pt")["state_dict"]
    assert any(
        not torch.allclose(fresh_state[n], t, atol=1e-3)
        for n, t in earlier.items()
        if t.is_floating_point()
    )

    # a checkpoint of another width is refused, naming what differs
    wider = dataclasses.replace(
        second,
        out_dir=str(tmp_path / "d"),
        search=dataclasses.replace(still, max_dim=32),
    )
    with pytest.raises(ValueError, match="embedding_dim 16, this run's d_max 32"):
        run_experiment(wider, log=lambda message: None)
    missing = dataclasses.replace(
        second, out_dir=str(tmp_path / "e"), warm_start_init=str(tmp_path / "none.pt")
    )
    with pytest.raises(FileNotFoundError, match=r"none\.pt"):
        run_experiment(missing, log=lambda message: None)


def test_pruning_baselines_can_start_from_an_ordinary_model(tmp_path: Path) -> None:
    import dataclasses

    from leanrec.models.registry import model_from_checkpoint
    from leanrec.search.embedding_size.retrain import test_metrics
    from leanrec.train.bpr import TrainerConfig

    trainer = TrainerConfig(
        max_epochs=2, batch_size=2048, learning_rate=0.01, eval_every=1, ks=[5, 20], progress=False
    )
    search = dataclasses.replace(
        tiny_config(), pretrain=trainer, retrain=trainer, target_sparsities=(0.8,)
    )
    ordinary = EmbeddingSizeExperiment(
        dataset="synthetic",
        model="mf",
        out_dir=str(tmp_path / "ordinary"),
        methods=("magprune", "pep"),
        search=search,
        pruning_base="ordinary",
    )
    result = run_experiment(ordinary, log=lambda message: None)
    out = tmp_path / "ordinary"
    # only element pruners: the prefix-dropout warm start is never trained
    assert not (out / "warm_start.pt").exists() and (out / "ordinary.pt").exists()
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"full_ordinary", "magprune", "pep"}
    assert rows["magprune"]["base"] == rows["pep"]["base"] == "ordinary"
    assert "| — | full_ordinary |" in (out / "table.md").read_text()

    from leanrec.data.presets import prepare_split

    split, _ = prepare_split("synthetic", "ciess", None, search.seed)
    base = model_from_checkpoint(load_checkpoint(out / "ordinary.pt"))
    pruned = test_metrics(magnitude_prune(base, 0.8), split)
    for metric, value in pruned.items():
        assert rows["magprune"][f"test_{metric}"] == pytest.approx(value), metric

    # the default prunes the prefix-dropout warm start, a different model
    warm = dataclasses.replace(ordinary, out_dir=str(tmp_path / "warm"), pruning_base="warm_start")
    warm_rows = {r["method"]: r for r in run_experiment(warm, log=lambda m: None).rows}
    assert (
        set(warm_rows) == {"full", "magprune", "pep"} and warm_rows["pep"]["base"] == "warm_start"
    )
    ordinary_state = load_checkpoint(out / "ordinary.pt")["state_dict"]
    warm_state = load_checkpoint(tmp_path / "warm" / "warm_start.pt")["state_dict"]
    assert any(
        not torch.allclose(ordinary_state[n], t)
        for n, t in warm_state.items()
        if t.is_floating_point()
    )

    with pytest.raises(ValueError, match="pruning_base 'scratch'"):
        run_experiment(
            dataclasses.replace(ordinary, out_dir=str(tmp_path / "x"), pruning_base="scratch"),
            log=lambda message: None,
        )


def test_baselines_retrained_from_scratch_train_no_warm_start(tmp_path: Path) -> None:
    import dataclasses

    from leanrec.train.bpr import TrainerConfig

    trainer = TrainerConfig(
        max_epochs=2, batch_size=2048, learning_rate=0.01, eval_every=1, ks=[20], progress=False
    )
    search = dataclasses.replace(
        tiny_config(),
        pretrain=trainer,
        retrain=trainer,
        target_sparsities=(0.8,),
        retrain_from_warm_start=False,
    )
    exp = EmbeddingSizeExperiment(
        dataset="synthetic",
        model="mf",
        out_dir=str(tmp_path / "su"),
        methods=("su",),
        search=search,
    )
    rows = run_experiment(exp, log=lambda message: None).rows
    assert [r["method"] for r in rows] == ["su"] and rows[0]["sparsity"] >= 0.8
    assert not (tmp_path / "su" / "warm_start.pt").exists()
    # from the warm start, the same run trains one
    warm = dataclasses.replace(
        exp,
        out_dir=str(tmp_path / "warm"),
        search=dataclasses.replace(search, retrain_from_warm_start=True),
    )
    run_experiment(warm, log=lambda message: None)
    assert (tmp_path / "warm" / "warm_start.pt").exists()


def test_pep_retrains_from_the_trained_values_or_from_their_initialisation(tmp_path: Path) -> None:
    import dataclasses

    from leanrec.data.presets import prepare_split
    from leanrec.models.registry import model_from_checkpoint
    from leanrec.search.embedding_size.baselines import PEPConfig, apply_element_masks
    from leanrec.search.embedding_size.retrain import build_masked_model, test_metrics
    from leanrec.train.bpr import TrainerConfig

    trainer = TrainerConfig(
        max_epochs=2, batch_size=2048, learning_rate=0.01, eval_every=1, ks=[5, 20], progress=False
    )
    # retraining moves nothing
    frozen = dataclasses.replace(trainer, max_epochs=1, learning_rate=1e-12)
    search = dataclasses.replace(
        tiny_config(), pretrain=trainer, retrain=frozen, target_sparsities=(0.8,)
    )
    runs = {}
    for source in ("trained", "init"):
        exp = EmbeddingSizeExperiment(
            dataset="synthetic",
            model="mf",
            out_dir=str(tmp_path / source),
            methods=("pep",),
            search=search,
            pruning_base="ordinary",
            pep=PEPConfig(max_epochs=2, retrain_from=source),
        )
        rows = run_experiment(exp, log=lambda message: None).rows
        runs[source] = next(r for r in rows if r["method"] == "pep")
        assert runs[source]["retrain_from"] == source

    split, _ = prepare_split("synthetic", "ciess", None, search.seed)
    masks = load_checkpoint(tmp_path / "init" / "pep_masks.pt")["0.8"]
    initial = build_masked_model(split, "mf", None, search.max_dim, search.seed)
    trained = model_from_checkpoint(load_checkpoint(tmp_path / "trained" / "ordinary.pt"))
    trained_masks = load_checkpoint(tmp_path / "trained" / "pep_masks.pt")["0.8"]
    expected = {
        "init": test_metrics(apply_element_masks(initial, masks), split),
        "trained": test_metrics(apply_element_masks(trained, trained_masks), split),
    }
    for source, row in runs.items():
        for metric, value in expected[source].items():
            assert row[f"test_{metric}"] == pytest.approx(value, abs=1e-6), (source, metric)
    assert runs["init"]["test_recall@20"] != pytest.approx(runs["trained"]["test_recall@20"])


def test_pretrain_seconds_count_the_legs_before_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from leanrec.search.embedding_size import experiment as experiment_module
    from leanrec.train.bpr import TrainerConfig

    real = experiment_module.pretrain_warm_start

    def resumed(*args, **kwargs):  # type: ignore[no-untyped-def]
        # as after a kill: the trainer's clock already holds 1,000 s of earlier legs
        model, result = real(*args, **kwargs)
        return model, dataclasses.replace(result, seconds=result.seconds + 1000.0)

    monkeypatch.setattr(experiment_module, "pretrain_warm_start", resumed)
    trainer = TrainerConfig(
        max_epochs=1, batch_size=2048, learning_rate=0.01, eval_every=1, ks=[5, 20], progress=False
    )
    search = dataclasses.replace(
        tiny_config(), pretrain=trainer, retrain=trainer, target_sparsities=(0.8,)
    )
    exp = EmbeddingSizeExperiment(
        dataset="synthetic", model="mf", out_dir=str(tmp_path), methods=("su",), search=search
    )
    run_experiment(exp, log=lambda message: None)
    timings = json.loads((tmp_path / "timings.json").read_text())
    assert 1000.0 < timings["pretrain_seconds"] < 1000.0 + 600.0


# ---------------------------------------------------------------------------- screen
def test_validation_screen_ranks_sizes_by_their_untrained_validation_score() -> None:
    from leanrec.evaluate import FullRankingEvaluator
    from leanrec.models.compress import entity_sizes, set_entity_sizes
    from leanrec.search.embedding_size.retrain import build_masked_model, screen_on_validation
    from leanrec.train.bpr import evaluate_model

    split, model = tiny_split_and_model(16)
    n_users, n_items = split.train.n_users, split.train.n_items
    rng = np.random.default_rng(0)
    sized = [
        (rng.integers(1, 17, n_users), rng.integers(1, 17, n_items)),
        (np.full(n_users, 16), np.full(n_items, 16)),
        (rng.integers(1, 17, n_users), rng.integers(1, 17, n_items)),
        (np.full(n_users, 16), np.full(n_items, 16)),  # a tie with index 1
    ]
    before = {name: sizes.copy() for name, sizes in entity_sizes(model).items()}
    kept, scores = screen_on_validation(model, split, sized, keep=3, metric="ndcg@10")

    evaluator = FullRankingEvaluator(split.valid, exclude=[split.train], ks=[10], metrics=["ndcg"])
    by_hand = []
    for users, items in sized:
        probe = build_masked_model(split, "mf", {}, 16, seed=3)
        set_entity_sizes(probe, users, items)
        by_hand.append(evaluate_model(probe, evaluator).mean["ndcg@10"])
    assert scores == pytest.approx(by_hand, abs=1e-6)
    assert len(set(np.round(by_hand, 6))) >= 2  # the sizes do change the score
    assert kept == sorted(range(4), key=lambda i: (-round(by_hand[i], 6), i))[:3]
    for name, sizes in entity_sizes(model).items():  # the screened model is untouched
        assert np.array_equal(sizes, before[name])
    with pytest.raises(ValueError, match="screen metric 'auc'"):
        screen_on_validation(model, split, sized, keep=1, metric="auc")


def screened_experiment(tmp_path: Path) -> tuple[EmbeddingSizeExperiment, dict]:
    """A tiny LightGCN run: 3 candidates screened under both projections, 1 retrained."""
    from leanrec.train.bpr import TrainerConfig

    small = TrainerConfig(
        max_epochs=2,
        batch_size=2048,
        learning_rate=0.01,
        eval_every=1,
        ks=[20],
        progress=False,
        valid_metric="recall@20",
    )
    search = dataclasses.replace(
        tiny_config(),
        pretrain=small,
        retrain=small,
        target_sparsities=(0.8,),
        top_masks=1,
        screen_masks=3,
        budget_projection="both",
    )
    exp = EmbeddingSizeExperiment(
        dataset="synthetic",
        model="lightgcn",
        out_dir=str(tmp_path),
        methods=("ciess",),
        search=search,
    )
    rows = run_experiment(exp, log=lambda message: None).rows
    ciess = next(r for r in rows if r["method"] == "ciess")
    assert ciess["screened"] == 6  # 3 candidates x 2 projections
    assert len(ciess["candidates_retrained"]) == 1
    assert len(ciess["screen_kept_scores"]) == 1
    assert ciess["screen_kept_scores"][0] >= ciess["screen_best_by_quality_score"]
    assert ciess["sparsity"] >= 0.8
    return exp, ciess


def test_experiment_retrains_the_masks_the_screen_keeps(tmp_path: Path) -> None:
    """The retrained mask is the screen's best, derived here from the search's candidates: the
    3 best by q̄ meeting c (Eq. 16), each projected jointly then per role, scored untrained on
    validation Recall@20 as the warm start under those sizes."""
    from leanrec.data.presets import prepare_split
    from leanrec.evaluate import FullRankingEvaluator
    from leanrec.models.compress import set_entity_sizes
    from leanrec.models.registry import model_from_checkpoint
    from leanrec.train.bpr import evaluate_model

    exp, ciess = screened_experiment(tmp_path)
    target, max_dim = 0.8, exp.search.max_dim
    candidates = load_checkpoint(tmp_path / "search_state.pt")["candidates"]
    meeting = [c for c in candidates if c["sparsity"] >= target]
    chosen = sorted(meeting, key=lambda c: -c["mean_quality"])[:3]
    rest = [c for c in candidates if c["sparsity"] < target]
    chosen += sorted(rest, key=lambda c: -c["sparsity"])[: 3 - len(chosen)]
    sized = []
    for per_role in (False, True):
        for c in chosen:
            users, items = c["user_sizes"].numpy(), c["item_sizes"].numpy()
            if per_role:
                sized.append(
                    (fit_to_budget(users, max_dim, target), fit_to_budget(items, max_dim, target))
                )
            else:
                both = fit_to_budget(np.concatenate([users, items]), max_dim, target)
                sized.append((both[: len(users)], both[len(users) :]))

    split, _ = prepare_split("synthetic", "ciess", None, exp.search.seed)
    warm = model_from_checkpoint(load_checkpoint(tmp_path / "warm_start.pt"))
    evaluator = FullRankingEvaluator(
        split.valid, exclude=[split.train], ks=[20], metrics=["recall"]
    )
    scores = []
    for users, items in sized:
        set_entity_sizes(warm, users, items)
        scores.append(evaluate_model(warm, evaluator).mean["recall@20"])
    best = max(range(len(sized)), key=lambda index: (scores[index], -index))
    assert best != 0, "the screen must pick another mask than Eq. 16's first for this test to tell"

    retrained = np.load(tmp_path / "ciess_c80_sizes.npz")
    assert np.array_equal(retrained["users"], sized[best][0])
    assert np.array_equal(retrained["items"], sized[best][1])
    assert ciess["screen_kept_scores"] == pytest.approx([scores[best]], abs=1e-6)
    assert ciess["screen_best_by_quality_score"] == pytest.approx(scores[0], abs=1e-6)


def test_a_rerun_reuses_the_screen_and_a_changed_setting_redoes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from leanrec.search.embedding_size import retrain

    exp, first = screened_experiment(tmp_path)
    assert (tmp_path / "ciess_c80_screen.pt").exists()
    # as after a kill during retraining: the row is gone, the finished search and screen are not
    rows_path = tmp_path / "rows.json"
    rows_path.write_text(
        json.dumps([r for r in json.loads(rows_path.read_text()) if r["method"] != "ciess"])
    )
    calls: list[int] = []
    screen = retrain.screen_on_validation

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return screen(*args, **kwargs)

    monkeypatch.setattr(retrain, "screen_on_validation", counted)
    again = next(r for r in run_experiment(exp, log=lambda m: None).rows if r["method"] == "ciess")
    assert calls == []
    for key in ("screened", "screen_kept_scores", "screen_best_by_quality_score"):
        assert again[key] == first[key]
    assert again["candidates_retrained"] == first["candidates_retrained"]
    # keeping two masks instead of one is another setting: refused in this folder, and in a
    # folder given the finished search and screen (as the presets' variants are) the screen
    # is another outcome: it is redone
    two = dataclasses.replace(exp, search=dataclasses.replace(exp.search, top_masks=2))
    with pytest.raises(ValueError, match=r"other settings: search\.top_masks 1 -> 2\."):
        run_experiment(two, log=lambda m: None)
    copy = tmp_path / "two"
    copy.mkdir()
    for path in tmp_path.iterdir():
        if path.is_file() and path.name not in ("config.json", "rows.json"):
            shutil.copy2(path, copy / path.name)
    (copy / "rows.json").write_text(
        json.dumps([r for r in json.loads(rows_path.read_text()) if r["method"] != "ciess"])
    )
    two = dataclasses.replace(two, out_dir=str(copy))
    rerun = next(r for r in run_experiment(two, log=lambda m: None).rows if r["method"] == "ciess")
    assert calls == [1]
    assert len(rerun["screen_kept_scores"]) == 2


def test_policy_networks_start_from_the_search_seed_not_the_process_state() -> None:
    from leanrec.search.embedding_size.baselines import ESAPNPolicy
    from leanrec.search.embedding_size.policy import CIESSPolicy

    def weights(policy) -> torch.Tensor:  # type: ignore[no-untyped-def]
        agent = policy.agents["user"]
        network = agent.policy if isinstance(policy, ESAPNPolicy) else agent
        return torch.cat([p.detach().reshape(-1) for p in network.parameters()])

    config = tiny_config()
    torch.manual_seed(1)
    first, first_esapn = CIESSPolicy(config), ESAPNPolicy(16, seed=config.seed)
    after_first = torch.rand(1)
    torch.manual_seed(2)
    second, second_esapn = CIESSPolicy(config), ESAPNPolicy(16, seed=config.seed)
    assert torch.equal(weights(first), weights(second))
    assert torch.equal(weights(first_esapn), weights(second_esapn))
    other = CIESSPolicy(dataclasses.replace(config, seed=config.seed + 1))
    assert not torch.equal(weights(first), weights(other))
    # the caller's torch stream is left where it was
    torch.manual_seed(1)
    assert torch.equal(torch.rand(1), after_first)


def test_a_warm_start_of_another_split_is_refused_and_split_seed_shares_one(
    tmp_path: Path,
) -> None:
    """A full-size model trained on another split has seen this split's validation and test
    interactions; reusing it must fail loudly. ``split_seed`` keeps the split when only the
    search seed changes, so one warm start serves several searches."""
    import shutil

    first = _su_experiment(tmp_path / "a", epochs=1)
    search = first.search
    run_experiment(first, log=lambda message: None)

    def with_copied_warm_start(name: str, **changes: object) -> EmbeddingSizeExperiment:
        (tmp_path / name).mkdir()
        shutil.copy(tmp_path / "a" / "warm_start.pt", tmp_path / name / "warm_start.pt")
        return dataclasses.replace(first, out_dir=str(tmp_path / name), **changes)

    other_seed = dataclasses.replace(search, seed=search.seed + 1)
    leaking = with_copied_warm_start("b", search=other_seed)
    with pytest.raises(ValueError, match=r"other training interactions.*validation and test"):
        run_experiment(leaking, log=lambda message: None)

    shared = with_copied_warm_start("c", search=other_seed, split_seed=search.seed)
    logs: list[str] = []
    result = run_experiment(shared, log=logs.append)
    assert not any("pretraining" in line for line in logs)  # the copy was used, not retrained
    assert json.loads((tmp_path / "c" / "config.json").read_text())["split_seed"] == search.seed
    full = {r["method"]: r for r in result.rows}["full"]
    first_full = {r["method"]: r for r in json.loads((tmp_path / "a" / "rows.json").read_text())}
    assert full["test_recall@20"] == first_full["full"]["test_recall@20"]  # same model and split
