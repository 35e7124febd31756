"""`python -m generators.human.standin --task grasp --episodes 300`: EgoDex-layout episodes made from simulation, a
STAND-IN for human video (no EgoDex data can be fetched here). Nothing in them was captured from a person: the hand
motion is the suite's scripted expert driving a robot hand, dressed as a human skeleton, and the video shows the robot.
They exist so that what reads human data (trajectory prediction, retargeting to robot hands, co-training) has data in
the exact layout real EgoDex files will arrive in.

One episode:
1. the task's scripted expert plays a scenario in sim, recording each robot hand's wrist pose and five fingertips per
   control step. Scenarios come from the task's train split (every train object and environment, not only the few a
   robot dataset's seeds cover) and, for `--wide` of the episodes, from object poses drawn from the task's workspace
   widened `WIDEN` times, off the train split's fixed pose ids that robot data uses; never a held-out object or
   environment, since this data trains the policies those test. An episode whose expert fails is replayed on another
   draw, up to `TRIES` draws (the last is kept, marked `success` 0);
2. the paths are resampled from the control rate to 30 Hz (positions linearly, rotations by slerp);
3. a human skeleton follows them (`hand_skeleton`, `upper_body`): the wrist is the robot's wrist; knuckles and
   metacarpals sit at fixed human offsets in the wrist frame; the fingertips are the robot's, scaled about the wrist by
   `HUMAN_SCALE` (a human hand is a little larger); the two joints between knuckle and tip come from planar two-link IK
   bent toward the back of the hand, the distal one on the line to the tip. Every hand joint carries the wrist's
   rotation, so the stored wrist frame is the Inspire hand's base frame (fingers +y, thumb side +x, palm normal +z on
   the right hand, -z on the left), recorded in the `wrist_frame` attribute. The upper body is a static seated
   skeleton under the head, its elbows from the same IK. A hand the task does not use rests on the table beside the
   body, wrist confidence 0;
4. an egocentric camera (`HeadPath`): a head above the table's near edge looking at the object, placed at random per
   episode, swaying a little and smoothly;
5. capture noise (`CaptureNoise`, scaled by `--noise`, 0 turns it off): Gaussian jitter on joint positions (most on
   fingertips), fingertip occlusions (the distal finger joints' confidence drops to 0 and their positions freeze), an
   occasional loss of a whole hand (wrist confidence 0, the hand frozen), and confidence 0 for hand joints outside the
   camera's view;
   the object's world pose goes to `transforms/object` with a tracker's jitter (EgoDex tracks no objects; co-training
   a state policy needs them, `generators.human.to_robot`), and the world's up axis to the `world_up` attribute;
6. with `--video`, the video: the sim rendered from the head camera at `VIDEO_SIZE` after every control step (its
   intrinsic EgoDex's scaled down), each 30 Hz frame the render nearest in time. Off by default: the CPU renderer costs
   several times the simulation, and pose-only consumers (trajectory prediction from keypoints, retargeting) do not
   need it; the reader raises only when frames are asked for.

Files go to `<out>/<task>/<i>.hdf5` and `<i>.mp4`, each written whole then renamed into place by this process (the
workers only compute), the video before the HDF5 file, so an episode whose HDF5 file exists is complete. A rerun skips
complete episodes; `--overwrite` deletes the task's episodes and starts over.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Annotated

import numpy as np

from dexenvs.cli import AtLeast, Count, Fraction, NonNegative, UsageError, run_cli
from dexenvs.tasks import TaskName
from generators.human import layout
from generators.human.skeleton import (CaptureNoise, HeadPath, capture, frames_at, hand_skeleton, pose, resample,
                                        resample_rotations, resting_hand, upper_body)

HUMAN_SCALE = 1.1
WIDEN = 1.6
TRIES = 4
VIDEO_SIZE = (320, 180)  # width, height: EgoDex's 16:9 at a sixth of its resolution
SOURCE = ("simulation stand-in for human video: a scripted robot-hand expert in ManiSkill, dressed as a human "
          "skeleton; not captured from a person")
WRIST_FRAME = "Inspire hand base frame: fingers +y, thumb side +x, palm normal +z (right hand) / -z (left hand)"
CAMERA_FRAME = "x right, y down, z forward (the intrinsic's pinhole convention)"


# ---- one episode ------------------------------------------------------------------------------------------------
@dataclass
class SimPaths:
    """One expert episode as recorded at the control rate (n samples: the reset state, then one per step)."""

    sides: tuple[str, ...]  # each robot hand's side, in the env's hand order
    wrist_pos: np.ndarray  # (n, hands, 3) world
    wrist_rot: np.ndarray  # (n, hands, 3, 3)
    tips: np.ndarray  # (n, hands, 5, 3): thumb, index, middle, ring, little (pinky)
    hz: float
    frames: np.ndarray | None  # (n, H, W, 3) uint8, rendered from `head`
    head: HeadPath
    success: bool
    scenario: str
    language: str
    object_pose: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """where the object stood at reset (x, y, yaw): the scenario's pose, or the widened one that replaced it"""
    reset_seed: int = 0
    obj_pos: np.ndarray | None = None  # (n, 3) world: the object, as an object tracker would follow it
    obj_rot: np.ndarray | None = None  # (n, 3, 3)


@dataclass
class StandinEpisode:
    """An episode ready to write: what the HDF5 file holds, and the video's frames."""

    transforms: dict[str, np.ndarray]  # camera and every joint, (N, 4, 4) float32
    confidences: dict[str, np.ndarray]  # every joint, (N,) float32
    intrinsic: np.ndarray
    attrs: dict
    frames: np.ndarray | None  # (N, H, W, 3) uint8 at 30 Hz


def human_episode(sim: SimPaths, noise: CaptureNoise, rng: np.random.Generator, task: str) -> StandinEpisode:
    """Resamples a sim episode to 30 Hz and dresses it as a captured human (the module's steps 2-5)."""
    n = frames_at(len(sim.wrist_pos), sim.hz)
    camera = sim.head.poses(np.arange(n) / layout.FPS)
    hands, used = {}, {}
    for side in layout.SIDES:
        used[side] = side in sim.sides
        if used[side]:
            k = sim.sides.index(side)
            pos = resample(sim.wrist_pos[:, k], sim.hz, n)
            wrist = pose(pos, resample_rotations(sim.wrist_rot[:, k], sim.hz, n))
            tips = pos[:, None] + HUMAN_SCALE * (resample(sim.tips[:, k], sim.hz, n) - pos[:, None])
        else:
            wrist, tips = resting_hand(sim.head, side, n)
        hands.update(hand_skeleton(wrist, tips, side))
    joints = upper_body(sim.head, {s: hands[layout.wrist(s)][:, :3, 3] for s in layout.SIDES}) | hands
    poses, conf = capture(joints, camera, used, noise, rng)
    tracked = {}
    if sim.obj_pos is not None:  # beyond EgoDex: what an object tracker adds (layout.OBJECT)
        obj = pose(resample(sim.obj_pos, sim.hz, n), resample_rotations(sim.obj_rot, sim.hz, n))
        obj[:, :3, 3] += rng.normal(0.0, noise.object_sigma, (n, 3))
        tracked[layout.OBJECT] = obj.astype(np.float32)
    frames = None
    if sim.frames is not None:
        index = np.minimum(np.round(np.arange(n) * sim.hz / layout.FPS).astype(int), len(sim.frames) - 1)
        frames = sim.frames[index]
    attrs = dict(task=task, llm_description=sim.language, source=SOURCE, scenario=sim.scenario,
                 success=int(sim.success), sim_hz=float(sim.hz), wrist_frame=WRIST_FRAME, camera_frame=CAMERA_FRAME,
                 object_pose=json.dumps(list(sim.object_pose)), reset_seed=sim.reset_seed, world_up=json.dumps([0, 0, 1]))
    return StandinEpisode({layout.CAMERA: camera.astype(np.float32)} |
                          {j: poses[j].astype(np.float32) for j in layout.JOINTS} | tracked,
                          {j: conf[j].astype(np.float32) for j in layout.JOINTS},
                          layout.DEFAULT_INTRINSIC.astype(np.float32), attrs, frames)


TEXT = dict(grasp="pick up the {obj} with the {hand} hand and lift it off the table",
            pour="pick up the {obj} with the {hand} hand and pour the beads in it into the bowl",
            lift="lift the {obj} off the table with both hands",
            handover="pass the {obj} from the {giver} hand to the {receiver} hand")


def describe(task: str, category: str, sides: tuple[str, ...], giver: str | None) -> str:
    """The episode's language description, EgoDex's `llm_description` (written by a template here)."""
    receiver = next((s for s in layout.SIDES if s != giver), None)
    text = TEXT.get(task, "do the {task} task with the {obj}")
    return text.format(obj=category.replace("_", " "), hand=sides[0], giver=giver, receiver=receiver, task=task)


# ---- the simulation side (runs in the workers) ------------------------------------------------------------------
@dataclass(frozen=True)
class StandinConfig:
    task: str = "grasp"
    episodes: int = 100
    out: Path = Path("runs/human")
    seed: int = 0
    workers: int = 2
    video: bool = False
    noise: float = 1.0
    """capture-noise scale: 1 the `CaptureNoise` defaults, 0 clean"""
    wide: float = 0.3
    """fraction of episodes with the object at a pose off the train split's pose ids, in a widened workspace"""

    def folder(self) -> Path:
        return self.out / self.task


def wide_pose(workspace, rng: np.random.Generator) -> tuple[float, float, float]:
    """(x, y, yaw) from `workspace` widened `WIDEN` times about its centre (a full-turn yaw range stays one)."""
    def widened(lo: float, hi: float) -> float:
        c, h = (lo + hi) / 2, (hi - lo) / 2 * WIDEN
        return float(rng.uniform(c - h, c + h))

    lo, hi = workspace.yaw
    yaw = float(rng.uniform(-np.pi, np.pi)) if hi - lo >= 2 * np.pi - 1e-6 else widened(lo, hi)
    return widened(*workspace.x), widened(*workspace.y), yaw


class _Worker:
    """One sim env of the task, with the render camera (when filming) at the video's size and intrinsic."""

    def __init__(self, cfg: StandinConfig):
        import gymnasium as gym

        from dexenvs.tasks import get_task

        self.cfg, self.spec = cfg, get_task(cfg.task)
        kwargs = {}
        if cfg.video:
            k = layout.DEFAULT_INTRINSIC * (VIDEO_SIZE[0] / layout.IMAGE_SIZE[0])
            k[2, 2] = 1.0
            kwargs["human_render_camera_configs"] = dict(width=VIDEO_SIZE[0], height=VIDEO_SIZE[1], fov=None,
                                                         intrinsic=k)
        self.env = gym.make(self.spec.env_id, **kwargs).unwrapped
        self.space = self.spec.scenario_space()

    def close(self) -> None:
        self.env.close()

    def set_pose(self, xy_yaw: tuple[float, float, float] | None) -> None:
        """Where the next reset puts the object: a widened-workspace pose, or (None) the scenario's own."""
        import torch

        env = self.env
        if xy_yaw is None:
            env.__dict__.pop("scenario_poses", None)
        else:
            env.scenario_poses = lambda env_idx: torch.tensor([xy_yaw] * len(env_idx), device=env.device)

    def film(self, head: HeadPath, t: float) -> np.ndarray:
        """The scene from the head camera at time t, (H, W, 3) uint8."""
        import sapien

        cv_to_sapien = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # x fwd, y left, z up
        cam = head.poses(np.array([t]))[0]
        cam[:3, :3] = cam[:3, :3] @ cv_to_sapien
        self.env.scene.human_render_cameras["render_camera"].camera.set_local_pose(sapien.Pose(cam))
        return self.env.render_rgb_array()[0].cpu().numpy()

    def play(self, rng: np.random.Generator, episode: int) -> SimPaths:
        """One expert episode on a scenario drawn from `rng`."""
        import torch

        from assets import objects as obj_lib
        from dexenvs.robots import quat_to_matrix

        env, spec = self.env, self.spec
        scenario = self.space.sample("train", rng)
        self.set_pose(wide_pose(self.space.workspace, rng) if rng.random() < self.cfg.wide else None)
        reset_seed = int(rng.integers(2**31))
        env.reset(seed=reset_seed, options=dict(spec.expert_options(episode), scenario=str(scenario)))
        object_pose = tuple(float(v) for v in env.scenario_poses(torch.zeros(1, dtype=torch.long))[0])
        expert = spec.expert(env)
        expert.reset()
        head = HeadPath.draw(rng, env.obj_center()[0].cpu().numpy().astype(np.float64))
        hands = range(len(env._hands))
        rows, objects, frames, success = [], [], [], False
        for t in range(expert.horizon + 1):
            if t:
                action, _ = expert.act()
                info = env.step(action)[-1]
                success |= bool(info["success"][0])
            states = [env.hand_state(k) for k in hands]
            rows.append([(s["wrist_pos"][0].cpu().numpy(), quat_to_matrix(s["wrist_quat"])[0].cpu().numpy(),
                          s["fingertips"][0].cpu().numpy()) for s in states])
            objects.append((env.obj.pose.p[0].cpu().numpy(), quat_to_matrix(env.obj.pose.q)[0].cpu().numpy()))
            if self.cfg.video:
                frames.append(self.film(head, t / env.control_freq))
            if t and bool(info["fail"][0]):
                break
        pos, rot, tips = (np.array([[r[i] for r in row] for row in rows], dtype=np.float64) for i in range(3))
        sides = tuple(h.hand_side for h in env._hands)
        language = describe(spec.name, obj_lib.get_spec(scenario.object_id).category, sides,
                            getattr(env, "giver_side", None))
        return SimPaths(sides, pos, rot, tips, float(env.control_freq), np.stack(frames) if frames else None, head,
                        success, str(scenario), language, object_pose, reset_seed,
                        np.array([o[0] for o in objects], dtype=np.float64),
                        np.array([o[1] for o in objects], dtype=np.float64))


def _run(w: _Worker, episode: int) -> StandinEpisode:
    """Episode `episode`: the first of up to TRIES scenario draws whose expert succeeds, as a captured human."""
    for attempt in range(TRIES):
        rng = np.random.default_rng([w.cfg.seed, episode, attempt])
        sim = w.play(rng, episode)
        if sim.success:
            break
    return human_episode(sim, CaptureNoise().scaled(w.cfg.noise), rng, w.cfg.task)


# ---- files (written by the parent) ------------------------------------------------------------------------------
def episode_paths(folder: Path, i: int) -> tuple[Path, Path]:
    return folder / f"{i}.hdf5", folder / f"{i}.mp4"


def is_complete(folder: Path, i: int, video: bool) -> bool:
    h5, mp4 = episode_paths(folder, i)
    return h5.is_file() and (mp4.is_file() or not video)


def write_episode(folder: Path, i: int, ep: StandinEpisode, provenance: dict) -> Path:
    """Writes `<i>.mp4` (when the episode has frames) then `<i>.hdf5`, each atomically."""
    import h5py
    import imageio.v2 as iio

    from dexenvs.results import atomic_write

    h5, mp4 = episode_paths(folder, i)
    if ep.frames is not None:
        with atomic_write(mp4) as tmp:
            iio.mimsave(tmp, list(ep.frames), fps=layout.FPS, macro_block_size=2)
    with atomic_write(h5) as tmp:
        with h5py.File(tmp, "w") as f:
            for j, v in ep.transforms.items():
                f.create_dataset(f"transforms/{j}", data=v)
            for j, v in ep.confidences.items():
                f.create_dataset(f"confidences/{j}", data=v)
            f.create_dataset(layout.INTRINSIC, data=ep.intrinsic)
            for k, v in ep.attrs.items():
                f.attrs[k] = v
            f.attrs["provenance"] = json.dumps(provenance)
    return h5


def clear(folder: Path) -> None:
    """Deletes the episodes (and any temporary files) of a task folder, nothing else."""
    for p in list(folder.glob("*.hdf5")) + list(folder.glob("*.mp4")):
        if p.stem.isdigit() or p.name.startswith("."):
            p.unlink()


def generate(cfg: StandinConfig, overwrite: bool = False, progress: bool = True) -> list[Path]:
    """Makes episodes 0 .. cfg.episodes-1 of `cfg.task` under `cfg.out/<task>/`; returns the HDF5 files this call
    wrote (complete episodes already there are kept, unless `overwrite`)."""
    from tqdm import tqdm

    from dexenvs.executor import executor
    from dexenvs.results import provenance

    folder = cfg.folder()
    folder.mkdir(parents=True, exist_ok=True)
    if overwrite:
        clear(folder)
    todo = [i for i in range(cfg.episodes) if not is_complete(folder, i, cfg.video)]
    prov = provenance(dict(asdict(cfg), generator="generators.human.standin", tries=TRIES, widen=WIDEN,
                           human_scale=HUMAN_SCALE, noise_model=asdict(CaptureNoise())))
    written = []
    bar = tqdm(total=cfg.episodes, initial=cfg.episodes - len(todo), desc=f"human stand-in {cfg.task}",
               disable=not progress)
    try:
        for i, ep in zip(todo, executor(cfg.workers).map(_Worker, (cfg,), _run, todo)):
            written.append(write_episode(folder, i, ep, prov))
            bar.update(1)
    finally:
        bar.close()
    return written


# ---- command line -----------------------------------------------------------------------------------------------
@dataclass
class Args:
    task: TaskName = "grasp"
    episodes: Count = 100
    out: Path = Path("runs/human")
    """episodes go to <out>/<task>/<i>.hdf5 and <i>.mp4"""
    workers: Count = 2
    seed: NonNegative = 0
    video: bool = False
    """also render each episode's egocentric video <i>.mp4 (several times the simulation's cost)"""
    noise: Annotated[float, AtLeast(0)] = 1.0
    """capture-noise scale: 1 the default tracker noise, 0 clean poses"""
    wide: Fraction = 0.3
    """fraction of episodes with the object at a pose beyond the train split's pose ids"""
    overwrite: bool = False
    """delete the task's existing episodes first (without it, a rerun adds only the missing ones)"""

    def config(self) -> StandinConfig:
        return StandinConfig(self.task, self.episodes, self.out, self.seed, self.workers, self.video, self.noise,
                             self.wide)

    def check(self) -> None:
        from dexenvs.robots import ROBOTS
        from dexenvs.tasks import get_task

        if not all(ROBOTS[r].floating for r in get_task(self.task).env_cls.default_robots):
            raise UsageError("task", self.task, "the stand-in needs a task played by floating Inspire hands")


def main(args: Args) -> list[Path]:
    written = generate(args.config(), overwrite=args.overwrite)
    print(f"[human] {args.task}: wrote {len(written)} episode(s); {args.episodes} in {args.config().folder()}")
    return written


if __name__ == "__main__":
    run_cli(main, Args)
