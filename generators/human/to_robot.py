"""`python -m generators.human.to_robot --data runs/human --task grasp --like demos/grasp/aep.hdf5 --out
runs/human_inspire.hdf5`: EgoDex-layout human episodes as a robot dataset for co-training (`agents.train --human`).

Each episode's hand (the right one: the robot's) is taken at the robot's control rate (the 30 Hz frame nearest each
control step), retargeted to the robot hand (`Retargeter`: wrist pose, finger joint targets in the joint limits; a frame
whose wrist or fingertips the tracker lost keeps the last fingers), and written in the embodiment-agnostic
representation (`agents.embodiment`): the retargeted wrist, the robot's own fingertips at the retargeted joints, the
tracked object; actions are the next step's wrist pose relative to this one and the next step's finger targets. The
dataset records the env and robot of `--like` (the robot dataset it will be mixed with), `embodiment: human`, and each
demo's source episode. Episodes the file marks failed (`success` 0) are left out.

The representation sees the object, so episodes need its pose (`transforms/object`, as an object tracker gives it; the
stand-in writes it). Real EgoDex files have none: they would need an object pose estimator run on their video first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from agents.embodiment import REPRESENTATION, features, relative_actions
from dexenvs.cli import DexError, ExistingPath, Positive, UsageError, check_output, run_cli
from dexenvs.tasks import TaskName
from dexenvs.trajectory import DatasetWriter, Episode, env_args, make_env
from generators.human import layout
from generators.human.reader import EgoDexEpisode, episodes
from generators.human.retarget import HANDS, Retargeter


def control_freq(args: dict) -> float:
    env = make_env(args)
    try:
        return float(env.unwrapped.control_freq)
    finally:
        env.close()


def convert_episode(ep: EgoDexEpisode, r: Retargeter, hz: float, side: str = "right") -> tuple[dict, np.ndarray]:
    """(features per control step, relative actions) of one episode's `side` hand."""
    objects = ep.object_poses()
    if objects is None:
        raise DexError(f"{ep.path} has no object poses (transforms/{layout.OBJECT}); co-training a state policy needs "
                       "them", hint="EgoDex tracks no objects: run an object pose estimator on the video first")
    wrist, tips, tracked = ep.hand(side)
    steps = ep.control_frames(hz)
    r.reset()
    bases, qs, q = [], [], None
    for t in steps:
        base, q_t = r(wrist[t], tips[t])
        if q is None or tracked[t]:
            q = q_t
        bases.append(base)
        qs.append(q)
    bases_t = torch.as_tensor(np.array(bases))
    robot_tips = np.array([r.fingertips(q) for q in qs])  # in the wrist frame: to the world through each base
    tips_world = robot_tips @ bases_t[:, :3, :3].numpy().transpose(0, 2, 1) + bases_t[:, None, :3, 3].numpy()
    prev = torch.cat([bases_t[:1], bases_t[:-1]])
    f = features(bases_t, prev, torch.as_tensor(objects[steps]), torch.as_tensor(tips_world),
                 torch.as_tensor(ep.up))
    nxt = torch.cat([bases_t[1:], bases_t[-1:]])  # the human's next pose is its "target"
    q_next = torch.as_tensor(np.array(qs[1:] + qs[-1:]))
    actions = relative_actions(nxt, bases_t[0], q_next)
    return {k: v.float().numpy() for k, v in f.items()}, actions.float().numpy()


def convert(data: Path, task: str, like: Path, out: Path, hand: str = "inspire_right", scale: float = 1.0,
            progress: bool = True) -> Path:
    """Writes the human episodes of `data/<task>/` retargeted to `hand`, in the env of the robot dataset `like`."""
    robot_args = env_args(like)
    if robot_args.get("control_mode") != "pd_wrist_pose":
        raise UsageError("like", like, f"is recorded with {robot_args.get('control_mode')!r}; co-training needs "
                                       "pd_wrist_pose (a floating hand's wrist pose)")
    paths = episodes(data, task)
    if not paths:
        raise DexError(f"{data} holds no {task} episodes", hint=f"python -m generators.human.standin --task {task}")
    hz = control_freq(robot_args)
    r = Retargeter(hand, scale=scale)
    writer = DatasetWriter(out, dict(robot_args, representation=REPRESENTATION, embodiment="human",
                                     human=dict(data=str(data), hand=hand, scale=scale)))
    skipped = 0
    with writer:
        for p in tqdm(paths, desc=f"retarget {task} -> {hand}", disable=not progress):
            with h5py.File(p, "r") as f:
                attrs = dict(f.attrs)
            if not int(attrs.get("success", 1)):
                skipped += 1
                continue
            feats, actions = convert_episode(EgoDexEpisode(p), r, hz)
            n = len(actions)
            writer.add(Episode(actions=actions, obs=feats, rewards=np.zeros(n, np.float32), dones=np.zeros(n, bool),
                               states=np.zeros((n, 0), np.float32), datagen_info={},
                               scenario=str(attrs.get("scenario", "")), seed=int(attrs.get("reset_seed", 0)),
                               success=True, provenance=dict(source=str(p), embodiment="human")))
    print(f"[to_robot] {len(paths) - skipped} {task} episodes retargeted to {hand} -> {out}"
          + (f" ({skipped} marked failed left out)" if skipped else ""))
    return out


@dataclass
class Args:
    data: ExistingPath = Path("runs/human")
    """a folder of EgoDex-layout episodes (<task>/<i>.hdf5)"""
    like: ExistingPath = Path("demos/grasp/aep.hdf5")
    """the robot dataset this one will be mixed with: its env, robot and control rate"""
    out: Path = Path("runs/human_inspire.hdf5")
    task: TaskName = "grasp"
    hand: str = "inspire_right"
    scale: Positive = 1.0
    """human fingertips are scaled by this (the stand-in's hand is the robot's x1.1: 0.91)"""
    progress: bool = True

    def check(self) -> None:
        if self.hand not in HANDS:
            raise UsageError("hand", self.hand, f"valid: {sorted(HANDS)}")
        if not self.hand.endswith("right"):
            raise UsageError("hand", self.hand, "co-training retargets the right hand")
        check_output("out", self.out)


def main(args: Args) -> Path:
    return convert(args.data, args.task, args.like, args.out, args.hand, args.scale, args.progress)


if __name__ == "__main__":
    run_cli(main, Args)
