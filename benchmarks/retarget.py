"""Retargeting human hands to robot hands: `python -m benchmarks.retarget --data runs/human`.

1. Per-frame latency and fingertip error of `generators.human.retarget.Retargeter` for the Inspire and the Allegro
   hand, on the right hands of EgoDex-layout episodes (frames whose wrist and fingertips are tracked); the human
   fingertips are scaled by `--scale` (a human hand is larger than the robot's) before the robot's fingertips are
   pulled to them, and the error is the distance left, in mm.
2. Replay: each successful grasp episode's right hand, retargeted to the Inspire hand at the control rate (wrist pose and
   finger targets as `pd_wrist_pose` actions), played in DexGrasp-v0 on the episode's scenario, object pose and reset
   seed; the success of those replays says whether the retargeted motion still grasps.
Writes `benchmarks/results/retarget.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, run_cli
from dexenvs.rates import format_rate

HUMAN_SCALE = 1.1  # the stand-in's human hand is the robot's scaled by this about the wrist


@dataclass
class Args(ResultArgs):
    data: ExistingPath = Path("runs/human")
    episodes: Count = 20
    """episodes for the latency and error figures"""
    replays: Count = 20
    scale: float = 1 / HUMAN_SCALE
    out: Path = RESULTS / "retarget.json"

    def outputs(self) -> list[Path]:
        return [self.out]


def latency_and_error(paths: list[Path], hand: str, scale: float) -> dict:
    from generators.human.reader import EgoDexEpisode
    from generators.human.retarget import Retargeter

    r = Retargeter(hand, scale=scale)
    errors = []
    for p in paths:
        wrist, tips, mask = EgoDexEpisode(p).hand("right")
        r.reset()
        for t in np.flatnonzero(mask):
            local = (tips[t] - wrist[t, :3, 3]) @ wrist[t, :3, :3]
            q = r.fingers(local)
            errors.append(r.error(local, q))
    e = np.concatenate(errors) * 1000
    lat = np.array(r.latencies) * 1000
    return dict(frames=len(lat), latency_ms_p50=float(np.median(lat)), latency_ms_p95=float(np.percentile(lat, 95)),
                latency_ms_mean=float(lat.mean()), error_mm_mean=float(e.mean()), error_mm_p95=float(np.percentile(e, 95)))


def replay(path: Path, scale: float) -> bool:
    """Plays the episode's right hand, retargeted to the Inspire hand, in DexGrasp-v0; True if the grasp succeeds."""
    import gymnasium as gym
    import torch

    from dexenvs.robots import matrix_to_rot6d
    from generators.human.reader import EgoDexEpisode
    from generators.human.retarget import Retargeter

    ep = EgoDexEpisode(path)
    with __import__("h5py").File(path, "r") as f:
        scenario, seed = str(f.attrs["scenario"]), int(f.attrs["reset_seed"])
        xy_yaw = json.loads(f.attrs["object_pose"])
        hz = float(f.attrs["sim_hz"])
    wrist, tips, mask = ep.hand("right")
    env = gym.make("DexGrasp-v0").unwrapped
    env.scenario_poses = lambda env_idx: torch.tensor([xy_yaw] * len(env_idx), device=env.device)
    env.reset(seed=seed, options=dict(scenario=scenario))
    r = Retargeter("inspire_right", scale=scale)
    q = np.zeros(len(r.hand.joints))
    success = False
    try:
        for k in range(1, int((len(ep) - 1) * hz / 30) + 1):  # the control steps; the 30 Hz frame nearest each
            t = min(int(round(k * 30 / hz)), len(ep) - 1)
            base, q_t = r(wrist[t], tips[t])
            if mask[t]:
                q = q_t  # an occluded hand keeps its last fingers
            rot6d = matrix_to_rot6d(torch.as_tensor(base[:3, :3], dtype=torch.float32))
            action = torch.cat([torch.as_tensor(base[:3, 3], dtype=torch.float32), rot6d,
                                torch.as_tensor(q, dtype=torch.float32)])[None]
            info = env.step(action)[-1]
            success |= bool(info["success"][0])
            if success or bool(info["fail"][0]):
                break
    finally:
        env.close()
    return success


def main(args: Args) -> dict:
    from generators.human.reader import episodes

    paths = episodes(args.data, "grasp")
    result = dict(data=str(args.data), scale=args.scale, hands={})
    for hand in ("inspire_right", "allegro_right"):
        result["hands"][hand] = latency_and_error(paths[: args.episodes], hand, args.scale)
        h = result["hands"][hand]
        print(f"[retarget] {hand}: {h['frames']} frames, latency p50 {h['latency_ms_p50']:.2f} ms "
              f"(p95 {h['latency_ms_p95']:.2f}), fingertip error mean {h['error_mm_mean']:.2f} mm "
              f"(p95 {h['error_mm_p95']:.2f})", flush=True)
    import h5py

    ok = [p for p in paths if int(h5py.File(p, "r").attrs.get("success", 0))][: args.replays]
    wins = [replay(p, args.scale) for p in ok]
    result["replay"] = dict(episodes=len(wins), successes=int(sum(wins)), per_episode=[str(p) for p in ok])
    print(f"[retarget] stand-in grasps retargeted to the Inspire hand and replayed in DexGrasp-v0: "
          f"{format_rate(sum(wins), len(wins))}")
    save_result(args.out, result, args)
    print(f"[retarget] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
