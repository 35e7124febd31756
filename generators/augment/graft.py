"""A rollout's grasp on the seed's motion (`graft_grasp`), and how firmly a demo holds its object while carrying it
(`hold_slip`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from dexenvs.robots import matrix_to_rot6d, rot6d_to_matrix
from dexenvs.tasks import get_task
from dexenvs.trajectory import Episode
from generators.augment.geometry import HAND_DIM, pose7_matrix, pose_matrix
from generators.augment.phases import LIFTED, first_lifted

GRASP_WINDOW = (-3, 3)  # steps around the grasp event averaged for its pose: one rollout step jitters
HELD_STEPS = 6  # a handover's last steps, averaged for the receiver's grasp: success held it still for longer


def grasp_steps(ep: Episode, task: str) -> np.ndarray:
    """The steps whose targets give a hand's grasp: `GRASP_WINDOW` around the step the object first rose `LIFTED` (it is
    in the hand, as `label_phases` has it), or the last `HELD_STEPS` where the task reads the grasp at the end (the
    handover's object starts in the air on the giver's palm and need not rise; a success ends with the receiver alone
    holding it still)."""
    if get_task(task).grasp_at_end:
        return np.arange(max(0, len(ep) - HELD_STEPS), len(ep))
    t = first_lifted(ep)
    if t is None:
        raise ValueError(f"demo in {ep.scenario} never lifts its object {LIFTED * 100:.0f} cm: it has no grasp")
    return np.arange(max(0, t + GRASP_WINDOW[0]), min(len(ep), t + GRASP_WINDOW[1]))


def hand_grasp(ep: Episode, hand: int, task: str = "grasp") -> tuple[np.ndarray, np.ndarray]:
    """(4x4 wrist target in the object's frame, finger targets) of one hand at the grasp event, averaged over its
    `grasp_steps`."""
    ts = grasp_steps(ep, task)
    a = torch.as_tensor(ep.actions[ts, hand * HAND_DIM:(hand + 1) * HAND_DIM], dtype=torch.float64)
    rots = rot6d_to_matrix(a[:, 3:9]).numpy()
    rel = [np.linalg.inv(pose7_matrix(ep.datagen_info["obj_pose"][k])) @ pose_matrix(a[j, :3].numpy(), rots[j])
           for j, k in enumerate(ts)]
    m = np.eye(4)
    m[:3, 3] = np.mean([r[:3, 3] for r in rel], axis=0)
    m[:3, :3] = Rotation.from_matrix(np.stack([r[:3, :3] for r in rel])).mean().as_matrix()
    return m, a[:, 9:].numpy().mean(axis=0)


def graft_grasp(seed: Episode, rollout: Episode, task: str, robots: list[str]) -> Episode:
    """The seed's motion with the rollout's grasp: every wrist target of each grasping hand moved by one offset in the
    wrist's frame, D = inv(K_seed) K_rollout (K: the wrist in the object's frame at the grasp event), so the hands come
    down onto and carry the object the way the rollout held it; the finger targets shift toward the rollout's as they
    close. A giving hand (the handover's giver) keeps the seed's motion: it holds the object out and lets go, relative
    to its own start.

    A policy's rollout brings a grasp that works on a new object, but as executed it also brings the policy's jitter,
    pauses and DDIM chunk seams, and a base trained on A_EP of those learns them back, worse each round. Grafted, the
    data keeps the rollout's object and grasp and the seed's clean timing (MimicGen's key poses on a scripted motion)."""
    spec = get_task(task)
    hands = seed.actions.shape[1] // HAND_DIM
    if rollout.actions.shape[1] != seed.actions.shape[1] or len(robots) != hands:
        raise ValueError(f"seed and rollout actions differ ({seed.actions.shape[1]} vs {rollout.actions.shape[1]}) or do "
                         f"not match the {len(robots)} robots {robots}")
    if seed.reset_options != rollout.reset_options:
        raise ValueError(f"the seed's reset options are {seed.reset_options} and the rollout's "
                         f"{rollout.reset_options}: graft onto a seed with the same options (the same giver)")
    actions = np.array(seed.actions, dtype=np.float64)
    for k, role in enumerate(spec.hand_roles(robots, seed.reset_options)):
        if role in spec.giving_roles:
            continue
        (k_seed, f_seed), (k_roll, f_roll) = hand_grasp(seed, k, task), hand_grasp(rollout, k, task)
        offset = np.linalg.inv(k_seed) @ k_roll
        cols = slice(k * HAND_DIM, (k + 1) * HAND_DIM)
        a = torch.as_tensor(actions[:, cols])
        moved = np.tile(np.eye(4), (len(seed), 1, 1))
        moved[:, :3, :3], moved[:, :3, 3] = rot6d_to_matrix(a[:, 3:9]).numpy(), a[:, :3].numpy()
        moved = moved @ offset
        fingers = a[:, 9:].numpy()
        closing = np.linalg.norm(f_seed - fingers[0])
        w = (np.clip(np.linalg.norm(fingers - fingers[0], axis=1) / closing, 0, 1) if closing > 1e-3
             else np.zeros(len(seed)))  # a hand whose fingers do not move (the lift's flat palms) keeps the seed's
        actions[:, cols] = np.concatenate([moved[:, :3, 3], matrix_to_rot6d(torch.as_tensor(moved[:, :3, :3])).numpy(),
                                           fingers + w[:, None] * (f_roll - f_seed)], axis=1)
    prov = dict(generator="graft_grasp", seed=seed.provenance, rollout=rollout.provenance,
                rollout_scenario=rollout.scenario)
    return replace(seed, actions=actions.astype(seed.actions.dtype), scenario=rollout.scenario, provenance=prov,
                   success=rollout.success)


RISEN = 0.06  # m above where the object started: from here on a firm grasp carries it rigidly


def hold_slip(ep: Episode, task: str) -> float | None:
    """How far the object slides in the hand while carried (m): its largest displacement in the wrist's frame over the
    steps after it first rose `RISEN`. A firm grasp holds it still there (replayed seed demos barely move); a weak
    policy's rollout often "succeeds" with the object sliding down the fingers, and a base trained on those learns the
    weak grasp. None where it is not measured: a task whose object changes hands, and an object that never rose that
    far."""
    if not get_task(task).slip_measurable:
        return None
    obj = np.asarray(ep.datagen_info["obj_pose"])[:, :3]
    up = np.flatnonzero(obj[:, 2] - obj[0, 2] > RISEN)
    if not len(up):
        return None
    wrist = np.asarray(ep.datagen_info["wrist_pose_0"])[up[0]:]
    rel = Rotation.from_quat(wrist[:, [4, 5, 6, 3]]).inv().apply(obj[up[0]:] - wrist[:, :3])  # poses are wxyz
    return float(np.linalg.norm(rel - rel[0], axis=1).max())


def slip_rejection(ep: Episode, task: str, max_slip: float) -> tuple[float | None, str | None]:
    """(hold_slip, why it is not kept or None): a success whose object slid more than `max_slip` (0: no limit)."""
    slip = hold_slip(ep, task)
    if max_slip and slip is not None and slip > max_slip:
        return slip, f"slip {slip * 1000:.1f} mm"
    return slip, None
