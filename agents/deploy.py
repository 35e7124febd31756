"""Run a trained policy on hardware: `python -m agents.deploy --task grasp --ckpt runs/grasp_dp/checkpoint.pt
--hardware loopback|inspire-serial|inspire-modbus [--episodes 10] [--latency-ms 30 --noise 0.002]`.

The policy (any checkpoint `agents.evaluate` takes, a residual on top included) acts through `HardwareEnv` at the
task's control rate; every target passes the safety layer. Each episode is recorded in the project's dataset format
with the hardware's observations and measured states (`<out>/deploy.hdf5`, so real data can feed the flywheel), the
safety layer's interventions go to `<out>/interventions.jsonl`, and the report (`<out>/report.json`) puts the success
on the hardware next to the same policy on the same episodes in sim. `--emulate` runs the Inspire hand's protocol
emulator in place of a hand. An e-stop: `touch <out>/ESTOP` or `kill -USR1 <pid>`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

import dexenvs  # noqa: F401  (registers the envs)
from agents.checkpoint import load_model, read_checkpoint
from agents.evaluate import evaluate
from agents.policy import Policy
from agents.residual import load_residual
from dexenvs.cli import Count, DexError, ExistingPath, Fraction, NonNegative, UsageError, check_output, run_cli
from dexenvs.hardware.env import HardwareEnv
from dexenvs.hardware.loopback import LoopbackConfig
from dexenvs.hardware.safety import SafetyConfig
from dexenvs.hardware.setups import Hardware, InspireLink, make_setup
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import provenance, save_json
from dexenvs.tasks import get_task, task_names
from dexenvs.trajectory import DatasetWriter, Recorder, env_args_of


@dataclass
class Args:
    ckpt: ExistingPath
    """a policy checkpoint (python -m agents.train)"""
    task: str = "grasp"
    hardware: Hardware = "loopback"
    episodes: Count = 10
    out: Path = Path("runs/deploy")
    """folder for deploy.hdf5, interventions.jsonl and report.json"""
    overwrite: bool = False
    residual: ExistingPath | None = None
    """a trained residual (python -m agents.residual) on top of the policy"""
    split: Literal["train", "test_objects", "test_oep"] = "train"
    seed: NonNegative = 0
    """episode i resets with seed * 100000 + i, as `agents.evaluate` seed `seed` does"""
    sim: bool = True
    """also run the same episodes in sim and report both"""
    latency_ms: NonNegative = 0
    """loopback: command latency"""
    noise: float = 0.0
    """loopback: sensor noise (rad, m)"""
    drop: Fraction = 0.0
    """loopback: probability a command is lost"""
    stale: Fraction = 0.0
    """loopback: probability a reading repeats the previous one"""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    inspire: InspireLink = field(default_factory=InspireLink)
    progress: bool = True

    def check(self) -> None:
        if self.task not in task_names():
            raise UsageError("task", self.task, f"unknown task; valid: {task_names()}")
        if self.noise < 0:
            raise UsageError("noise", self.noise, "must be >= 0")
        env = read_checkpoint(self.ckpt)["config"]["env_args"]["env_name"]
        if env != get_task(self.task).env_id:
            raise UsageError("ckpt", self.ckpt, f"was trained on {env}, not on task {self.task!r} "
                                                f"({get_task(self.task).env_id})")
        check_output("out", self.out / "deploy.hdf5", self)


def deploy(args: Args) -> dict:
    cfg = read_checkpoint(args.ckpt)["config"]
    env_id = cfg["env_args"]["env_name"]
    kwargs = {k: v for k, v in cfg["env_args"]["env_kwargs"].items() if k not in ("obs_mode", "split")}
    obs_mode = "rgb" if cfg["images"] else "state_dict"
    if args.overwrite:
        for name in ("deploy.hdf5", "interventions.jsonl", "report.json"):
            (args.out / name).unlink(missing_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    safety = SafetyConfig(**{**vars(args.safety), "log": args.out / "interventions.jsonl",
                             "estop_file": args.safety.estop_file or args.out / "ESTOP"})
    loop = LoopbackConfig(latency=args.latency_ms / 1000, noise=args.noise, drop=args.drop, stale=args.stale,
                          seed=args.seed)
    setup = make_setup(args.hardware, env_id, loop, args.inspire, split=args.split, **kwargs)
    try:
        env = HardwareEnv(env_id, setup.devices, safety, obs_mode=obs_mode, reset_hook=setup.reset_hook,
                          split=args.split, **kwargs)
    except Exception:
        setup.devices.close()
        setup.close()
        raise
    env.safety.install_signal()
    policy = Policy(load_model(args.ckpt))
    if args.residual:
        policy = load_residual(args.residual, base=policy)
    spec = get_task(args.task)
    # the first act traces the network (hundreds of ms): done here, not as a late first command to the robot
    policy.act(env.observation_space.sample())
    rec = Recorder(env, base=env.twin)
    results = []
    try:
        writer = DatasetWriter(args.out / "deploy.hdf5", dict(env_args_of(env.twin), hardware=args.hardware))
        with writer:
            for i in tqdm(range(args.episodes), desc=f"deploy on {args.hardware}", disable=not args.progress):
                seed = args.seed * 100_000 + i
                options = spec.episode_options(seed, policy.cfg.get("reset_options"))
                obs, info = rec.reset(seed=seed, options=options)
                policy.reset(seed=seed)
                steps, t0 = 0, time.perf_counter()
                while True:
                    obs, _, term, trunc, info = rec.step(policy.act(obs))
                    steps += 1
                    if term or trunc:
                        break
                ep = rec.episode(provenance=dict(hardware=args.hardware, ckpt=str(args.ckpt),
                                                 safety_stop=info["safety"]["stopped"]))
                writer.add(ep)
                results.append(dict(seed=seed, scenario=ep.scenario, success=bool(info["success"]), steps=steps,
                                    seconds=round(time.perf_counter() - t0, 2), stopped=info["safety"]["stopped"],
                                    loopback_success=setup.robot.evaluate().get("success")))
        timing, counts = env.timing(), dict(env.safety.counts)
    finally:
        env.close()
        setup.close()
    successes = sum(r["success"] for r in results)
    report = dict(task=args.task, env=env_id, hardware=args.hardware, episodes=len(results), successes=successes,
                  success=successes / len(results), interval=list(wilson_interval(successes, len(results))),
                  timing=timing, interventions=counts, results=results, dataset=str(args.out / "deploy.hdf5"))
    print(f"[deploy] {args.hardware}: success {format_rate(successes, len(results))}; control loop p50 "
          f"{timing.get('p50_ms', float('nan')):.1f} ms, p99 {timing.get('p99_ms', float('nan')):.1f} ms, "
          f"{timing['overruns']} overruns; interventions {({k: v for k, v in counts.items() if v})}")
    if args.sim:
        sim = evaluate(args.ckpt, env_id, args.split, seeds=1, episodes=args.episodes, workers=1,
                       residual=args.residual, first_seed=args.seed)
        report["sim"] = dict(successes=sim["successes"], episodes=sim["episodes"], interval=sim["interval"],
                             results=sim["results"])
        print(f"[deploy] same policy, same episodes in sim: success {format_rate(sim['successes'], sim['episodes'])}")
    save_json(args.out / "report.json", dict(report, provenance=provenance(args)))
    print(f"[deploy] wrote {args.out / 'deploy.hdf5'} ({len(results)} episodes) and {args.out / 'report.json'}")
    return report


def main(args: Args) -> dict:
    try:
        return deploy(args)
    except (OSError, RuntimeError) as e:
        if type(e).__name__ in ("DeviceError", "SafetyStop", "SerialException"):
            raise DexError(str(e), "check the device's cable, power and address; the robot was stopped") from None
        raise


if __name__ == "__main__":
    run_cli(main, Args)
