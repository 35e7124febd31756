"""The hardware env on the loopback robot: `python -m benchmarks.hardware --ckpt runs/grasp_dp/checkpoint.pt`.

1. Adversarial commands: `--adversarial-steps` steps of random, extreme, NaN, oscillating and jumping actions through
   `HardwareEnv` at the task's 20 Hz; every target that reached a driver is audited against the joint limits, the
   per-step change limit and the wrist workspace (aim: no violation), and the safety layer's interventions are
   counted by kind.
2. A trained grasp policy through `agents.deploy`: its success in sim and on the loopback robot with 0 / 30 / 100 ms
   command latency and with sensor noise, side by side on the same episodes, and the control loop's periods (p50 /
   p99) and overruns with the policy in the loop.
Writes `benchmarks/results/hardware.json`.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import dexenvs  # noqa: F401
from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, ExistingPath, run_cli
from dexenvs.hardware.drivers import Devices
from dexenvs.hardware.env import HardwareEnv
from dexenvs.hardware.loopback import LoopbackRobot
from dexenvs.hardware.safety import SafetyConfig
from dexenvs.rates import format_rate

KINDS = ("random", "extreme", "nan", "oscillating", "jump")
CONDITIONS = {"0 ms": dict(latency_ms=0, noise=0.0), "30 ms": dict(latency_ms=30, noise=0.0),
              "100 ms": dict(latency_ms=100, noise=0.0), "30 ms + noise": dict(latency_ms=30, noise=0.005)}


@dataclass
class Args(ResultArgs):
    ckpt: ExistingPath | None = None
    """a grasp policy (python -m agents.train); without it only the adversarial part runs"""
    episodes: Count = 20
    adversarial_steps: Count = 10_000
    episode_steps: Count = 200
    """adversarial steps between resets"""
    work: Path = Path("runs/hardware_bench")
    """scratch folder for the deploy runs' datasets"""
    out: Path = RESULTS / "hardware.json"

    def outputs(self) -> list[Path]:
        return [self.out]


def adversarial(steps: int, episode_steps: int, seed: int = 0) -> dict:
    robot = LoopbackRobot("DexGrasp-v0")
    env = HardwareEnv("DexGrasp-v0", Devices(joints=robot.drivers(), object_pose=robot.pose_source()), SafetyConfig(),
                      reset_hook=robot.reset_hook)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    refused = stops = 0
    by_kind = {k: 0 for k in KINDS}
    prev_sent = None
    violations = {"joint_limit": 0, "step_limit": 0, "workspace": 0}
    audited = 0
    t0 = time.perf_counter()
    try:
        for k in tqdm(range(steps), desc="adversarial steps"):
            if k % episode_steps == 0:
                env.reset(seed=seed * 100_000 + k // episode_steps)
                prev_sent = None
            kind = KINDS[rng.integers(len(KINDS))]
            by_kind[kind] += 1
            if kind == "random":
                a = rng.uniform(low, high)
            elif kind == "extreme":
                a = np.where(rng.random(low.shape) < 0.5, low, high) * rng.choice([1.0, 100.0])
            elif kind == "nan":
                a = rng.uniform(low, high)
                a[rng.integers(len(a))] = rng.choice([np.nan, np.inf, -np.inf])
            elif kind == "oscillating":
                a = low if (k // 2) % 2 else high
            else:  # a sudden jump far outside the action space
                a = rng.uniform(low, high) + rng.normal(0, 5.0, low.shape)
            before = [len(d.sent) for d in env.devices.joints]
            try:
                _, _, _, _, info = env.step(a.astype(np.float32))
            except ValueError:
                refused += 1
                assert [len(d.sent) for d in env.devices.joints] == before, "a refused action sent something"
                continue
            if info["safety"]["stopped"]:
                stops += 1
                env.clear_stop()
                prev_sent = None
            after = [len(d.sent) for d in env.devices.joints]
            if after != before:  # audit what reached the drivers this step
                full = np.zeros(len(env.joint_names))
                for d, idx in zip(env.devices.joints, env._driver_idx):
                    full[idx] = d.sent[-1]
                for v in env.safety.violations(full, prev_sent):
                    violations[v] += 1
                prev_sent = full
                audited += 1
        counts, timing = dict(env.safety.counts), env.timing()
    finally:
        env.close()
        robot.close()
    return dict(steps=steps, seconds=round(time.perf_counter() - t0, 1), commands_by_kind=by_kind,
                refused_non_finite=refused, targets_audited=audited, violations_at_driver=violations,
                interventions=counts, stops_cleared=stops, timing=timing)


def policy_runs(args: Args) -> dict:
    from agents import deploy

    out = {}
    for name, cond in CONDITIONS.items():
        work = args.work / name.replace(" ", "_").replace("+", "and")
        shutil.rmtree(work, ignore_errors=True)
        rep = deploy.deploy(deploy.Args(ckpt=args.ckpt, task="grasp", episodes=args.episodes, out=work,
                                        sim=name == "0 ms", progress=True, **cond))
        out[name] = dict(cond, successes=rep["successes"], episodes=rep["episodes"], interval=rep["interval"],
                         loopback_truth=sum(bool(r["loopback_success"]) for r in rep["results"]),
                         timing=rep["timing"], interventions=rep["interventions"],
                         stopped=sum(r["stopped"] is not None for r in rep["results"]))
        if "sim" in rep:
            out["sim"] = dict(successes=rep["sim"]["successes"], episodes=rep["sim"]["episodes"],
                              interval=rep["sim"]["interval"])
    return out


def main(args: Args) -> dict:
    result = dict(adversarial=adversarial(args.adversarial_steps, args.episode_steps))
    a = result["adversarial"]
    print(f"[hardware] {a['steps']} adversarial steps ({a['seconds']:.0f} s): {a['targets_audited']} targets reached "
          f"the drivers, violations {a['violations_at_driver']}; {a['refused_non_finite']} non-finite actions refused; "
          f"interventions {({k: v for k, v in a['interventions'].items() if v})}; control loop p50 "
          f"{a['timing']['p50_ms']:.1f} ms p99 {a['timing']['p99_ms']:.1f} ms, {a['timing']['overruns']} overruns")
    if args.ckpt is not None:
        result["policy"] = policy_runs(args)
        for name, r in result["policy"].items():
            line = f"[hardware] grasp policy, {name:>14}: success {format_rate(r['successes'], r['episodes'])}"
            if "timing" in r:
                t = r["timing"]
                line += (f"; loop p50 {t['p50_ms']:.1f} ms p99 {t['p99_ms']:.1f} ms, {t['overruns']} overruns; "
                         f"safety stops {r['stopped']}")
            print(line)
    save_result(args.out, result, args)
    print(f"[hardware] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
