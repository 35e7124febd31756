"""Scripted expert for DexHandover-v0 (`pd_wrist_pose`, both hands).

The giver holds the object on its upturned palm and keeps still. The receiver comes down over the object from its own
side with the thumb-palm side grasp of DexGrasp-v0's expert (`side_grasp`), high enough that its pinky side clears the
giver's palm, and closes. The giver then lowers its palm away and backs off while the receiver carries the object up
and toward its own side, and holds it.

Per-hand phase labels, the subtask boundaries later generators cut at:
- receiver: approach, grasp, transfer, hold;
- giver: hold (the object rests on its palm), release, retreat.
`release=False` keeps the giver's palm under the object and moving with it: both hands end on it (not a success).
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.experts.base import OPEN, ScriptedExpert
from dexenvs.experts.grasp import CLOSED, approach_and_close, side_grasp
from dexenvs.robots import quat_to_matrix

SEGMENTS = dict(pre=18, approach=14, close=26, release=16, transfer=20, hold=16)
RECEIVER_PHASE = dict(pre="approach", approach="approach", close="grasp", release="grasp", transfer="transfer", hold="hold")
GIVER_PHASE = dict(pre="hold", approach="hold", close="hold", release="release", transfer="retreat", hold="retreat")
CLEARANCE = 0.052  # receiver's wrist above the object's bottom: its pinky side (~4.5 cm below) just clears the giver's palm, and
# its thumb still reaches below the rim of the shortest cans (8 cm; at 0.062 it pressed on the rim and slipped)
GIVER_DROP = np.array([-0.04, 0.0, -0.10])  # the giver's palm goes down and back, out from under the object
CARRY = 0.08  # the receiver lifts this much, and moves as much toward its own side


class HandoverExpert(ScriptedExpert):
    segments = SEGMENTS

    def __init__(self, env, release: bool = True):
        super().__init__(env)
        self.release = release

    def receiver_grasp(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Receiver's wrist position and rotation for sub-env i, and the direction it carries the object away."""
        env = self.env
        hand = env._hands[env.receiver]
        toward = np.array([0.0, -1.0 if hand.hand_side == "left" else 1.0, 0.0])  # from its side into the middle
        approach = toward
        asset = env._assets[i]
        if asset.category == "box":  # face-on: the box face whose normal is nearest the approach
            R_obj = quat_to_matrix(env.obj.pose.q[i : i + 1])[0].cpu().numpy()
            k = int(np.argmax(np.abs(R_obj[:2, :2].T @ toward[:2])))
            approach = np.array([R_obj[0, k], R_obj[1, k], 0.0])
            approach *= np.sign(approach @ toward)
        bottom = float(env.obj_center()[i, 2] - asset.extents[2] / 2)
        pos, rot = side_grasp(env, i, approach, hand.palm_sign, bottom + CLEARANCE)
        return pos, rot, -toward

    def act(self, obs=None) -> tuple[torch.Tensor, list[tuple[str, str]]]:
        """Next action (num_envs, 30): both hands in env order; and per env, each hand's phase label."""
        env = self.env
        seg, s = self.segment(self.t)
        self.t += 1
        smooth = self.smooth(s)
        g, r = env.giver, env.receiver
        per_hand: list[list] = [[], []]
        labels = []
        for i in range(env.num_envs):
            if seg in ("pre", "approach") or self.frozen[i] is None:
                self.frozen[i] = self.receiver_grasp(i)
            pos, rot, away = self.frozen[i]
            # receiver
            carry = CARRY * (np.array([0.0, 0.0, 1.0]) + away)
            moved = 0.0 if seg == "release" else smooth if seg == "transfer" else 1.0
            receiving = approach_and_close(seg, s, self.start[r][i], pos, rot) or (pos + moved * carry, rot, CLOSED)
            # giver
            gp, gr = self.start[g][i]
            if self.release and seg in ("release", "transfer", "hold"):
                gp = gp + (smooth if seg == "release" else 1.0) * GIVER_DROP
            elif not self.release and seg in ("transfer", "hold"):
                gp = gp + (smooth if seg == "transfer" else 1.0) * carry
            rows = {r: receiving, g: (gp, gr, OPEN)}
            for k in (0, 1):
                per_hand[k].append(rows[k])
            lab = {r: RECEIVER_PHASE[seg], g: GIVER_PHASE[seg] if self.release else "hold"}
            labels.append((lab[0], lab[1]))
        actions = []
        for rows in per_hand:
            p, rot_, f = (torch.as_tensor(np.stack(x), dtype=torch.float32, device=env.device) for x in zip(*rows))
            actions.append(env.wrist_action(p, rot_, f))
        return torch.cat(actions, -1), labels
