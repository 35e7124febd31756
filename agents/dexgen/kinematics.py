"""The hand's keypoints as a function of its joints: forward kinematics on the hand's pinocchio model (from its SAPIEN
articulation), Jacobians by finite differences, and retargeting of a keypoint motion to joint targets (damped least
squares per finger, as a teleoperation retargeter does: the baseline that executes a command directly)."""

from __future__ import annotations

import numpy as np

from dexenvs.robots import ROBOTS


class KeypointKinematics:
    """Joint vectors in the hand's action order; keypoints (K, 3) in the hand's base frame, in the order of
    `ROBOTS[robot].keypoint_links`."""

    def __init__(self, env, damping: float = 1e-4):
        base = env.unwrapped
        hand = ROBOTS[base.robot_names[0]]
        art = base.agent.robot._objs[0]
        self._pin = art.create_pinocchio_model()
        names = [link.get_name() for link in art.get_links()]
        self._links = [[n.endswith(link) for n in names].index(True) for link in hand.keypoint_links]
        self._order = base._qpos_order.cpu().numpy()  # action order -> SAPIEN order
        lim = np.concatenate([j.get_limits() for j in art.get_active_joints()])
        inv = np.argsort(self._order)
        self.low, self.high = lim[inv, 0], lim[inv, 1]
        self.fingers = hand.fingers
        k = len(hand.fingers)  # keypoints: tips of fingers 0..k-1, then middles
        self._rows = {fi: [fi, k + fi] for fi in range(k)}
        self.damping = damping

    def fk(self, q: np.ndarray) -> np.ndarray:
        self._pin.compute_forward_kinematics(np.asarray(q, dtype=np.float64)[self._order])
        return np.stack([self._pin.get_link_pose(i).p for i in self._links])

    def jacobian(self, q: np.ndarray, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (K, 3) and their Jacobian (K, 3, J)."""
        q = np.asarray(q, dtype=np.float64)
        base = self.fk(q)
        jac = np.zeros((*base.shape, len(q)))
        for j in range(len(q)):
            dq = q.copy()
            dq[j] += eps
            jac[:, :, j] = (self.fk(dq) - base) / eps
        return base, jac

    def retarget(self, target: np.ndarray, motion: np.ndarray) -> np.ndarray:
        """Joint targets that move the keypoints of `target`'s configuration by `motion` (K, 3), finger by finger;
        clipped to the joint limits."""
        _, jac = self.jacobian(target)
        out = np.asarray(target, dtype=np.float64).copy()
        for fi, f in enumerate(self.fingers):
            js, rows = list(f.joints), self._rows[fi]
            a = jac[rows][:, :, js].reshape(-1, len(js))
            b = motion[rows].reshape(-1)
            out[js] += np.linalg.solve(a.T @ a + self.damping * np.eye(len(js)), a.T @ b)
        return np.clip(out, self.low, self.high)
