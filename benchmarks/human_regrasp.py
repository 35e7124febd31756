"""Human fingertip motion as the DexGen controller's command: `python -m benchmarks.human_regrasp --data runs/human
--checkpoint runs/dexgen/checkpoint.pt`.

Each EgoDex-layout regrasp episode (`python -m generators.human.regrasp`) is retargeted to the Allegro hand
(`generators.human.regrasp.fingertip_path`: tracked fingertips in the wrist frame -> joint targets -> the keypoints the
controller is commanded in, hand frame) and its keypoint path is tracked (`PathCommand`) in DexRegrasp-v0 on the
episode's scenario and reset seed (the same object, start grasp and goal): through the DexGen controller, and directly
(retargeted to joint targets per step, `DirectController`). Success is reaching the episode's goal within `--steps`.
The first episode of each executor is saved as an mp4 with `--video`. Writes `benchmarks/results/human_regrasp.json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, DexError, ExistingPath, run_cli
from dexenvs.rates import format_rate, rate_record


@dataclass
class Args(ResultArgs):
    data: ExistingPath = Path("runs/human")
    """a folder holding regrasp/<i>.hdf5 (python -m generators.human.regrasp)"""
    checkpoint: ExistingPath = Path("runs/dexgen/checkpoint.pt")
    steps: Count = 60
    """control steps an execution may take"""
    video: Path | None = None
    """a folder for the first episode's mp4 per executor"""
    out: Path = RESULTS / "human_regrasp.json"

    def outputs(self) -> list[Path]:
        return [self.out]


def execute(w, path: np.ndarray, seed: int, scenario: str, steps: int, frames: list | None = None) -> bool:
    from agents.dexgen.commands import PathCommand

    w.reset(seed=seed, options=dict(scenario=scenario))
    cmd = PathCommand(w, path)
    cmd.reset(seed)
    for _ in range(steps):
        info = w.step(cmd())[-1]
        if frames is not None:
            f = w.render()
            f = f.cpu().numpy() if hasattr(f, "cpu") else np.asarray(f)
            frames.append(f[0] if f.ndim == 4 else f)
        if bool(np.asarray(info["success"]).reshape(-1)[0]) or bool(np.asarray(info["fail"]).reshape(-1)[0]):
            break
    return bool(np.asarray(info["success"]).reshape(-1)[0])


def main(args: Args) -> dict:
    import gymnasium as gym
    import h5py

    import dexenvs  # noqa: F401
    from agents.dexgen.controller import DexGenController, DirectController
    from agents.dexgen.kinematics import KeypointKinematics
    from agents.dexgen.train import load_dexgen
    from dexenvs.results import atomic_write
    from generators.human.reader import EgoDexEpisode, episodes
    from generators.human.regrasp import ENV_ID, MAX_STEPS, fingertip_path

    paths = episodes(args.data, "regrasp")
    if not paths:
        raise DexError(f"{args.data} holds no regrasp episodes",
                       hint=f"python -m generators.human.regrasp --episodes 10 --out {args.data}")
    model = load_dexgen(args.checkpoint)

    def make(video: bool):
        return gym.make(ENV_ID, control_mode="pd_joint_pos", goals_per_episode=1, max_episode_steps=MAX_STEPS,
                        render_mode="rgb_array" if video else None)

    executors = dict(dexgen=DexGenController(make(bool(args.video)), model=model, alpha=1.0),
                     direct=DirectController(make(bool(args.video)), model.horizon))
    kin = KeypointKinematics(executors["direct"])
    wins = {k: [] for k in executors}
    for i, p in enumerate(paths):
        with h5py.File(p, "r") as f:
            seed, scenario = int(f.attrs["reset_seed"]), str(f.attrs["scenario"])
        path = fingertip_path(EgoDexEpisode(p), executors["direct"].unwrapped.control_freq, kin)
        for name, w in executors.items():
            frames = [] if args.video and i == 0 else None
            wins[name].append(execute(w, path, seed, scenario, args.steps, frames))
            if frames:
                import imageio.v2 as iio

                args.video.mkdir(parents=True, exist_ok=True)
                with atomic_write(args.video / f"human_regrasp_{name}.mp4") as tmp:
                    iio.mimsave(tmp, frames, fps=20, format="FFMPEG")
        print(f"[human_regrasp] {p.name}: " + ", ".join(f"{k} {'ok' if v[-1] else 'failed'}" for k, v in wins.items()),
              flush=True)
    for w in executors.values():
        w.close()
    result = dict(episodes=len(paths), data=str(args.data),
                  executors={k: dict(rate_record(int(sum(v)), len(v)), per_episode=v) for k, v in wins.items()})
    for k, v in wins.items():
        print(f"[human_regrasp] human regrasps executed {k}: {format_rate(sum(v), len(v))}")
    save_result(args.out, result, args)
    print(f"[human_regrasp] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
