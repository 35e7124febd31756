"""EgoDex's trajectory-prediction benchmark on EgoDex-layout data: `python -m benchmarks.human_prediction --data
runs/human --steps 3000`.

BC and the diffusion policy (the project's own models) learn to predict the 48-D hand trajectory (both wrists' position
and 6D rotation, ten fingertips; camera frame of the current step) 1 s and 2 s ahead from the current 48-D pose, on the
episodes' first 90%, and are scored on the last 10% as EgoDex scores them: sample K times (K = 1, 5, 10), keep the sample
closest to the truth by the mean L2 over the 12 keypoints and the horizon, and average that distance over the test
windows ("avg"), and the same at the horizon's last step ("final"). Chunks are predicted at 10 Hz (every third 30 Hz
frame) so that the U-Net's length halves evenly; distances are in metres, over keypoints whose masks say they were
tracked. Writes `benchmarks/results/human_prediction.json`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.models import build_model
from benchmarks.common import RESULTS, ResultArgs, save_result
from dexenvs.cli import Count, DexError, ExistingPath, run_cli

KEYPOINTS = [slice(0, 3)] + [slice(9 + 3 * i, 12 + 3 * i) for i in range(5)]  # per hand: wrist, five tips
KEYPOINTS = KEYPOINTS + [slice(24 + s.start, 24 + s.stop) for s in KEYPOINTS]
SUBSAMPLE = 3  # 30 Hz -> 10 Hz chunks
HORIZONS = {"1s": 30, "2s": 60}
KS = (1, 5, 10)


@dataclass
class Args(ResultArgs):
    data: ExistingPath = Path("runs/human")
    """a folder of EgoDex-layout episodes (<task>/<i>.hdf5)"""
    steps: Count = 3000
    batch_size: Count = 256
    stride: Count = 3
    """30 Hz steps between training windows"""
    out: Path = RESULTS / "human_prediction.json"
    seed: int = 0

    def outputs(self) -> list[Path]:
        return [self.out]


def keypoints(a: np.ndarray | torch.Tensor):
    """(..., 48) -> (..., 12, 3)."""
    return np.stack([a[..., s] for s in KEYPOINTS], -2) if isinstance(a, np.ndarray) else \
        torch.stack([a[..., s] for s in KEYPOINTS], -2)


def load_windows(data: Path, horizon: int, stride: int) -> tuple[dict, dict]:
    from generators.human.reader import EgoDexEpisode, episodes, windows

    paths = episodes(data)
    if len(paths) < 10:
        raise DexError(f"{data} holds {len(paths)} episodes; the benchmark needs at least 10 (90% train, 10% test)",
                       hint="python -m generators.human.standin --task grasp --episodes 200 --out " + str(data))
    split = int(0.9 * len(paths))
    out = []
    for part in (paths[:split], paths[split:]):
        obs, fut, mask = [], [], []
        for p in part:
            for w in windows(EgoDexEpisode(p), history=1, horizon=horizon, stride=stride):
                obs.append(w.history[-1])
                fut.append(w.future[SUBSAMPLE - 1::SUBSAMPLE])
                mask.append(w.future_mask[SUBSAMPLE - 1::SUBSAMPLE])
        out.append(dict(obs=np.asarray(obs, np.float32), future=np.asarray(fut, np.float32),
                        mask=np.asarray(mask, bool)))
    return out[0], out[1]


def model_cfg(algo: str, train: dict) -> dict:
    lo = lambda x: np.percentile(x.reshape(-1, x.shape[-1]), 0.5, axis=0)
    hi = lambda x: np.percentile(x.reshape(-1, x.shape[-1]), 99.5, axis=0)
    stats = {"pose": dict(min=lo(train["obs"]).tolist(), max=hi(train["obs"]).tolist()),
             "actions": dict(min=lo(train["future"]).tolist(), max=hi(train["future"]).tolist())}
    return dict(algo=algo, images={}, low_dim={"pose": 48}, obs_horizon=1, action_horizon=train["future"].shape[1],
                action_dim=48, hidden_dims=[512, 512], down_dims=[128, 256], ddim_steps=16, stats=stats)


def train_model(algo: str, train: dict, steps: int, batch: int, seed: int):
    torch.manual_seed(seed)
    model = build_model(model_cfg(algo, train))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3 if algo == "bc" else 3e-4, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    obs, fut = torch.as_tensor(train["obs"]), torch.as_tensor(train["future"])
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        i = torch.randint(0, len(obs), (batch,), generator=g)
        loss = model.loss({"pose": obs[i, None]}, fut[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def best_of_k(model, test: dict, k: int, seed: int) -> tuple[float, float]:
    """EgoDex's metric: (avg, final) distance of the best of k samples per window, averaged over the test windows."""
    obs = torch.as_tensor(test["obs"])[:, None]
    truth = keypoints(torch.as_tensor(test["future"]))  # (N, T, 12, 3)
    mask = torch.as_tensor(test["mask"]).float()  # (N, T, 12)
    g = torch.Generator().manual_seed(seed)
    best_avg = torch.full((len(obs),), float("inf"))
    best_final = torch.full((len(obs),), float("inf"))
    for _ in range(k):
        pred = keypoints(model.sample({"pose": obs}, generator=g))
        d = (pred - truth).norm(dim=-1)  # (N, T, 12)
        avg = (d * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)
        final = (d[:, -1] * mask[:, -1]).sum(-1) / mask[:, -1].sum(-1).clamp_min(1)
        better = avg < best_avg  # the sample is chosen by its mean distance; its final distance comes with it
        best_avg = torch.where(better, avg, best_avg)
        best_final = torch.where(better, final, best_final)
    return float(best_avg.mean()), float(best_final.mean())


def main(args: Args) -> dict:
    rows = {}
    for hname, horizon in HORIZONS.items():
        train, test = load_windows(args.data, horizon, args.stride)
        for algo in ("bc", "diffusion"):
            t0 = time.perf_counter()
            model, losses = train_model(algo, train, args.steps, args.batch_size, args.seed)
            row = dict(train_windows=len(train["obs"]), test_windows=len(test["obs"]), loss_first=losses[0],
                       loss_last=float(np.mean(losses[-50:])), train_seconds=round(time.perf_counter() - t0, 1))
            for k in KS:
                row[f"avg_k{k}"], row[f"final_k{k}"] = best_of_k(model, test, k, args.seed)
            rows[f"{algo} {hname}"] = row
            print(f"[human_prediction] {algo:9s} {hname}: " + "  ".join(
                f"K={k} avg {row[f'avg_k{k}'] * 100:.2f} final {row[f'final_k{k}'] * 100:.2f} cm" for k in KS), flush=True)
    result = dict(rows=rows, data=str(args.data))
    save_result(args.out, result, args)
    print(f"[human_prediction] wrote {args.out}")
    return result


if __name__ == "__main__":
    run_cli(main, Args)
