"""Diffusion-policy training throughput on this CPU, side by side: fp32 (what `agents.train` runs), bf16 autocast and
`torch.compile`, for the one-hand U-Net (64/128, the grasp's and the pour's 15-D action) and the two-hand one (128/256,
the lift's and the handover's 30-D action): `python -m benchmarks.train_throughput`.

Why it exists: the flywheel's base-policy training is most of a full run on a CPU, and this says how
much of it the numerics could win back. Each row counts the FLOPs of one optimizer step (forward + backward, torch's
FlopCounterMode) and prints the GFLOP/s reached, to set against the CPU's peak. Batch 256, the flywheel's observation
sizes (two-hand: the lift's 143-D state). bf16 pays only where the hardware has bf16 arithmetic (AVX512-BF16 or AMX):
these machines differ, so each run is stored under its CPU (name, torch's capability, native bf16 or not) in
benchmarks/results/train_throughput.json, next to the other CPUs measured before.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from agents.models import build_model
from agents.train import default_down_dims, native_bf16
from benchmarks.common import save_result
from dexenvs.cli import Count, run_cli
from benchmarks.policy_latency import STATE as ONE_HAND
from benchmarks.policy_latency import config as latency_config

TWO_HANDS = {"agent_left_qpos": 20, "agent_left_qvel": 20, "agent_right_qpos": 20, "agent_right_qvel": 20,
             "extra_fingertip_pos_0": 15, "extra_fingertip_pos_1": 15, "extra_goal_pos": 3, "extra_obj_extents": 3,
             "extra_obj_pose": 7, "extra_obj_vel": 6, "extra_wrist_pose_0": 7, "extra_wrist_pose_1": 7}
MODES = ("fp32", "bf16", "compile")


def config(low: dict, action_dim: int) -> dict:
    return latency_config("diffusion", low, {}, default_down_dims(action_dim), action_dim)


def measure(cfg: dict, mode: str, batch: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    obs = {k: torch.randn(batch, 2, n) for k, n in cfg["low_dim"].items()}
    acts = torch.rand(batch, 16, cfg["action_dim"]) * 2 - 1
    if mode == "compile":
        model.net = torch.compile(model.net)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
            loss = model.loss(obs, acts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):  # warm-up (and compilation)
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t) / steps
    return dict(ms_per_step=1000 * seconds, samples_per_s=batch / seconds)


def step_flops(cfg: dict, batch: int) -> int:
    model = build_model(cfg).train()
    obs = {k: torch.randn(batch, 2, n) for k, n in cfg["low_dim"].items()}
    with FlopCounterMode(display=False) as fc:
        model.loss(obs, torch.rand(batch, 16, cfg["action_dim"])).backward()
    return fc.get_total_flops()


def cpu_info() -> dict:
    info = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
             if line.startswith("model name")] if info.exists() else []
    name = names[0] if names else platform.processor()
    return dict(name=name, threads=torch.get_num_threads(), capability=torch.backends.cpu.get_cpu_capability(),
                native_bf16=native_bf16(torch.device("cpu")), torch=torch.__version__)


def cpu_label(cpu: dict) -> str:
    return (f"{cpu['name']}, {cpu['threads']} threads, {cpu['capability']}, "
            f"{'native' if cpu['native_bf16'] else 'no native'} bf16")


@dataclass
class Args:
    batch: Count = 256
    steps: Count = 20
    out: Path = Path("benchmarks/results")
    """train_throughput.json there keeps one entry per CPU measured; this CPU's is replaced"""


def main(args: Args) -> dict:
    rows = {"one hand (15-D action, U-Net 64/128)": config(ONE_HAND, 15),
            "two hands (30-D action, U-Net 128/256)": config(TWO_HANDS, 30)}
    res, cpu = {}, cpu_info()
    print(f"torch {torch.__version__}, {cpu_label(cpu)}, batch {args.batch}")
    print(f"{'model':40s} {'params':>7s} {'GFLOP/step':>10s} " + " ".join(f"{m + ' samples/s':>17s}" for m in MODES)
          + f" {'bf16/fp32':>9s} {'compile/fp32':>12s} {'fp32 GFLOP/s':>12s}")
    for name, cfg in rows.items():
        params = sum(p.numel() for p in build_model(cfg).parameters())
        flops = step_flops(cfg, args.batch)
        r = {m: measure(cfg, m, args.batch, args.steps) for m in MODES}
        res[name] = dict(params=params, gflop_per_step=flops / 1e9, **r,
                         fp32_gflops=flops / 1e9 / (r["fp32"]["ms_per_step"] / 1000))
        sps = {m: r[m]["samples_per_s"] for m in MODES}
        print(f"{name:40s} {params / 1e6:6.2f}M {flops / 1e9:10.1f} " + " ".join(f"{sps[m]:17.0f}" for m in MODES)
              + f" {sps['bf16'] / sps['fp32']:9.2f} {sps['compile'] / sps['fp32']:12.2f}"
              f" {res[name]['fp32_gflops']:12.0f}")
    path = args.out / "train_throughput.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored.pop("provenance", None)
    stored[cpu_label(cpu)] = dict(cpu=cpu, **res)
    save_result(path, stored, args)
    for label, r in stored.items():  # every CPU measured so far, side by side
        ratios = {n.split(" (")[0]: v["bf16"]["samples_per_s"] / v["fp32"]["samples_per_s"]
                  for n, v in r.items() if n != "cpu"}
        print(f"{label}: bf16/fp32 " + ", ".join(f"{n} {x:.2f}x" for n, x in ratios.items()))
    return res


if __name__ == "__main__":
    run_cli(main, Args)
