"""What the DexGen controller sees and predicts, computed the same way from a live env and from a recorded demo.

Per control step the hand's state is its K keypoints (fingertips and middle joints, hand frame), its joint positions,
its joint targets and the control error (targets minus positions), all in the hand's action order: `step_features`.
The condition is the last `history` of those plus a one-hot mode. The prediction is the keypoints' motion over the
next `horizon` steps, each relative to the current keypoints: (horizon, K, 3) metres in the hand frame.
"""

from __future__ import annotations

import numpy as np
import torch

MODES = ("regrasp", "free")
"""regrasp: the object held and moved between grasps (transition data); free: fingers moving on their own"""


def check_mode(mode: str) -> int:
    if mode not in MODES:
        raise ValueError(f"unknown DexGen mode {mode!r}; valid: {list(MODES)}")
    return MODES.index(mode)


def step_features(keypoints, qpos, target):
    """(..., K*3), (..., J), (..., J) in the hand's action order -> (..., K*3 + 3J)."""
    cat = torch.cat if isinstance(keypoints, torch.Tensor) else np.concatenate
    return cat([keypoints, qpos, target, target - qpos], -1)


def history_windows(feats: np.ndarray, history: int) -> np.ndarray:
    """(N, F) per-step features -> (N, history, F): each step with the ones before it, the first repeated before the
    episode starts (as a live controller's history is filled at reset)."""
    idx = np.arange(len(feats))[:, None] + np.arange(-history + 1, 1)[None]
    return feats[np.clip(idx, 0, None)]


def future_motion(keypoints: np.ndarray, horizon: int) -> np.ndarray:
    """(N, K*3) keypoints -> (N - horizon, horizon, K*3): keypoints k steps later minus now, k = 1..horizon."""
    n = len(keypoints) - horizon
    return np.stack([keypoints[k : k + n] - keypoints[:n] for k in range(1, horizon + 1)], 1)


class History:
    """A live (B, history, F) buffer of step features."""

    def __init__(self, history: int):
        self.history = history
        self.buf: torch.Tensor | None = None

    def reset(self, feats: torch.Tensor, env_idx: torch.Tensor | None = None) -> None:
        full = feats.unsqueeze(1).expand(-1, self.history, -1).clone()
        if self.buf is None or env_idx is None or self.buf.shape[0] != feats.shape[0]:
            self.buf = full
        else:
            self.buf[env_idx] = full[env_idx]

    def push(self, feats: torch.Tensor) -> torch.Tensor:
        self.buf = torch.cat([self.buf[:, 1:], feats.unsqueeze(1)], 1)
        return self.buf
