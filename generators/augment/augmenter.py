"""`Augmenter`: carries one source demo into new scenarios, one attempt at a time, on one recorded env (A_EP's inner
loop, MimicGen's recipe).

For a new scenario each subtask's wrist targets are carried by its reference's new pose, read live at the subtask's
start: T_new = T_ref_new * inv(T_ref_src) * T_src. Finger targets replay verbatim; between subtasks the wrist
interpolates from where it was to the subtask's first target. Two-hand tasks cut at the union of both hands'
boundaries: at each, every hand that starts a subtask interpolates while the other holds still, and both go on
together. The episode runs until success or failure, holding the last target for `tail_steps` after the plan.
"""

from __future__ import annotations

import numpy as np
import torch

from assets import objects as obj_lib
from dexenvs.robots import rot6d_to_matrix
from dexenvs.scenarios import Scenario
from dexenvs.trajectory import Episode, Recorder
from generators.augment.geometry import (HAND_DIM, interpolate, interpolation_steps, pose7_matrix, pose_matrix,
                                         symmetric_match)
from generators.augment.phases import segment_source


class Augmenter:
    def __init__(self, env: Recorder, source: Episode, task: str, robots: list[str], interp_steps: int = 5,
                 tail_steps: int = 20):
        self.env, self.src, self.task = env, source, task
        self.base = env.unwrapped
        self.interp_steps, self.tail_steps = interp_steps, tail_steps
        self.hands = len(self.base._hands)
        if source.actions.shape[1] != HAND_DIM * self.hands:
            raise ValueError(f"the source's actions are {source.actions.shape[1]}-D; A_EP needs pd_wrist_pose actions "
                             f"({HAND_DIM} per hand, {HAND_DIM * self.hands} here)")
        self.segments = segment_source(source, task, robots)
        self.bounds = sorted({s.start for segs in self.segments for s in segs}) + [len(source)]
        a = torch.as_tensor(source.actions, dtype=torch.float64).reshape(len(source), self.hands, HAND_DIM)
        self.src_pos = a[..., :3].numpy()
        self.src_rot = rot6d_to_matrix(a[..., 3:9]).numpy()
        self.src_fingers = a[..., 9:].numpy().astype(np.float32)
        self.labels = [tuple(next(s.phase for s in segs if s.start <= t < s.end) for segs in self.segments)
                       for t in range(len(source))]
        spec = self.base.spec
        self.max_steps = spec.max_episode_steps if spec and spec.max_episode_steps else 2 * len(source) + 50

    def _source_ref(self, ref: str, hand: int, t: int) -> np.ndarray:
        dg = self.src.datagen_info
        if ref == "start":
            return pose7_matrix(dg[f"wrist_pose_{hand}"][0])
        return pose7_matrix(dg["obj_pose" if ref == "object" else "target_pose"][t])

    def _live_ref(self, ref: str, hand: int, src_ref: np.ndarray) -> np.ndarray:
        if ref == "start":
            return self.start_new[hand]
        poses = self.base.reference_poses()
        if ref == "object":
            live, order = poses["obj_pose"], obj_lib.symmetry(self.base._assets[0])
        else:
            live, order = poses["target_pose"], 0  # the bowl is round
        return symmetric_match(pose7_matrix(live[0].cpu().numpy().astype(np.float64)), src_ref, order)

    def _wrist_now(self, k: int) -> np.ndarray:
        hs = self.base.hand_state(k)
        return pose7_matrix(torch.cat([hs["wrist_pos"][0], hs["wrist_quat"][0]]).cpu().numpy().astype(np.float64))

    def _step(self, targets: list[tuple[np.ndarray, np.ndarray]], labels: tuple) -> bool:
        """Sends one wrist-pose target + finger targets per hand; returns whether the episode is over."""
        action = torch.cat([self.base.wrist_action(*(torch.as_tensor(np.asarray(x, np.float32), device=self.base.device)[None]
                                                     for x in (m[:3, 3], m[:3, :3], f))) for m, f in targets], -1)
        _, _, _, _, info = self.env.step(action, phase=labels)
        self.cur = targets
        self.steps += 1
        self.success = bool(info["success"][0])
        return self.success or bool(info["fail"][0]) or self.steps >= self.max_steps

    def attempt(self, scenario: Scenario, seed: int) -> bool:
        """Runs one generated episode in `scenario`; the Recorder holds it afterwards. Returns success."""
        self.env.reset(seed=seed, options=dict(self.src.reset_options, scenario=str(scenario)))
        self.start_new = [self._wrist_now(k) for k in range(self.hands)]
        self.cur = [(self.start_new[k], self.src_fingers[0, k]) for k in range(self.hands)]
        self.steps, self.success = 0, False
        transform = [np.eye(4)] * self.hands
        for t0, t1 in zip(self.bounds[:-1], self.bounds[1:]):
            firsts = {}
            for segs in self.segments:
                for seg in (s for s in segs if s.start == t0):
                    k = seg.hand
                    src_ref = self._source_ref(seg.reference, k, t0)
                    transform[k] = self._live_ref(seg.reference, k, src_ref) @ np.linalg.inv(src_ref)
                    firsts[k] = transform[k] @ pose_matrix(self.src_pos[t0, k], self.src_rot[t0, k])
            n = interpolation_steps([(self.cur[k][0], m) for k, m in firsts.items()], self.interp_steps)
            for j in range(1, n + 1):  # synchronised: hands without a new subtask hold still
                targets = [(interpolate(self.cur[k][0], firsts[k], j / (n + 1)), self.cur[k][1]) if k in firsts
                           else self.cur[k] for k in range(self.hands)]
                if self._step(targets, self.labels[t0]):
                    return self.success
            for t in range(t0, t1):
                targets = [(transform[k] @ pose_matrix(self.src_pos[t, k], self.src_rot[t, k]), self.src_fingers[t, k])
                           for k in range(self.hands)]
                if self._step(targets, self.labels[t]):
                    return self.success
        for _ in range(self.tail_steps):  # the plan is done: hold on until the success condition has held long enough
            if self._step(self.cur, self.labels[-1]):
                break
        return self.success
