"""A task is its own files: a small task defined here (its env class, its expert and its spec, nothing else edited)
runs through every stage the built-in tasks run through: seed demo -> A_EP -> training -> evaluation -> a quick
flywheel, on worker processes too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dexenvs.base import DexEnv, hand_rotation
from dexenvs.experts.base import OPEN, ScriptedExpert
from dexenvs.registration import register
from dexenvs.scenarios import Workspace
from dexenvs.tasks import FlywheelPreset, TaskSpec, get_task, register_task, task_of_env

HOVER = 0.05  # the expert's palm stops this far over the object's top
OVER = (0.0, 0.10)  # success: the palm centre this far over the object's top (m), and within ALIGN of its axis
ALIGN = 0.03
PALM_CENTRE = np.array([0.0, 0.05, 0.027])  # in the hand's base frame (fingers +y, palm toward palm_sign * z)


@register("DexToyReach-v0", max_episode_steps=40)
class DexToyReachEnv(DexEnv):
    """Bring the open palm over the object (its centre above the object's axis, a little over its top) and keep it there
    for 3 control steps."""

    task_name = "toy_reach"
    object_categories = ("box", "can")
    workspace = Workspace(x=(-0.04, 0.06), y=(-0.08, 0.08))
    hold_steps_required = 3
    max_dense_reward = 2.0

    def _offset(self) -> torch.Tensor:
        """(b, 3): the palm centre relative to the middle of the object's top."""
        top = self.obj_center() + torch.stack([torch.zeros_like(self._obj_half_extents[:, 2])] * 2
                                              + [self._obj_half_extents[:, 2]], -1)
        return self.palm_points(0)[:, 0] - top

    def _reached(self) -> torch.Tensor:
        d = self._offset()
        return (d[:, :2].norm(dim=-1) < ALIGN) & (d[:, 2] > OVER[0]) & (d[:, 2] < OVER[1])

    def _holding(self) -> torch.Tensor:
        return self._reached()

    def evaluate(self):
        return dict(self._base_eval(), reached=self._reached())

    def compute_dense_reward(self, obs, action, info):
        reward = 1 - torch.tanh(5.0 * self._offset().norm(dim=-1)) + info["reached"].float()
        return torch.where(info["success"], torch.full_like(reward, self.max_dense_reward), reward)


class ToyReachExpert(ScriptedExpert):
    """Palm down, over the object (`approach`), then down to hover over its top (`reach`), then still (`hold`)."""

    segments = dict(approach=14, reach=10, hold=8)

    def act(self, obs=None):
        seg, s = self.segment(self.t)
        self.t += 1
        env = self.env
        rows = []
        for i in range(env.num_envs):
            rot = hand_rotation(fingers=(1, 0, 0), palm=(0, 0, -1), palm_sign=env._hands[0].palm_sign)
            local = PALM_CENTRE * np.array([1, 1, env._hands[0].palm_sign])
            top = env.obj_center()[i].cpu().numpy() + np.array([0, 0, env._assets[i].extents[2] / 2 + HOVER])
            target = top - rot @ local
            above = target + np.array([0, 0, 0.08])
            start = self.start[0][i][0]
            pos = (start + self.smooth(s) * (above - start) if seg == "approach"
                   else above + self.smooth(s) * (target - above) if seg == "reach" else target)
            rows.append((pos, rot, OPEN))
        pos, rot, fingers = (torch.as_tensor(np.stack(x), dtype=torch.float32, device=env.device) for x in zip(*rows))
        return env.wrist_action(pos, rot, fingers), [seg] * env.num_envs


SPEC = register_task(TaskSpec(
    name="toy_reach", env_cls=DexToyReachEnv, expert=ToyReachExpert, carry_phase="reach",
    grasp_at_end=True,  # the object never rises: a rollout's "grasp" is where it ends, over the object
    slip_measurable=False,
    flywheel=FlywheelPreset(seed_scenarios=("box_02|studio-white-blue|p25",), train_steps=(400,), cover=True,
                            quick_train_steps=(400,))))


def test_the_registry_finds_the_toy_task_by_name_and_env():
    assert get_task("toy_reach") is SPEC and task_of_env("DexToyReach-v0") is SPEC
    with pytest.raises(ValueError, match=r"--task nope: unknown task; valid: \[.*'toy_reach'"):
        get_task("nope")


def test_a_new_task_runs_through_seed_aep_train_evaluate_and_a_quick_flywheel(tmp_path):
    from agents.evaluate import evaluate
    from agents.train import TrainConfig, train
    from generators.augment import generate
    from generators.flywheel import FlywheelConfig, run_flywheel
    from generators.seed import record_seeds

    seed = record_seeds("toy_reach", tmp_path / "seed.hdf5")
    aep = generate("toy_reach", seed, tmp_path / "aep.hdf5", 8, workers=2, progress=False)
    assert aep["successes"] == 8 and aep["coverage_successes"]["objects"] > 1  # carried onto the seed's category
    summary = train(tmp_path / "aep.hdf5", tmp_path / "bc", TrainConfig(algo="bc"), steps=400, progress=False)
    assert summary["final_loss"] < 0.2 * summary["first_loss"]
    ev = evaluate(tmp_path / "bc" / "checkpoint.pt", "DexToyReach-v0", "train", seeds=2, episodes=4, workers=2)
    assert ev["episodes"] == 8 and ev["successes"] >= 4, ev["per_scenario"]  # the imitated reach works

    out = tmp_path / "flywheel"
    # in this process (the stages above ran the task on worker processes): no worker or vector-env start-up to wait for
    report = run_flywheel(FlywheelConfig(task="toy_reach", iters=2, quick=True, out=out, progress=False, workers=1))
    d1, d2 = (it["data"] for it in report["iterations"])
    assert d1["objects"] == 1 and d2["objects"] > 1 and d2["trajectories"] > d1["trajectories"]
    assert report["settings"]["train_steps"] == [400] and report["settings"]["base"]["algo"] == "bc"
    stages = json.loads((out / "state.json").read_text())["stages"]
    assert {"0.seed", "1.data", "1.train", "1.residual", "1.eval", "1.rollout", "2.data", "2.eval"} <= set(stages)
    assert "| i = 2" in (out / "report.md").read_text()
