"""DexLift-v0: two floating Inspire hands lift a large object (tray, pot, wide box) that one hand cannot.

The object stands with its long axis across the robot (world y) so each hand can take one end. Success: the object's
centre is at least 0.15 m above where it rested, both hands touch it (a palm point or fingertip within 2 cm of its
bounding box), it is tilted less than MAX_TILT, and all of that has held for HOLD_STEPS consecutive control steps.
Fail: the object left the table.
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.base import DexEnv
from dexenvs.experts.lift import LiftExpert
from dexenvs.registration import register
from dexenvs.scenarios import Workspace
from dexenvs.tasks.spec import FlywheelPreset, TaskSpec, register_task

LIFT_HEIGHT = 0.15
HOLD_STEPS = 10
MAX_TILT = np.deg2rad(15.0)  # a tray held level enough to carry what is on it


@register("DexLift-v0", max_episode_steps=150)
class DexLiftEnv(DexEnv):
    task_name = "lift"
    object_categories = ("tray", "pot", "wide_box")
    default_robots = ("floating_inspire_hand_left", "floating_inspire_hand_right")
    workspace = Workspace(x=(0.0, 0.08), y=(-0.04, 0.04), yaw=(np.pi / 2 - 0.3, np.pi / 2 + 0.3))
    max_dense_reward = 6.0
    lift_height = LIFT_HEIGHT
    hold_steps_required = HOLD_STEPS
    render_eye = (-0.75, -0.55, 0.65)
    render_target = (0.0, 0.0, 0.12)

    def _initial_wrist_pose(self, hand_idx, env_idx):
        return self._side_wrist_pose(hand_idx, len(env_idx))

    def touching(self) -> torch.Tensor:
        """(b, hands): some palm point or fingertip of each hand within 2 cm of the object's bounding box."""
        snap = self.snapshot()
        if "touching" not in snap:
            snap["touching"] = torch.stack([(self.distance_to_object(self.hand_points(k)) < 0.02).any(-1)
                                            for k in range(len(self._hands))], -1)
        return snap["touching"]

    def _holding(self) -> torch.Tensor:
        return self._lifted() & self.touching().all(-1) & (self.tilt() < MAX_TILT)

    def _lifted(self) -> torch.Tensor:
        return self.lift_amount() >= LIFT_HEIGHT

    def evaluate(self):
        return dict(self._base_eval(), lifted=self._lifted(), both_hands=self.touching().all(-1), tilt=self.tilt())

    def compute_dense_reward(self, obs, action, info):
        reach = torch.stack([1 - torch.tanh(5.0 * self.distance_to_object(self.palm_points(k)).min(-1).values)
                             for k in range(len(self._hands))], -1).mean(-1)
        contact = self.touching().float().mean(-1)
        lift = (info["lift_height"].clamp(0, LIFT_HEIGHT) / LIFT_HEIGHT) * info["both_hands"].float()
        level = 1 - (info["tilt"] / MAX_TILT).clamp(0, 1)
        reward = reach + contact + 2.0 * lift + level * lift
        return torch.where(info["success"], torch.full_like(reward, self.max_dense_reward), reward)


SPEC = register_task(TaskSpec(
    name="lift", env_cls=DexLiftEnv, expert=LiftExpert, carry_phase="lift",
    flywheel=FlywheelPreset(
        # the pots have no seed of their own: the wide box's squeeze carries onto them
        seed_scenarios=("wide_box_02|studio-white-blue|p25", "tray_00|studio-white-blue|p25"),
        # two hands' wider networks take far longer a step, and the last base gained nothing from more
        train_steps=(4000, 5000, 6000), cover=False,
        max_slip=0.0),  # the object rests on two flat palms and slides in every successful lift
    reference_t_oep=(13.9, 44.4, 79.4), reference_replay=43.7))
