"""DexGen training samples from datasets in the project's format.

Each demo step t gives one sample: the state history up to t (`features.history_windows`), the mode (the step's phase
label: `regrasp` for `generators.transitions`, `free` for `generators.free_motion`), the keypoints' motion over the next
`horizon` steps, and the joint targets that step's action set, relative to the joints' positions then (read from the
next step's targets, so any control mode works). As DexGen does, the 2 s before a drop are left out of held motion: the prior should hold, not
let go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agents.dexgen.features import MODES, future_motion, history_windows, step_features
from dexenvs.cli import DexError
from dexenvs.trajectory import demo_names, open_dataset

DROP_DISCARD_SECONDS = 2.0


@dataclass
class Samples:
    history: np.ndarray  # (N, H, F)
    mode: np.ndarray  # (N,)
    motion: np.ndarray  # (N, horizon, K*3)
    offset: np.ndarray  # (N, J) joint targets set minus joint positions

    def __len__(self) -> int:
        return len(self.mode)

    def stats(self) -> dict:
        """Means and standard deviations per dimension; the motion's deviation is one number per step ahead (the same
        for every keypoint and axis), so that normalized distances stay Euclidean."""
        f, m = self.history[:, -1], self.motion
        motion_std = np.repeat(m.std(axis=(0, 2)), m.shape[-1])
        return dict(features=dict(mean=f.mean(0).tolist(), std=f.std(0).tolist()),
                    motion=dict(mean=m.reshape(len(self), -1).mean(0).tolist(), std=motion_std.tolist()),
                    offset=dict(mean=self.offset.mean(0).tolist(), std=self.offset.std(0).tolist()))

    @staticmethod
    def cat(parts: list["Samples"]) -> "Samples":
        return Samples(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("history", "mode", "motion", "offset")))


def qpos_to_action_order(env_args: dict) -> np.ndarray:
    """Index array taking the recorded `agent_qpos` (SAPIEN's joint order) to the hand's action order."""
    from dexenvs.trajectory import make_env

    env = make_env(env_args)
    try:
        return np.argsort(env._qpos_order.cpu().numpy())
    finally:
        env.close()


def load_samples(path: Path, history: int, horizon: int, mask: str = "train") -> Samples:
    parts = []
    with open_dataset(path) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["mask"][mask][()]] \
            if "mask" in f and mask in f["mask"] else demo_names(f)
        if not names:
            return Samples(np.zeros((0, history, 0)), np.zeros(0, np.int64), np.zeros((0, horizon, 0)), np.zeros((0, 0)))
        obs0 = f["data"][names[0]]["obs"]
        if "extra_keypoints" not in obs0 or "extra_target_qpos" not in obs0:
            raise DexError(f"{path} has no keypoints or joint targets in its observations (keys: {sorted(obs0)}); "
                           "DexGen trains on DexRegrasp-v0 data: python -m generators.transitions")
        order = qpos_to_action_order(env_args)
        freq = float(env_args["env_kwargs"].get("control_freq", 20))
        for n in names:
            g = f["data"][n]
            kp, tgt = g["obs/extra_keypoints"][()], g["obs/extra_target_qpos"][()]
            q = g["obs/agent_qpos"][()][:, order]
            phase_names = json.loads(g["datagen_info"].attrs["phase_names"])
            mode = np.array([MODES.index(phase_names[int(p)]) if phase_names[int(p)] in MODES else -1
                             for p in np.asarray(g["datagen_info/phase"][()]).reshape(-1)])
            # free finger motion lets the object go by design; only held motion loses its last seconds before a drop
            dropped = ("free" not in phase_names and bool(g["dones"][-1]) and not bool(g.attrs["success"])
                       and float(g["rewards"][-1]) == 0.0)
            keep = len(kp) - (int(DROP_DISCARD_SECONDS * freq) if dropped else 0)
            m = min(keep, len(kp) - horizon)  # steps with a full future
            if m <= 0:
                continue
            feats = step_features(kp, q, tgt).astype(np.float32)
            hist = history_windows(feats, history)[:m]
            offset = (tgt[1 : m + 1] - q[:m]).astype(np.float32)
            motion = future_motion(kp, horizon)[:m].astype(np.float32)
            ok = mode[:m] >= 0
            parts.append(Samples(hist[ok], mode[:m][ok], motion[ok], offset[ok]))
    if not parts:
        raise DexError(f"{path} ({mask}) gives no DexGen samples: every demo is shorter than the horizon or dropped")
    return Samples.cat(parts)
