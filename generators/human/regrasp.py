"""`python -m generators.human.regrasp --episodes 10 --out runs/human`: EgoDex-layout in-hand regrasps, a STAND-IN for
human video of one (as `generators.human.standin` is for the grasp; nothing here was captured from a person).

DexRegrasp-v0's planner expert regrasps an object in the Allegro hand to one nearby goal (the first of up to `TRIES`
reset seeds on which it succeeds); each control step's joint targets give the Allegro's fingertips, which are turned
into a human right hand's (the inverse of the retargeting map, `Retargeter.human_from_robot`; the little finger, which
the Allegro lacks, follows the ring finger) at the hand's base pose, then dressed and captured as the stand-in does
(skeleton, head camera, tracker noise). Files go to
`<out>/regrasp/<i>.hdf5`, with the scenario and reset seed that replay the same object and goal.

`fingertip_path` goes the other way, as any human regrasp would: the tracked fingertips in the wrist frame, retargeted
to the Allegro hand, as the keypoint path (tips and finger middles, hand frame) a keypoint-command controller follows
(`agents.dexgen.commands.PathCommand`, `benchmarks.human_regrasp`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np

from dexenvs.cli import AtLeast, Count, NonNegative, run_cli
from generators.human.skeleton import CaptureNoise, HeadPath

ENV_ID = "DexRegrasp-v0"
HAND = "allegro_right"
MAX_STEPS = 150
TRIES = 20  # reset seeds tried per episode: the planner drops the object in most regrasps


def _env():
    import gymnasium as gym

    import dexenvs  # noqa: F401

    return gym.make(ENV_ID, control_mode="pd_joint_pos", goals_per_episode=1, max_episode_steps=MAX_STEPS).unwrapped


def play(env, seed: int) -> dict:
    """The planner's regrasp from reset seed `seed`: joint targets per control step (the reset's first), success."""
    from dexenvs.experts.regrasp import RegraspPlanner
    from dexenvs.robots import quat_to_matrix

    env.reset(seed=seed)
    planner = RegraspPlanner(env)
    planner.reset()
    qs = [env.agent.controller._target_qpos[0].cpu().numpy().copy()]
    success = False
    for _ in range(MAX_STEPS):
        targets, _ = planner.act()
        info = env.step(targets)[-1]
        qs.append(targets[0].cpu().numpy().copy())
        success = bool(info["success"][0])
        if success or bool(info["fail"][0]):
            break
    base = env.agent.robot.pose
    return dict(q=np.array(qs), success=success, scenario=str(env.scenarios[0]), seed=seed,
                hz=float(env.control_freq), base_pos=base.p[0].cpu().numpy().astype(np.float64),
                base_rot=quat_to_matrix(base.q)[0].cpu().numpy().astype(np.float64),
                focus=env.obj_center()[0].cpu().numpy().astype(np.float64))


def human_tips(r, q: np.ndarray) -> np.ndarray:
    """(5, 3) human fingertips in the human wrist frame (at the robot hand's size) for Allegro joints `q`."""
    tips = r.human_from_robot(r.fingertips(q))
    tips[4] = tips[3] + (tips[3] - tips[2])  # the little finger, beside the ring finger as the ring is beside the middle
    return tips


def human_regrasp(sim: dict, rng: np.random.Generator, noise: float = 1.0):
    """The planner's regrasp as a captured human right hand (`standin.StandinEpisode`)."""
    from generators.human.retarget import Retargeter
    from generators.human.standin import SimPaths, human_episode

    r = Retargeter(HAND)
    wrist_rot = sim["base_rot"] @ r.R  # human wrist axes: the inverse of Retargeter.wrist
    tips = np.array([sim["base_pos"] + human_tips(r, q) @ wrist_rot.T for q in sim["q"]])
    n = len(tips)
    paths = SimPaths(("right",), np.repeat(sim["base_pos"][None, None], n, 0),
                     np.repeat(wrist_rot[None, None], n, 0), tips[:, None], sim["hz"], None,
                     HeadPath.draw(rng, sim["focus"]), sim["success"], sim["scenario"],
                     "turn the object in the right hand to a new grasp", reset_seed=sim["seed"])
    return human_episode(paths, CaptureNoise().scaled(noise), rng, "regrasp")


def fingertip_path(ep, hz: float, kin, scale: float = 1 / 1.1) -> np.ndarray:
    """(T, K, 3): an EgoDex-layout episode's right hand at the control rate `hz`, retargeted to the Allegro hand, as
    its keypoints (`KeypointKinematics` order) in the hand frame; frames whose hand the tracker lost keep the last."""
    from generators.human.retarget import Retargeter

    r = Retargeter(HAND, scale=scale)
    wrist, tips, tracked = ep.hand("right")
    out, q = [], None
    for t in ep.control_frames(hz):
        local = (tips[t] - wrist[t][:3, 3]) @ wrist[t][:3, :3]
        if q is None or tracked[t]:
            q = r.fingers(local)
        out.append(kin.fk(q))
    return np.array(out)


@dataclass
class Args:
    episodes: Count = 10
    out: Path = Path("runs/human")
    """episodes go to <out>/regrasp/<i>.hdf5"""
    seed: NonNegative = 0
    noise: Annotated[float, AtLeast(0)] = 1.0
    """capture-noise scale: 1 the stand-in's tracker noise, 0 clean poses"""


def main(args: Args) -> list[Path]:
    from generators.human.standin import write_episode

    env = _env()
    folder = args.out / "regrasp"
    written = []
    try:
        for i in range(args.episodes):
            path = folder / f"{i}.hdf5"
            if path.exists():
                continue
            for k in range(TRIES):
                sim = play(env, seed=args.seed * 100_000 + i * TRIES + k)
                if sim["success"]:
                    break
            ep = human_regrasp(sim, np.random.default_rng([args.seed, i]), args.noise)
            written.append(write_episode(folder, i, ep, dict(generator="generators.human.regrasp", seed=args.seed)))
    finally:
        env.close()
    print(f"[human] regrasp: wrote {len(written)} episode(s) to {folder}")
    return written


if __name__ == "__main__":
    run_cli(main, Args)
