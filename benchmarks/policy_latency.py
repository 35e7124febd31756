"""Policy inference latency per action chunk (batch 1) and training throughput on this CPU:
`python -m benchmarks.policy_latency`.

Rows: the default `state` diffusion policy (U-Net down_dims 64/128), the default `rgb` one (the same U-Net on the
small CNN's features + proprioception), a U-Net of diffusion_policy's default width (256/512/1024) on the same state
input, and BC. Each chunk is timed through `Policy.predict_chunk` (TorchScript U-Net, as policies act) and eagerly, at
DDIM 4/8/16 steps. Shapes are DexGrasp-v0's (85-D state, 15-D action, 128x128 camera); weights are untrained (latency
does not depend on them). Training throughput: samples/s of optimizer steps at batch 256. Writes
benchmarks/results/policy_latency.json.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from agents.models import build_model
from agents.policy import Policy
from benchmarks.common import ResultArgs, save_result
from dexenvs.cli import Count, run_cli

STATE = dict(agent_qpos=20, agent_qvel=20, extra_fingertip_pos=15, extra_goal_pos=3, extra_obj_extents=3, extra_obj_pose=7,
             extra_obj_vel=6, extra_wrist_pose=7)
PROPRIO = {k: v for k, v in STATE.items() if k in ("agent_qpos", "agent_qvel", "extra_fingertip_pos", "extra_wrist_pose")}
A = 15


def config(algo: str, low: dict, images: dict, down_dims=(64, 128), action_dim: int = A) -> dict:
    stats = {k: dict(min=[-1.0] * n, max=[1.0] * n) for k, n in {**low, "actions": action_dim}.items()}
    return dict(algo=algo, obs="rgb" if images else "state", low_dim=low, images=images, obs_horizon=2,
                action_horizon=16, action_steps=8, action_dim=action_dim, down_dims=list(down_dims),
                hidden_dims=[512, 512, 512], ddim_steps=8, stats=stats, env_args={})


def history(cfg: dict, batch: int = 1) -> dict:
    h = {k: torch.randn(batch, 2, n) for k, n in cfg["low_dim"].items()}
    h.update({k: torch.randint(0, 255, (batch, 2, *s), dtype=torch.uint8) for k, s in cfg["images"].items()})
    return h


def chunk_ms(policy: Policy, h: dict, repeats: int = 20) -> float:
    for _ in range(3):
        policy.predict_chunk(h)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        policy.predict_chunk(h)
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def train_samples_per_s(cfg: dict, batch: int = 256, steps: int = 10) -> float:
    model = build_model(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), 1e-4)
    h = history(cfg, batch)
    acts = torch.randn(batch, 16, A)
    for i in range(steps + 2):
        if i == 2:
            t = time.perf_counter()
        loss = model.loss(h, acts)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return batch * steps / (time.perf_counter() - t)


@dataclass
class Args(ResultArgs):
    repeats: Count = 20
    out: Path = Path("benchmarks/results")

    def outputs(self) -> list[Path]:
        return [self.out / "policy_latency.json"]


def main(args: Args) -> dict:
    rows = {
        "diffusion state (default, 64/128)": config("diffusion", STATE, {}),
        "diffusion rgb (default, 64/128)": config("diffusion", PROPRIO, {"head_rgb": [128, 128, 3]}),
        "diffusion state, diffusion_policy width 256/512/1024": config("diffusion", STATE, {}, (256, 512, 1024)),
        "bc state": config("bc", STATE, {}),
        "bc rgb": config("bc", PROPRIO, {"head_rgb": [128, 128, 3]}),
    }
    results = {}
    for name, cfg in rows.items():
        model = build_model(cfg).eval()
        h = history(cfg)
        r = dict(params_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 2))
        if cfg["algo"] == "diffusion":
            for steps in (4, 8, 16):
                r[f"ddim{steps}_ms"] = chunk_ms(Policy(model, ddim_steps=steps), h, args.repeats)
            r["ddim8_eager_ms"] = chunk_ms(Policy(model, ddim_steps=8, jit=False), h, args.repeats)
        else:
            r["chunk_ms"] = chunk_ms(Policy(model), h, args.repeats)
        r["train_samples_per_s"] = train_samples_per_s(cfg)
        results[name] = r
    print(f"\nPer action chunk (16 actions, 8 executed), batch 1, {torch.get_num_threads()} threads; ms (median)")
    print(f"{'policy':55s} {'params':>7s} {'DDIM-4':>7s} {'DDIM-8':>7s} {'DDIM-16':>8s} {'DDIM-8 eager':>12s} "
          f"{'train samples/s':>16s}")
    for name, r in results.items():
        if "ddim8_ms" in r:
            cells = f"{r['ddim4_ms']:7.1f} {r['ddim8_ms']:7.1f} {r['ddim16_ms']:8.1f} {r['ddim8_eager_ms']:12.1f}"
        else:
            cells = f"{r['chunk_ms']:7.2f} {'(one forward pass)':>29s}"
        print(f"{name:55s} {r['params_m']:6.2f}M {cells} {r['train_samples_per_s']:16.0f}")
    d, w = results["diffusion state (default, 64/128)"], results["diffusion state, diffusion_policy width 256/512/1024"]
    print(f"default state policy at DDIM-8: {d['ddim8_ms']:.1f} ms per chunk, {w['ddim8_ms'] / d['ddim8_ms']:.1f}x faster "
          f"than diffusion_policy's width ({w['ddim8_ms']:.0f} ms)")
    args.out.mkdir(parents=True, exist_ok=True)
    save_result(args.out / "policy_latency.json", results, args)
    return results


if __name__ == "__main__":
    run_cli(main, Args)
