"""Scripted expert for DexLift-v0 (`pd_wrist_pose`, both hands): a bimanual squeeze.

Each hand takes one end of the object along its long axis: palm flat on the end face at mid-height (never low enough
to scrape the table), fingers forward, thumb up. The hands come in from outside, press SQUEEZE past the faces (the
wrist drives' stiffness turns that into ~75 N of grip per hand, enough for 3.5 kg with the palm's friction), lift
together and hold. Per-hand phase labels: approach, grasp, lift, hold; both hands switch phase at the same steps
(these are the synchronisation points generators must keep).
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.base import hand_rotation
from dexenvs.experts.base import OPEN, ScriptedExpert, slerp
from dexenvs.robots import quat_to_matrix

SEGMENTS = dict(pre=20, approach=15, squeeze=10, lift=30, hold=20)
PHASE_OF_SEGMENT = dict(pre="approach", approach="approach", squeeze="grasp", lift="lift", hold="hold")
PALM_CENTER = 0.05  # along the fingers from the wrist frame
PALM_SURFACE = 0.027
STANDOFF = 0.08  # pre-grasp distance outside the end faces
SQUEEZE = 0.015
GRIP = np.array([0.0, 0.0, -0.6, -0.6, -0.6, -0.6], dtype=np.float32)  # fingers half-curled onto the face
MIN_Z = 0.05
LIFT = 0.25


class LiftExpert(ScriptedExpert):
    segments = SEGMENTS
    phase_of_segment = PHASE_OF_SEGMENT

    def __init__(self, env, hands: tuple[int, ...] = (0, 1)):
        """`hands`: which hands act; the others stay where they start (hands=(1,) is the one-hand variant)."""
        super().__init__(env)
        self.hands = hands

    def grasp_poses(self, i: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per hand: wrist position at contact, wrist rotation, and the outward normal of its end face."""
        env = self.env
        asset = env._assets[i]
        R_obj = quat_to_matrix(env.obj.pose.q[i : i + 1])[0].cpu().numpy()
        long_axis = R_obj[:, 0] * np.array([1.0, 1.0, 0.0])
        long_axis /= np.linalg.norm(long_axis)
        base = env.obj.pose.p[i].cpu().numpy()
        out = []
        for hand in env._hands:
            side = 1.0 if hand.hand_side == "left" else -1.0  # left hand works the +y end
            end = 1.0 if long_axis[1] * side > 0 else -1.0
            normal = end * long_axis
            face = base + R_obj @ self._end_face(asset, end)  # where the object's end actually is (pot: handle)
            face[2] = max(face[2], MIN_Z)
            fingers = np.cross([0.0, 0.0, 1.0], normal)
            fingers = fingers if fingers[0] >= 0 else -fingers
            rot = hand_rotation(fingers, -normal, hand.palm_sign)
            pos = face - rot @ np.array([0.0, PALM_CENTER, hand.palm_sign * PALM_SURFACE])
            out.append((pos, rot, normal))
        return out

    _faces: dict = {}

    @classmethod
    def _end_face(cls, asset, end: float) -> np.ndarray:
        """Object-frame centre of the mesh's end along local x (end = +1 or -1): the vertices within 1 cm of it."""
        key = (asset.id, end)
        if key not in cls._faces:
            import trimesh

            v = trimesh.load(asset.visual_file, force="mesh").vertices
            x = end * v[:, 0]
            near = v[x >= x.max() - 0.01]
            cls._faces[key] = np.array([end * x.max(), near[:, 1].mean(), near[:, 2].mean()])
        return cls._faces[key]

    def act(self, obs=None) -> tuple[torch.Tensor, list[tuple[str, ...]]]:
        """Next action (num_envs, 15 * hands) and, per env, each hand's phase label."""
        seg, s = self.segment(self.t)
        self.t += 1
        smooth = self.smooth(s)
        up = np.array([0.0, 0.0, 1.0])
        per_hand = [[] for _ in self.env._hands]
        labels = []
        for i in range(self.env.num_envs):
            if seg in ("pre", "approach") or self.frozen[i] is None:
                self.frozen[i] = self.grasp_poses(i)
            hand_labels = []
            for k, (pos, rot, normal) in enumerate(self.frozen[i]):
                p0, r0 = self.start[k][i]
                if k not in self.hands:  # idle hand: stays where it started
                    per_hand[k].append((p0, r0, OPEN))
                    hand_labels.append("idle")
                    continue
                pre = pos + normal * STANDOFF
                press = pos - normal * SQUEEZE
                if seg == "pre":
                    p, r = p0 + smooth * (pre - p0), slerp(r0, rot, smooth)
                elif seg == "approach":
                    p, r = pre + s * (pos - pre), rot
                elif seg == "squeeze":
                    p, r = pos + s * (press - pos), rot
                elif seg == "lift":
                    p, r = press + smooth * LIFT * up, rot
                else:
                    p, r = press + LIFT * up, rot
                fingers = OPEN if seg in ("pre", "approach") else GRIP * (s if seg == "squeeze" else 1.0)
                per_hand[k].append((p, r, fingers))
                hand_labels.append(PHASE_OF_SEGMENT[seg])
            labels.append(tuple(hand_labels))
        actions = []
        for rows in per_hand:
            pos, rot, fingers = (torch.as_tensor(np.stack(x), dtype=torch.float32, device=self.env.device) for x in zip(*rows))
            actions.append(self.env.wrist_action(pos, rot, fingers))
        return torch.cat(actions, -1), labels
