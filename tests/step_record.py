"""Whole episodes of every task recorded step by step (observations, rewards, success, fail) on fixed seeds, with the
scripted expert's actions and with random ones: what `test_step_equality.py` compares against the recording committed
in `tests/data/steps_golden.npz`, so that making the env step faster changes nothing it computes.

    python -m tests.step_record        # rewrites the recording: only when a change is meant to change behaviour
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "steps_golden.npz"
TASKS = ("grasp", "pour", "lift", "handover", "regrasp")
RANDOM_STEPS = 40
SEED = 7


def record(task: str, kind: str) -> dict[str, np.ndarray]:
    """One episode of `task` from reset seed SEED: `kind` "expert" (the task's expert, or the regrasp planner) or
    "random" (uniform actions from a seeded generator, RANDOM_STEPS steps)."""
    import torch

    from benchmarks.step_profile import env_and_expert

    env, expert_cls, options, horizon = env_and_expert(task)
    try:
        obs, _ = env.reset(seed=SEED, options=options(SEED))
        expert = expert_cls(env)
        expert.reset()
        horizon = horizon or expert.horizon
        rng = np.random.default_rng(SEED)
        space = env.single_action_space
        rows: dict[str, list] = dict(obs=[obs[0].numpy().copy()], reward=[], success=[], fail=[])
        steps = horizon if kind == "expert" else RANDOM_STEPS
        for _ in range(steps):
            if kind == "expert":
                action = expert.act()[0]
            else:
                action = torch.as_tensor(rng.uniform(space.low, space.high), dtype=torch.float32)[None]
            obs, reward, _, _, info = env.step(action)
            rows["obs"].append(obs[0].numpy().copy())
            rows["reward"].append(float(reward[0]))
            rows["success"].append(bool(info["success"][0]))
            rows["fail"].append(bool(info["fail"][0]))
        return {k: np.asarray(v) for k, v in rows.items()}
    finally:
        env.close()


def record_all() -> dict[str, np.ndarray]:
    return {f"{task}/{kind}/{k}": v for task in TASKS for kind in ("expert", "random")
            for k, v in record(task, kind).items()}


if __name__ == "__main__":
    data = record_all()
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN, **data)
    print(f"wrote {GOLDEN}: " + ", ".join(f"{k} {v.shape}" for k, v in data.items() if k.endswith("/obs")))
