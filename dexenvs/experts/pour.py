"""Scripted expert for DexPour-v0 (`pd_wrist_pose`): DexGrasp-v0's side grasp of the cup or mug, then carry it over the
bowl and tilt it about the hand's finger axis (a forearm roll, the way people pour from a glass held from the side)
so the mouth swings away from the palm toward the bowl, and hold it tilted while the particles fall.

Phase labels: approach, grasp, transfer (carry to the pour pose), pour (tilting), hold.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from dexenvs.experts.grasp import CLOSED, GraspExpert, approach_and_close

SEGMENTS = dict(pre=18, approach=14, close=30, transfer=30, pour=30, hold=40)
PHASE_OF_SEGMENT = dict(pre="approach", approach="approach", close="grasp", transfer="transfer", pour="pour", hold="hold")
POUR_ANGLE = np.deg2rad(125.0)
ABOVE_RIM = 0.075  # container centre above the bowl's rim while pouring: its tilted body clears the rim
LIP = 0.5  # the tilted mouth is this fraction of the container's height out from its centre, over the bowl centre


class PourExpert(GraspExpert):
    segments = SEGMENTS
    phase_of_segment = PHASE_OF_SEGMENT

    def pour_plan(self, i: int, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For sub-env i grasped with wrist rotation rot: the container centre now, its shift to the pour pose, and
        the tilt axis (horizontal, through the container centre) that swings its mouth toward the bowl."""
        env = self.env
        center = env.obj_center()[i].cpu().numpy()
        palm = rot[:, 2] * env._hands[0].palm_sign  # the grasp faces the container along the palm normal
        away = np.array([palm[0], palm[1], 0.0]) / np.linalg.norm(palm[:2])
        h = env._assets[i].extents[2]
        bowl = np.array([*env.bowl_position()[i, :2].cpu().numpy(), env._bowl_height + ABOVE_RIM])
        target = bowl - away * LIP * h * np.sin(POUR_ANGLE)
        return center, target - center, np.cross([0.0, 0.0, 1.0], away)

    def act(self, obs=None) -> tuple[torch.Tensor, list[str]]:
        seg, s = self.segment(self.t)
        self.t += 1
        smooth = self.smooth(s)
        rows = []
        for i in range(self.env.num_envs):
            if seg in ("pre", "approach") or self.frozen[i] is None:
                self.frozen[i] = self.grasp_pose(i)
            pos, rot = self.frozen[i][:2]
            if seg == "close" and s == 1.0:  # plan the pour from where the container sits in the closed hand
                self.frozen[i] = (pos, rot, *self.pour_plan(i, rot))
            grasping = approach_and_close(seg, s, self.start[0][i], pos, rot)
            if grasping:
                p, r, f = grasping
            else:
                center, shift, axis = self.frozen[i][2:]
                # up first, then across: a straight line would sweep the container's foot through the bowl's rim
                up = self.smooth(min(1.0, 2 * s)) if seg == "transfer" else 1.0
                across = self.smooth(max(0.0, 2 * s - 1)) if seg == "transfer" else 1.0
                p, r, f = pos + np.array([across * shift[0], across * shift[1], up * shift[2]]), rot, CLOSED
                if seg in ("pour", "hold"):
                    c = center + shift
                    tilt = Rotation.from_rotvec(axis * POUR_ANGLE * (smooth if seg == "pour" else 1.0)).as_matrix()
                    p, r = c + tilt @ (p - c), tilt @ rot
            rows.append((p, r, f))
        pos, rot, fingers = (torch.as_tensor(np.stack(x), dtype=torch.float32, device=self.env.device) for x in zip(*rows))
        return self.env.wrist_action(pos, rot, fingers), [PHASE_OF_SEGMENT[seg]] * self.env.num_envs
