"""A_EP augmentation (DexFlyWheel sec. 4.2-4.3, on MimicGen's recipe): one seed demo becomes many successful demos
across environments, object poses and objects.

    python -m generators.augment --task grasp --num 200 [--source demos/grasp/seed.hdf5] [--split train]
        [--objects category] [--workers 2] [--resume]

How a new demo is made:
1. The source demo is cut into object-centric subtasks at its phase labels, per hand (`segment_source`).
2. For a new scenario (object O, environment E, pose P), each subtask's wrist targets are carried by its reference's new
   pose, read live at the subtask's start: T_new = T_ref_new * inv(T_ref_src) * T_src. The reference is the object
   (MimicGen's default), the task's second object (the pour's bowl) or the hand's own start pose (the handover giver).
   A round object's or a box's pose is first turned about its axis by its symmetry to be nearest the source's, so a
   can at another yaw keeps the seed's approach instead of dragging the hand around it.
3. Finger targets are replayed verbatim; between subtasks the wrist interpolates from where it was to the subtask's
   first target (at most 2 cm / 0.1 rad a step, at least `--interp-steps` steps when it has to move at all).
4. Two-hand tasks cut at the union of both hands' boundaries: these are the synchronisation points. At each, every
   hand that starts a subtask interpolates while the other holds still, and both go on together.
5. The episode runs in the sim until success or failure (holding the last target for `--tail-steps` after the plan);
   only successes are kept.

Environments and poses (C_aug): `--envs N` draws from the source's environment and the next N-1 train environments,
`--poses N` from the N train poses nearest the source's; the flywheel widens both every iteration. Default: all.

Objects: `--objects seed` keeps the seed's object, `category` (default) uses the split's objects of the seed's
category, `all` every object of the split. A source with several seeds (`generators.seed --scenarios`, one per
category) carries to each object a seed of its own category (`source_for`); the poses and environments are drawn around
the first seed's. The summary reports success per object, which says where the carried grasp
still holds. Attempt k's scenario and reset seed are a pure function of (--seed, k), so results do not depend on the
number of workers, and a resumed run continues at the first attempt it had not finished, adding no duplicates.

Writes `<out>` (robomimic layout, with `data.attrs["generation"]`), `<out>.attempts.jsonl` (one line per attempt, in
attempt order: what resume reads) and `<out stem>.json` (the summary: attempts, successes, success rate, demos per
hour, coverage of O, E, P and O x E x P, per-object success).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import tyro
from mani_skill.utils.registration import REGISTERED_ENVS
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from assets import objects as obj_lib
from dexenvs.experts import EXPERTS, TaskName
from dexenvs.experts.base import slerp
from dexenvs.robots import matrix_to_rot6d, rot6d_to_matrix
from dexenvs.scenarios import Scenario
from generators.dataset import DatasetWriter, Episode, demo_names, open_dataset, read_episode
from generators.recorder import Recorder
from generators.replay import make_env

HAND_DIM = 15  # pd_wrist_pose per hand: position 3, rotation 6D 6, finger targets 6
# What each subtask is carried relative to: "<role>/<phase>" or "<phase>" -> "object" (the default), "target" (the
# task's second object) or "start" (the hand's own start pose: the giver, whose palm the object starts on and leaves)
REFERENCES: dict[str, dict[str, str]] = {
    "grasp": {},
    "lift": {},
    "pour": {"transfer": "target", "pour": "target", "hold": "target"},
    "handover": {"giver/hold": "start", "giver/release": "start", "giver/retreat": "start"},
}
MAX_STEP_POS = 0.02  # m per control step while interpolating (the seeds' own approach moves ~1.7 cm a step)
MAX_STEP_ROT = 0.1  # rad per control step
STILL_POS, STILL_ROT = 0.003, 0.03  # a jump smaller than this needs no interpolation


# ---------------------------------------------------------------------------------------------------------- geometry
def pose_matrix(pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, pos
    return m


def pose7_matrix(p7: np.ndarray) -> np.ndarray:
    """xyz + wxyz quaternion -> 4x4."""
    w, x, y, z = p7[3:7]
    return pose_matrix(p7[:3], Rotation.from_quat([x, y, z, w]).as_matrix())


def symmetric_match(ref_new: np.ndarray, ref_src: np.ndarray, order: int) -> np.ndarray:
    """`ref_new` turned about its own z axis, within the object's symmetry (0: any angle, n: multiples of 2pi/n), to be
    nearest `ref_src` in rotation."""
    if order == 1:
        return ref_new
    m = ref_new[:3, :3].T @ ref_src[:3, :3]
    phi = np.arctan2(m[1, 0] - m[0, 1], m[0, 0] + m[1, 1])  # the z-rotation nearest m
    if order > 1:
        phi = np.round(phi / (2 * np.pi / order)) * (2 * np.pi / order)
    out = ref_new.copy()
    out[:3, :3] = ref_new[:3, :3] @ Rotation.from_euler("z", phi).as_matrix()
    return out


def rotation_angle(r0: np.ndarray, r1: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(r0.T @ r1) - 1) / 2, -1, 1)))


# ---------------------------------------------------------------------------------------------------------- segments
@dataclass(frozen=True)
class Segment:
    hand: int
    start: int  # source steps [start, end)
    end: int
    phase: str
    reference: str  # object | target | start


def hand_roles(task: str, robots: list[str], reset_options: dict) -> list[str]:
    """Each hand's role in the task, the key its subtask references are looked up under."""
    if task != "handover":
        return ["hand"] * len(robots)
    giver = reset_options.get("giver", "right")
    return ["giver" if giver in r else "receiver" for r in robots]


LIFTED = 0.02  # m the object has risen from where it started: it is in hand


def first_lifted(ep: Episode) -> int | None:
    """The first step the object has risen `LIFTED` above where it started (it is in the hand), None if it never does."""
    z = np.asarray(ep.datagen_info["obj_pose"])[:, 2]
    up = np.flatnonzero(z - z[0] > LIFTED)
    return int(up[0]) if len(up) else None


def label_phases(ep: Episode, task: str, robots: list[str]) -> tuple[np.ndarray, list[str]]:
    """Phase labels for a demo recorded without them (a policy rollout), from its datagen info, as MimicGen's
    subtask-termination signals: each hand approaches until the object has risen `LIFTED` above where it started, and
    then carries it (the pour carries it to the bowl, so that subtask references the bowl). The handover's giver holds
    all along, relative to its own start pose, as in the seed."""
    up = first_lifted(ep)
    up = len(ep) if up is None else up
    carry = {"grasp": "lift", "lift": "lift", "pour": "transfer", "handover": "transfer"}[task]
    names = ["approach", carry, "hold"]
    roles = hand_roles(task, robots, ep.reset_options)
    phase = np.zeros((len(ep), len(robots)), np.int8)
    for k, role in enumerate(roles):
        phase[up:, k] = 1
        if role == "giver":
            phase[:, k] = 2
    return phase, names


def segment_source(ep: Episode, task: str, robots: list[str]) -> list[list[Segment]]:
    """Per hand, the source's maximal runs of one phase label, each with the reference it is carried relative to."""
    refs = REFERENCES[task]
    phase, names = np.asarray(ep.datagen_info["phase"]), list(ep.phase_names)
    if not names or phase.ndim != 2 or phase.shape[1] != len(robots) or (phase < 0).all():
        phase, names = label_phases(ep, task, robots)
    roles = hand_roles(task, robots, ep.reset_options)
    out = []
    for k in range(phase.shape[1]):
        segs, start = [], 0
        for t in range(1, len(phase) + 1):
            if t == len(phase) or phase[t, k] != phase[start, k]:
                name = names[phase[start, k]] if phase[start, k] >= 0 else "unlabelled"
                ref = refs.get(f"{roles[k]}/{name}", refs.get(name, "object"))
                segs.append(Segment(k, start, t, name, ref))
                start = t
        out.append(segs)
    return out


def smooth_actions(actions: np.ndarray, segments: list[list[Segment]], sigma: float) -> np.ndarray:
    """Each hand's wrist (position, 6D rotation) and finger targets low-passed by a Gaussian of `sigma` steps within each
    of its subtasks (a grasp's closing stays where it was). A diffusion policy's rollout jitters step to step (DDIM
    chunks, resampled every chunk); a base trained on that jitter learns it back, and worse."""
    if sigma <= 0:
        return actions
    out = np.array(actions, dtype=np.float64)
    for segs in segments:
        cols = slice(segs[0].hand * HAND_DIM, (segs[0].hand + 1) * HAND_DIM)
        for s in segs:
            out[s.start:s.end, cols] = gaussian_filter1d(out[s.start:s.end, cols], sigma, axis=0, mode="nearest")
    return out.astype(actions.dtype)


GRASP_WINDOW = (-3, 3)  # steps around the grasp event averaged for its pose: one rollout step jitters
HELD_STEPS = 6  # the handover's last steps, averaged for the receiver's grasp: success held it still for HOLD_STEPS


def grasp_steps(ep: Episode, task: str) -> np.ndarray:
    """The steps whose targets give a hand's grasp: `GRASP_WINDOW` around the step the object first rose `LIFTED` (it is
    in the hand, as `label_phases` has it), or the handover's last `HELD_STEPS`. The handover's object starts in the air
    on the giver's palm and need not rise (most successful rollouts never lift it 2 cm); a success ends with the
    receiver alone holding it still."""
    if task == "handover":
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
    close. The handover's giver keeps the seed's motion: it holds the object out and lets go, relative to its own start.

    A policy's rollout brings a grasp that works on a new object, but as executed it also brings the policy's jitter,
    pauses and DDIM chunk seams, and a base trained on A_EP of those learns them back, worse each round. Grafted, the
    data keeps the rollout's object and grasp and the seed's clean timing (MimicGen's key poses on a scripted motion)."""
    hands = seed.actions.shape[1] // HAND_DIM
    if rollout.actions.shape[1] != seed.actions.shape[1] or len(robots) != hands:
        raise ValueError(f"seed and rollout actions differ ({seed.actions.shape[1]} vs {rollout.actions.shape[1]}) or do "
                         f"not match the {len(robots)} robots {robots}")
    if seed.reset_options.get("giver") != rollout.reset_options.get("giver"):
        raise ValueError(f"the seed's giver is {seed.reset_options.get('giver')!r} and the rollout's "
                         f"{rollout.reset_options.get('giver')!r}: graft onto a seed with the same giver")
    actions = np.array(seed.actions, dtype=np.float64)
    for k, role in enumerate(hand_roles(task, robots, seed.reset_options)):
        if role == "giver":
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
    steps after it first rose `RISEN`. A firm grasp holds it still there (replayed seed demos: at most 1 cm, median 0);
    a weak policy's rollout often "succeeds" with the object sliding down the fingers (grasp: median 2 cm, up to 5.4),
    and a base trained on those learns the weak grasp. None where it is not measured: the handover, whose object
    changes hands, and an object that never rose that far."""
    if task == "handover":
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


# ---------------------------------------------------------------------------------------------------------- one attempt
class Augmenter:
    """Carries one source demo into new scenarios, one attempt at a time, on one recorded env."""

    def __init__(self, env: Recorder, source: Episode, task: str, robots: list[str], interp_steps: int = 5,
                 tail_steps: int = 20, smooth: float = 0.0):
        self.env, self.src, self.task = env, source, task
        self.base = env.unwrapped
        self.interp_steps, self.tail_steps = interp_steps, tail_steps
        self.hands = len(self.base._hands)
        if source.actions.shape[1] != HAND_DIM * self.hands:
            raise ValueError(f"the source's actions are {source.actions.shape[1]}-D; A_EP needs pd_wrist_pose actions "
                             f"({HAND_DIM} per hand, {HAND_DIM * self.hands} here)")
        self.segments = segment_source(source, task, robots)
        self.bounds = sorted({s.start for segs in self.segments for s in segs}) + [len(source)]
        a = torch.as_tensor(smooth_actions(source.actions, self.segments, smooth), dtype=torch.float64)
        a = a.reshape(len(source), self.hands, HAND_DIM)
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
            n = self._interp_count(firsts)
            for j in range(1, n + 1):  # synchronised: hands without a new subtask hold still
                targets = [(self._interp(self.cur[k][0], firsts[k], j / (n + 1)), self.cur[k][1]) if k in firsts
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

    def _interp_count(self, firsts: dict[int, np.ndarray]) -> int:
        n = 0
        for k, m in firsts.items():
            d = np.linalg.norm(m[:3, 3] - self.cur[k][0][:3, 3])
            ang = rotation_angle(m[:3, :3], self.cur[k][0][:3, :3])
            if d > STILL_POS or ang > STILL_ROT:
                n = max(n, self.interp_steps, int(np.ceil(d / MAX_STEP_POS)), int(np.ceil(ang / MAX_STEP_ROT)))
        return n

    @staticmethod
    def _interp(m0: np.ndarray, m1: np.ndarray, s: float) -> np.ndarray:
        return pose_matrix(m0[:3, 3] + s * (m1[:3, 3] - m0[:3, 3]), slerp(m0[:3, :3], m1[:3, :3], s))


# ---------------------------------------------------------------------------------------------------------- scenarios
def object_pool(space, split: str, mode: str, seed_objects: list[str]) -> list[str]:
    """The objects A_EP carries the source demos onto: the seeds' own (`seed`), every object of their categories
    (`category`) or of the split (`all`); `source` keeps each demo's object."""
    pool = space.train_objects if split == "train" else space.test_objects
    if mode == "source":  # each attempt keeps its source demo's object (the flywheel's rollouts bring the objects)
        return []
    if mode == "seed":
        objs = [o for o in dict.fromkeys(seed_objects) if o in pool]
        if not objs:
            raise ValueError(f"--objects seed: the seed's objects {sorted(set(seed_objects))} are not in the {split} "
                             f"split; use --objects category or all")
        return objs
    if mode == "category":
        cats = sorted({obj_lib.get_spec(o).category for o in seed_objects})
        pool = [o for o in pool if obj_lib.get_spec(o).category in cats]
        if not pool:
            raise ValueError(f"--objects category: the {split} split has no {' or '.join(cats)} objects; "
                             f"use --objects all")
    return list(pool)


def source_for(obj: str, source_objects: list[str], attempt: int) -> int:
    """Which source demo attempt `attempt` carries onto `obj`: one of `obj`'s own demos, else one of its category's,
    else any, in turn by attempt number. With several seeds (one per category) each is carried onto its own
    category: a wide box's lift does not lift a tray."""
    cat = obj_lib.get_spec(obj).category
    for match in (lambda o: o == obj, lambda o: obj_lib.get_spec(o).category == cat, lambda o: True):
        idx = [k for k, o in enumerate(source_objects) if match(o)]
        if idx:
            return idx[attempt % len(idx)]
    raise ValueError("no source demos")


def attempt_scenario(space, split: str, objects: list[str], seed: int, attempt: int,
                     sources: list[str] | None = None, envs: list[str] | None = None,
                     poses: list[int] | None = None) -> tuple[Scenario, int, int]:
    """Attempt k's scenario, reset seed and source demo (an index into the sources' objects): a pure function of
    (seed, k). With `sources` (each source demo's object), the attempt's object is its source's; `envs` and `poses`
    narrow the train split (default: all of it)."""
    ss = np.random.SeedSequence([seed, attempt])
    rng = np.random.default_rng(ss)
    reset_seed = int(ss.generate_state(1)[0] & 0x7FFFFFFF)
    src = 0
    if sources:
        # every source once per round of len(sources) attempts, in an order fixed by (seed, round): drawn with
        # replacement, 100 attempts from 33 sources never drew box_05's only rollout, leaving it out of the handover's D_2
        n = len(sources)
        src = int(np.random.default_rng([seed, attempt // n, n]).permutation(n)[attempt % n])
        objects = [sources[src]]
    return _scenario(space, split, objects, rng, envs, poses), reset_seed, src


def _scenario(space, split: str, objects: list[str], rng, envs: list[str] | None = None,
              poses: list[int] | None = None) -> Scenario:
    if split == "train":
        return Scenario(str(rng.choice(objects)), str(rng.choice(envs or space.train_envs)),
                        int(rng.choice(poses or space.train_poses)))
    pool = [s for s in space.scenarios(split) if s.object_id in objects]
    if not pool:
        raise ValueError(f"the {split} split has no scenario with objects {objects}")
    return pool[rng.integers(len(pool))]


# ---------------------------------------------------------------------------------------------------------- workers
_WORKER: dict = {}


def _init_worker(task: str, source: Path, demos: list[str], obs_mode: str | None, interp_steps: int, tail_steps: int,
                 smooth: float, max_slip: float, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    with open_dataset(source) as f:
        eps = [read_episode(f["data"][d]) for d in demos]
        env_args = json.loads(f["data"].attrs["env_args"])
    env = Recorder(make_env(env_args, obs_mode))
    _WORKER["aug"] = [Augmenter(env, ep, task, list(env_args["robot"]), interp_steps, tail_steps, smooth)
                      for ep in eps]
    _WORKER["sources"] = [f"{source}:{d}" for d in demos]
    _WORKER["task"], _WORKER["max_slip"] = task, max_slip


def _run_attempt(job: tuple[int, str, int, int, int]) -> tuple[int, Episode | None, dict]:
    attempt, scenario, seed, src, iteration = job
    aug: Augmenter = _WORKER["aug"][src]
    t = time.perf_counter()
    ok = aug.attempt(Scenario.parse(scenario), seed)
    source = _WORKER["sources"][src]
    ep = aug.env.episode(dict(generator="a_ep", source=source, flywheel_iteration=iteration,
                              attempt=attempt)) if ok else None
    rec = dict(attempt=attempt, scenario=scenario, seed=seed, source=source, success=ok, steps=aug.steps,
               seconds=round(time.perf_counter() - t, 3))
    if ep is not None and _WORKER["max_slip"]:  # the task succeeded with the object sliding in the hand: not kept
        _, why = slip_rejection(ep, _WORKER["task"], _WORKER["max_slip"])
        if why:
            ep, rec["success"], rec["rejected"] = None, False, why
    return attempt, ep, rec


# ---------------------------------------------------------------------------------------------------------- report
def summarize(records: list[dict], task: str, seed_scenario: str, run_seconds: float, extra: dict) -> dict:
    """Attempts, successes, rate, demos per hour and coverage from the attempt log."""
    succ = [Scenario.parse(r["scenario"]) for r in records if r["success"]]
    tried = [Scenario.parse(r["scenario"]) for r in records]
    per_obj: dict[str, dict] = {}
    for r in records:
        o = per_obj.setdefault(Scenario.parse(r["scenario"]).object_id, dict(attempts=0, successes=0))
        o["attempts"] += 1
        o["successes"] += int(r["success"])
    for o in per_obj.values():
        o["success_rate"] = round(o["successes"] / o["attempts"], 3)
    src = Scenario.parse(seed_scenario)

    def coverage(ss: list[Scenario]) -> dict:
        return dict(objects=len({s.object_id for s in ss}), environments=len({s.env_id for s in ss}),
                    poses=len({s.pose_id for s in ss}), scenarios=len(set(ss)))

    n, k = len(records), len(succ)
    return dict(task=task, **extra, seed_scenario=seed_scenario, attempts=n, successes=k,
                success_rate=round(k / n, 4) if n else 0.0, wall_seconds=round(run_seconds, 1),
                demos_per_hour=round(3600 * k / run_seconds, 1) if run_seconds else 0.0,
                attempts_per_hour=round(3600 * n / run_seconds, 1) if run_seconds else 0.0,
                mean_steps_success=round(float(np.mean([r["steps"] for r in records if r["success"]])), 1) if k else 0,
                successes_on_new_poses=sum(s.pose_id != src.pose_id for s in succ),
                coverage_successes=coverage(succ), coverage_attempts=coverage(tried),
                per_object=dict(sorted(per_obj.items())))


# ---------------------------------------------------------------------------------------------------------- CLI
@dataclass
class Args:
    task: TaskName = "grasp"
    num: int = 100
    """successful demos to keep"""
    source: Path | None = None
    """default: demos/<task>/seed.hdf5 (python -m generators.seed --task <task>)"""
    demo: str | None = None
    """which demo of the source file to carry (default: all of them, one drawn per attempt)"""
    out: Path | None = None
    """default: demos/<task>/aep.hdf5"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    objects: Literal["seed", "category", "all", "source"] = "category"
    """seed: the source demos' objects; category: the split's objects of their categories; all: every object of the
    split (each object gets a source demo of its own object, else of its category, else any); source: each attempt
    keeps its source demo's object (many sources: the flywheel's policy rollouts)"""
    max_attempts: int | None = None
    """stop after this many attempts even if --num is not reached (default 5 x num)"""
    workers: int = 2
    seed: int = 0
    resume: bool = False
    obs_mode: str | None = None
    """record observations in this mode (default: the source's)"""
    interp_steps: int = 5
    tail_steps: int = 20
    envs: int = 0
    """C_aug: draw from the source's environment and the next train environments, this many in all (0: every one)"""
    poses: int = 0
    """C_aug: draw from the train poses nearest the source's, this many (0: every one)"""
    smooth: float = 0.0
    """low-pass each source's targets by a Gaussian of this many steps within each subtask before carrying them (policy
    rollouts as sources: their step-to-step jitter would be learned back); 0: verbatim"""
    max_slip: float = 0.0
    """keep a demo only if its object moved at most this much (m) in the wrist's frame while carried (`hold_slip`):
    carried to a new pose, a firm grasp can come loose and still pass the task's check; 0: every success"""
    iteration: int = 0
    """flywheel iteration recorded in each demo's provenance"""
    progress: bool = True


def _read_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line the last run was killed in the middle of
            break
    return out


def main(args: Args) -> dict:
    env_id = EXPERTS[args.task][0]
    source = args.source or Path("demos") / args.task / "seed.hdf5"
    out = args.out or Path("demos") / args.task / "aep.hdf5"
    log_path = out.with_name(out.name + ".attempts.jsonl")
    summary_path = out.with_suffix(".json")
    with open_dataset(source) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        names = demo_names(f)
        if not names:
            raise ValueError(f"{source} holds no demos")
        if args.demo is not None and args.demo not in names:
            raise ValueError(f"{source} has no demo {args.demo!r}; it has {names}")
        demos = [args.demo] if args.demo else names
        source_objects = [Scenario.parse(str(f["data"][d].attrs["scenario"])).object_id for d in demos]
        seed_ep = read_episode(f["data"][demos[0]])
    if env_args["env_name"] != env_id:
        raise ValueError(f"{source} holds {env_args['env_name']} demos, not {env_id} ({args.task}); "
                         f"pass the {args.task} seed (python -m generators.seed --task {args.task})")
    if args.num < 1:
        raise ValueError(f"--num must be at least 1, got {args.num}")
    if args.smooth < 0:
        raise ValueError(f"--smooth must be at least 0 (a Gaussian's sigma in steps; 0: verbatim), got {args.smooth}")
    max_attempts = args.max_attempts or 5 * args.num
    space = REGISTERED_ENVS[env_id].cls.scenario_space()
    objects = object_pool(space, args.split, args.objects, source_objects)
    if args.objects == "source":
        missing = sorted({o for o in source_objects if not any(s.object_id == o for s in space.scenarios(args.split))}) \
            if args.split != "train" else []
        if missing:
            raise ValueError(f"--objects source: the {args.split} split has no scenarios with {missing}")
        objects = sorted(set(source_objects))
    if (args.envs or args.poses) and args.split != "train":
        raise ValueError(f"--envs and --poses narrow the train split; the {args.split} split is a fixed list")
    envs, poses = space.around(Scenario.parse(seed_ep.scenario), args.envs, args.poses)
    extra = dict(source=f"{source}:{args.demo or '*'}", sources=len(demos), split=args.split, objects_mode=args.objects,
                 objects=objects, envs=len(envs), poses=len(poses), smooth=args.smooth, max_slip=args.max_slip,
                 workers=args.workers, seed=args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not args.resume:
        raise FileExistsError(f"{out} exists; pass --resume to continue it, or remove it (and {log_path.name})")
    if not args.resume:
        log_path.unlink(missing_ok=True)

    writer_args = dict(env_args)
    if args.obs_mode:
        writer_args["env_kwargs"] = dict(env_args["env_kwargs"], obs_mode=args.obs_mode)
    writer = DatasetWriter(out, writer_args, resume=args.resume)
    if "generation" in writer.attrs:  # resuming: the attempts must keep meaning the same scenarios
        before = json.loads(writer.attrs["generation"])
        changed = {k: (before.get(k), v) for k, v in extra.items() if k != "workers" and before.get(k) != v}
        if changed:
            raise ValueError(f"--resume with other settings than {out} was made with: "
                             + ", ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items()))
    records = _read_log(log_path)
    log_path.write_text("".join(json.dumps(r) + "\n" for r in records))  # drop a torn last line
    logged = {r["attempt"] for r in records}
    for name, m in writer.meta.items():  # written, but killed before its log line
        a = m["provenance"].get("attempt")
        if a is not None and a not in logged:
            records.append(dict(attempt=a, scenario=m["scenario"], seed=m["seed"], success=True, steps=0, seconds=0.0,
                                run=-1, wall=0.0, demo=name))
    records.sort(key=lambda r: r["attempt"])
    successes = sum(r["success"] for r in records)
    next_attempt = max((r["attempt"] for r in records), default=-1) + 1
    run = max((r.get("run", 0) for r in records), default=-1) + 1
    prior_seconds = sum(max((r["wall"] for r in records if r.get("run") == k), default=0.0) for k in range(run))


    def jobs():
        a = next_attempt
        while a < max_attempts:
            scenario, reset_seed, src = attempt_scenario(space, args.split, objects, args.seed, a,
                                                         source_objects if args.objects == "source" else None,
                                                         envs, poses)
            if args.objects != "source" and len(demos) > 1:
                src = source_for(scenario.object_id, source_objects, a)
            yield a, str(scenario), reset_seed, src, args.iteration
            a += 1

    t_start = time.perf_counter()
    bar = tqdm(total=args.num, initial=min(successes, args.num), desc=f"A_EP {args.task}", unit="demo",
               disable=not args.progress)
    init = (args.task, source, demos, args.obs_mode, args.interp_steps, args.tail_steps, args.smooth, args.max_slip)

    def accept(ep: Episode | None, rec: dict) -> None:
        nonlocal successes
        rec = dict(rec, run=run, wall=round(time.perf_counter() - t_start, 2), demo=None)
        if ep is not None:
            rec["demo"] = writer.add(ep)  # the episode first, then its log line: a kill between is recovered above
            successes += 1
            bar.update(1)
        with log_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")
        records.append(rec)
        bar.set_postfix(attempts=len(records), rate=f"{successes / len(records):.0%}")

    try:
        if successes < args.num:
            if args.workers <= 1:
                _init_worker(*init, None)
                for job in jobs():
                    accept(*_run_attempt(job)[1:])
                    if successes >= args.num:
                        break
            else:
                run_ordered(args.workers, _init_worker, (*init, 1), _run_attempt, jobs(), accept,
                            lambda: successes >= args.num)
    finally:
        bar.close()
        seconds = prior_seconds + (time.perf_counter() - t_start)
        summary = summarize(records, args.task, seed_ep.scenario, seconds, extra)
        writer.attrs["generation"] = json.dumps(summary)
        done = successes >= args.num or len(records) >= max_attempts
        writer.close(consolidate=done)  # an interrupted run keeps its linked episode files for --resume
        summary_path.write_text(json.dumps(summary, indent=2))
    print(f"[augment] {args.task}: {summary['successes']}/{summary['attempts']} attempts succeeded "
          f"({summary['success_rate']:.1%}), {summary['demos_per_hour']:.0f} demos/h on {args.workers} worker(s); "
          f"coverage O={summary['coverage_successes']['objects']} E={summary['coverage_successes']['environments']} "
          f"P={summary['coverage_successes']['poses']} OxExP={summary['coverage_successes']['scenarios']}; "
          f"wrote {out} and {summary_path}")
    return summary


def run_ordered(workers: int, initializer, initargs: tuple, fn, jobs, accept, enough) -> None:
    """Runs `fn(job)` -> (job number, *result) for numbered jobs on `workers` processes set up by `initializer`, a few
    in flight each, and calls `accept(*result)` in job order until `enough()`, so what is kept is the same whatever
    the number of workers."""
    ctx = mp.get_context("spawn")  # SAPIEN and torch do not survive fork
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=initializer, initargs=initargs) as pool:
        pending, ready, want = {}, {}, None
        jobs = iter(jobs)
        for job in jobs:  # prime
            pending[pool.submit(fn, job)] = job[0]
            want = job[0] if want is None else want
            if len(pending) >= 2 * workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                pending.pop(fut)
                attempt, *result = fut.result()
                ready[attempt] = result
            while want in ready and not enough():
                accept(*ready.pop(want))
                want += 1
            if enough():
                for fut in pending:
                    fut.cancel()
                return
            for job in jobs:
                pending[pool.submit(fn, job)] = job[0]
                if len(pending) >= 2 * workers:
                    break


if __name__ == "__main__":
    main(tyro.cli(Args))
