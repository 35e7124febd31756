"""Env throughput next to raw physics, in one run: `python -m benchmarks.throughput --task grasp`.

1. `state` mode: the scripted expert drives the env for `--steps` control steps (reset on episode end); only
   `env.step` is timed, and every joint drive target the controller set is recorded per control step.
2. raw SAPIEN: the same scene is reset to the same episodes and the recorded targets are written straight to the
   PhysX joints, followed by the same number of `scene.step()` substeps: identical motion and contacts, no
   controller, observation, reward or evaluation code. overhead = env time / raw time - 1.
3. `rgb` mode: the same expert loop with the 128x128 head camera rendered every step.
4. object library build from an empty cache (`--build-library`, two worker processes).
Numbers are printed side by side and written as JSON under benchmarks/results/.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import torch
import dexenvs  # noqa: F401
from benchmarks.common import ResultArgs, save_result
from dexenvs.cli import Count, NonNegative, run_cli
from dexenvs.tasks import TaskName, get_task


@dataclass
class Args(ResultArgs):
    task: TaskName = "grasp"
    steps: Count = 600
    """control steps per measurement"""
    repeats: Count = 3
    """alternating env/raw rounds; the best of each is reported (these machines are noisy)"""
    rgb_steps: NonNegative = 100
    build_library: bool = True
    out: Path = Path("benchmarks/results")

    def outputs(self) -> list[Path]:
        return [self.out / f"throughput_{self.task}.json"]


def _episodes(env, expert, steps: int, seed0: int, record: bool):
    """Runs the expert for `steps` control steps; returns seconds, steps, and (seed, targets per step) per episode."""
    log, t, n, ep = [], 0.0, 0, 0
    while n < steps:
        seed = seed0 + ep
        env.reset(seed=seed)  # may rebuild the scene for a new object: fetch the joints afterwards
        joints = _joints(env)
        expert.reset()
        targets = []
        for _ in range(expert.horizon):
            action, _ = expert.act()  # the expert's own planning is not the env's cost: time env.step alone
            t0 = time.perf_counter()
            _, _, term, _, _ = env.step(action)
            t += time.perf_counter() - t0
            n += 1
            if record:
                targets.append([float(j.drive_target[0]) for j in joints])
            if bool(term[0]) or n >= steps:
                break
        log.append((seed, targets))
        ep += 1
    return t, n, log


def _joints(env) -> list:
    """The PhysX joints of every hand in the env (one or several agents)."""
    return [j._objs[0] for hand in env._hands for j in hand.robot.get_active_joints()]


def _raw(env, log) -> float:
    """Replays recorded drive targets on the bare PhysX scene: set targets, then scene.step() per substep."""
    substeps = env.sim_freq // env.control_freq
    t = 0.0
    for seed, targets in log:
        env.reset(seed=seed)
        px_joints, scene = _joints(env), env.scene.sub_scenes[0]
        t0 = time.perf_counter()
        for row in targets:
            for j, v in zip(px_joints, row):
                j.set_drive_target(v)
            for _ in range(substeps):
                scene.step()
        t += time.perf_counter() - t0
    return t


def _maniskill_floor(sim_freq: int, control_freq: int, steps: int) -> dict:
    """ManiSkill's own Empty-v1 task with the same hand and substeps, holding still, against the same raw loop: the
    overhead of ManiSkill's BaseEnv step itself, which every task built on it pays."""
    env = gym.make("Empty-v1", robot_uids="floating_inspire_hand_right", control_mode="pd_joint_delta_pos",
                   sim_config=dict(sim_freq=sim_freq, control_freq=control_freq)).unwrapped
    env.reset(seed=0)
    action = torch.zeros(env.action_space.shape)
    for _ in range(20):
        env.step(action)
    t0 = time.perf_counter()
    for _ in range(steps):
        env.step(action)
    t_env = time.perf_counter() - t0
    joints = [j._objs[0] for j in env.agent.robot.get_active_joints()]
    targets = [float(j.drive_target[0]) for j in joints]
    scene = env.scene.sub_scenes[0]
    t0 = time.perf_counter()
    for _ in range(steps):
        for j, v in zip(joints, targets):
            j.set_drive_target(v)
        for _ in range(sim_freq // control_freq):
            scene.step()
    t_raw = time.perf_counter() - t0
    env.close()
    return dict(env_steps_per_s=steps / t_env, raw_steps_per_s=steps / t_raw, overhead=t_env / t_raw - 1)


def main(args: Args) -> dict:
    spec = get_task(args.task)
    env_id, expert_cls = spec.env_id, spec.expert
    res: dict = dict(task=args.task, env_id=env_id, machine=platform.node(), cpu_count=os.cpu_count(),
                     torch_threads=torch.get_num_threads())
    env = gym.make(env_id).unwrapped
    expert = expert_cls(env)
    res["sim_freq"], res["control_freq"] = env.sim_freq, env.control_freq
    _episodes(env, expert, 50, 0, record=False)  # warm-up: assets cached, code paths compiled
    env_best, raw_best = float("inf"), float("inf")
    for r in range(args.repeats):
        t_env, n, log = _episodes(env, expert, args.steps, 1000 * r, record=True)
        t_raw = _raw(env, log)
        env_best, raw_best = min(env_best, t_env / n), min(raw_best, t_raw / n)
        print(f"round {r}: env {n / t_env:7.1f} steps/s   raw SAPIEN {n / t_raw:7.1f} steps/s   "
              f"overhead {t_env / t_raw - 1:+.1%}", flush=True)
    res["state_steps_per_s"] = 1 / env_best
    res["maniskill_floor"] = _maniskill_floor(env.sim_freq, env.control_freq, args.steps)
    res["raw_sapien_steps_per_s"] = 1 / raw_best
    res["overhead"] = env_best / raw_best - 1
    env.close()

    renv = gym.make(env_id, obs_mode="rgb").unwrapped
    rexp = expert_cls(renv)
    _episodes(renv, rexp, 10, 0, record=False)
    t_rgb, n_rgb, _ = _episodes(renv, rexp, args.rgb_steps, 0, record=False)
    res["rgb_steps_per_s"] = n_rgb / t_rgb
    renv.close()

    if args.build_library:
        from assets import objects as obj_lib

        with tempfile.TemporaryDirectory() as d:
            os.environ["DEXSUITE_CACHE"] = d
            obj_lib._loaded.clear()
            t0 = time.perf_counter()
            obj_lib.build_library(workers=2, progress=False)
            res["library_build_s"] = time.perf_counter() - t0
            res["library_objects"] = len(obj_lib.OBJECTS)
        os.environ.pop("DEXSUITE_CACHE")
        obj_lib._loaded.clear()

    print()
    print(f"{env_id} on {res['cpu_count']} CPU cores, sim {res['sim_freq']} Hz / control {res['control_freq']} Hz "
          f"({res['sim_freq'] // res['control_freq']} substeps per step)")
    print(f"  state  {res['state_steps_per_s']:8.1f} steps/s | raw SAPIEN scene.step loop {res['raw_sapien_steps_per_s']:8.1f}"
          f" steps/s | env overhead over raw physics {res['overhead']:+.1%} (target <= +15%)")
    fl = res["maniskill_floor"]
    print(f"  ManiSkill's own Empty-v1, same hand and substeps: {fl['env_steps_per_s']:8.1f} steps/s | raw "
          f"{fl['raw_steps_per_s']:8.1f} steps/s | BaseEnv overhead {fl['overhead']:+.1%}")
    renderer = f"{torch.cuda.get_device_name()} renderer" if torch.cuda.is_available() else "CPU renderer (lavapipe)"
    print(f"  rgb    {res['rgb_steps_per_s']:8.1f} steps/s (128x128 head camera, {renderer})")
    if "library_build_s" in res:
        print(f"  object library from an empty cache: {res['library_objects']} objects in {res['library_build_s']:.1f} s "
              f"(2 workers)")
    args.out.mkdir(parents=True, exist_ok=True)
    save_result(args.out / f"throughput_{args.task}.json", res, args)
    return res


if __name__ == "__main__":
    run_cli(main, Args)
