"""Where an env step's time goes, per task: `python -m benchmarks.step_profile [--tasks grasp lift] [--steps 400]`.

The scripted expert drives each task in state mode (DexRegrasp-v0: its planner) while every phase of ManiSkill's step
is timed by wrapping it: the controller (`agent.set_action` and its per-substep hook), the physics (`scene.step`, once
per substep), the task's per-step bookkeeping (`_after_control_step`: reading the state once and the success
condition), evaluation (`get_info`), observation (`get_obs`), reward (`get_reward`), and the rest of ManiSkill's step
(action conversion, termination flags). Resets are timed apart, those that rebuild the scene (a new object) and those
that do not. Prints one table (ms per step and share of the step) and writes `benchmarks/results/step_profile.json`;
`--markdown PATH` also writes the table for the docs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, run_cli

TaskOrRegrasp = Literal["grasp", "pour", "lift", "handover", "regrasp"]
TASKS = get_args(TaskOrRegrasp)
PHASES = ("controller", "physics", "bookkeeping", "evaluation", "observation", "reward", "maniskill_rest")


@dataclass
class Args(ResultArgs):
    tasks: tuple[TaskOrRegrasp, ...] = TASKS
    steps: Count = 400
    out: Path = RESULTS / "step_profile.json"
    markdown: Path | None = None

    def outputs(self) -> list[Path]:
        return [self.out]


@dataclass
class Clock:
    totals: dict = field(default_factory=lambda: {p: 0.0 for p in PHASES} | {"step": 0.0})
    depth: int = 0

    def wrap(self, phase: str, fn):
        def timed(*a, **k):
            if self.depth:  # inside another timed phase (two hands' agents inside the multi-agent): counted there
                return fn(*a, **k)
            self.depth += 1
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.totals[phase] += time.perf_counter() - t
                self.depth -= 1
        return timed


@contextmanager
def patched(clock: Clock, env):
    """Times the phases: env methods per instance, the agent's and the scene's per class (rebuilt on reconfigure)."""
    from mani_skill.agents.base_agent import BaseAgent
    from mani_skill.agents.multi_agent import MultiAgent
    from mani_skill.envs.scene import ManiSkillScene

    saved = []

    def patch(owner, name, phase):
        saved.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, clock.wrap(phase, getattr(owner, name)))

    for cls in {BaseAgent, MultiAgent, type(env.agent)}:
        for name in ("set_action", "before_simulation_step"):
            if name in cls.__dict__:  # an inherited one is wrapped where it is defined
                patch(cls, name, "controller")
    patch(ManiSkillScene, "step", "physics")
    for name, phase in (("_after_control_step", "bookkeeping"), ("get_info", "evaluation"), ("get_obs", "observation"),
                        ("get_reward", "reward")):
        setattr(env, name, clock.wrap(phase, getattr(env, name)))
    try:
        yield
    finally:
        for owner, name, orig in reversed(saved):
            if orig is None:
                delattr(owner, name)
            else:
                setattr(owner, name, orig)
        for name in ("_after_control_step", "get_info", "get_obs", "get_reward"):
            del env.__dict__[name]


def env_and_expert(task: str):
    """A state-mode env of `task`, its expert's class, the expert's reset options per seed, and its horizon (None:
    the expert's own). DexRegrasp-v0 has no task spec: its expert is the planner, on absolute joint targets."""
    import gymnasium as gym

    import dexenvs  # noqa: F401
    from dexenvs.tasks import get_task

    if task == "regrasp":
        from dexenvs.experts.regrasp import RegraspPlanner

        env = gym.make("DexRegrasp-v0", obs_mode="state", control_mode="pd_joint_pos").unwrapped
        return env, RegraspPlanner, lambda seed: {}, 60
    spec = get_task(task)
    env = gym.make(spec.env_id, obs_mode="state").unwrapped
    return env, spec.expert, spec.expert_options, None


def profile(task: str, steps: int) -> dict:
    env, expert_cls, options, horizon = env_and_expert(task)
    clock = Clock()
    resets = dict(rebuild=[], keep=[])
    n, seed = 0, 0
    warm = 30
    with patched(clock, env):
        while n < steps + warm:
            key = env._loaded_key
            t = time.perf_counter()
            env.reset(seed=seed, options=options(seed))
            dt = time.perf_counter() - t
            if n >= warm:
                resets["keep" if env._loaded_key == key else "rebuild"].append(dt)
            expert = expert_cls(env)
            expert.reset()
            for _ in range(horizon or expert.horizon):
                action = expert.act()[0]
                if n == warm:
                    clock.totals = {p: 0.0 for p in clock.totals}
                t = time.perf_counter()
                info = env.step(action)[-1]
                clock.totals["step"] += time.perf_counter() - t
                n += 1
                if bool(info["success"][0]) or bool(info["fail"][0]) or n >= steps + warm:
                    break
            seed += 1
    env.close()
    ms = {p: 1000 * v / steps for p, v in clock.totals.items()}
    ms["maniskill_rest"] = ms["step"] - sum(ms[p] for p in PHASES if p != "maniskill_rest")
    reset_ms = {k: (1000 * sum(v) / len(v) if v else None) for k, v in resets.items()}
    return dict(steps=steps, ms_per_step=ms, physics_share=ms["physics"] / ms["step"],
                step_over_physics=ms["step"] / ms["physics"],
                resets=dict(rebuild=len(resets["rebuild"]), keep=len(resets["keep"])), reset_ms=reset_ms)


def table(results: dict) -> str:
    head = "| task | step ms | " + " | ".join(PHASES) + " | step / physics | reset ms (rebuild / keep) |"
    lines = [head, "|" + "---|" * (len(PHASES) + 4)]
    for task, r in results.items():
        ms = r["ms_per_step"]
        cells = [f"{ms[p]:.2f} ({ms[p] / ms['step']:.0%})" for p in PHASES]
        rs = r["reset_ms"]
        reset = " / ".join("-" if rs[k] is None else f"{rs[k]:.0f}" for k in ("rebuild", "keep"))
        lines.append(f"| {task} | {ms['step']:.2f} | " + " | ".join(cells) + f" | {r['step_over_physics']:.2f}x | {reset} |")
    return "\n".join(lines)


def main(args: Args) -> dict:
    results = {}
    for task in args.tasks:
        results[task] = profile(task, args.steps)
        print(f"[step_profile] {task}: {results[task]['ms_per_step']['step']:.2f} ms per step, "
              f"{results[task]['step_over_physics']:.2f}x its physics", flush=True)
    text = table(results)
    print("\n" + text)
    save_result(args.out, dict(tasks=results, table=text), args)
    if args.markdown:
        from dexenvs.results import save_text

        save_text(args.markdown, text + "\n")
    return results


if __name__ == "__main__":
    run_cli(main, Args)
