"""Train the DexGen controller:

    python -m agents.dexgen.train --dataset runs/transitions/transitions.hdf5 [runs/free_motion/free_motion.hdf5]
        --out runs/dexgen [--steps 20000] [--minutes 30] [--resume]

Read top to bottom: samples from each dataset's train mask (`agents.dexgen.data`), the model with their statistics
inside, then AdamW with warm-up and cosine decay and an EMA of the weights, both networks trained together on one
batch. Every `--ckpt-every` steps `checkpoint.pt` is rewritten atomically and `--resume` continues from it;
`metrics.jsonl` logs both losses (and both on the valid masks); `loss.png` plots them.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from agents.dexgen.data import Samples, load_samples
from agents.dexgen.features import MODES
from agents.dexgen.model import DexGen
from dexenvs.cli import Count, DexError, ExistingPath, NonNegative, Positive, UsageError, run_cli, validate
from dexenvs.results import append_jsonl, atomic_write, provenance, read_jsonl, save_text
from dexenvs.trajectory import env_args


@dataclass
class DexGenConfig:
    history: Count = 4
    """control steps of state the model is conditioned on (DexGen: 4)"""
    horizon: Count = 2
    """control steps of keypoint motion it predicts (DexGen: 2)"""
    width: Count = 256
    blocks: Count = 4
    """residual blocks of the denoiser"""
    id_blocks: Count = 3
    """residual blocks of the inverse dynamics model"""
    ddim_steps: Count = 10
    batch_size: Count = 256
    lr: Positive = 3e-4
    weight_decay: NonNegative = 1e-6
    warmup_steps: NonNegative = 200


def load_all(datasets, cfg: DexGenConfig, mask: str) -> Samples | None:
    parts = []
    for d in datasets:
        try:
            parts.append(load_samples(Path(d), cfg.history, cfg.horizon, mask))
        except DexError:
            if mask == "train":
                raise
    parts = [p for p in parts if len(p)]
    return Samples.cat(parts) if parts else None


def model_config(cfg: DexGenConfig, data: Samples, datasets) -> dict:
    a = env_args(datasets[0])
    return dict(history=cfg.history, horizon=cfg.horizon, keypoints=data.motion.shape[-1] // 3,
                joints=data.offset.shape[-1], feature_dim=data.history.shape[-1], modes=list(MODES), width=cfg.width,
                blocks=cfg.blocks, id_blocks=cfg.id_blocks, ddim_steps=cfg.ddim_steps, stats=data.stats(),
                robot=a["robot"][0], env_name=a["env_name"], datasets=[str(d) for d in datasets],
                train_samples=len(data), modes_seen=sorted({MODES[int(m)] for m in np.unique(data.mode)}),
                train_config=asdict(cfg))


def tensors(s: Samples, idx) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(getattr(s, k)[idx])) for k in ("history", "mode", "motion", "offset"))


@torch.no_grad()
def valid_losses(model: DexGen, s: Samples | None) -> tuple[float, float] | tuple[None, None]:
    if s is None:
        return None, None
    torch.manual_seed(0)  # the same noise draws each time: comparable numbers
    idx = np.random.default_rng(0).permutation(len(s))[:2048]
    d, i = model.losses(*tensors(s, idx))
    return d.item(), i.item()


def plot(out: Path, metrics: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, title in zip(axes, ("diffusion", "inverse"), ("keypoint-motion diffusion", "inverse dynamics")):
        tr = [(m["step"], m[key]) for m in metrics if key in m]
        if tr:
            ax.plot(*zip(*tr), lw=0.8, label="train")
        va = [(m["step"], m[f"valid_{key}"]) for m in metrics if m.get(f"valid_{key}") is not None]
        if va:
            ax.plot(*zip(*va), "o-", color="tab:red", label="valid")
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{title} loss")
        ax.legend()
    fig.suptitle(out.name)
    fig.tight_layout()
    with atomic_write(out / "loss.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def load_dexgen(path: str | Path, ema: bool = True) -> DexGen:
    path = Path(path)
    if not path.exists():
        raise DexError(f"no DexGen checkpoint at {path}", hint="train one with python -m agents.dexgen.train")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise DexError(f"{path} is not a readable checkpoint: {e}") from None
    if not isinstance(ck, dict) or ck.get("kind") != "dexgen":
        raise DexError(f"{path} is not a DexGen checkpoint", hint="train one with python -m agents.dexgen.train")
    model = DexGen(ck["config"])
    model.load_state_dict(ck["ema_model"] if ema else ck["model"])
    return model.eval()


def train(datasets: list[Path], out: Path, cfg: DexGenConfig = DexGenConfig(), steps: int = 20000,
          minutes: float | None = None, seed: int = 0, resume: bool = False, progress: bool = True,
          ckpt_every: int = 1000) -> dict:
    """Trains into `out` (checkpoint.pt, metrics.jsonl, loss.png); returns the run's summary."""
    validate(cfg)
    ckpt = out / "checkpoint.pt"
    if ckpt.exists() and not resume:
        raise UsageError("out", out, "holds a checkpoint; pass --resume to continue it, or choose another")
    torch.manual_seed(seed)
    data = load_all(datasets, cfg, "train")
    valid = load_all(datasets, cfg, "valid")
    ck = torch.load(ckpt, map_location="cpu", weights_only=False) if resume and ckpt.exists() else None
    mcfg = ck["config"] if ck is not None else model_config(cfg, data, datasets)
    model = DexGen(mcfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = get_scheduler("cosine", opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=steps)
    ema = EMAModel(model.parameters(), power=0.75, use_ema_warmup=True)
    step, seconds, metrics = 0, 0.0, []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["lr_scheduler"])
        ema.load_state_dict(ck["ema"])
        torch.set_rng_state(ck["rng"])
        step, seconds = ck["step"], ck["seconds"]
        metrics = [m for m in read_jsonl(out / "metrics.jsonl") if m["step"] <= step]
    out.mkdir(parents=True, exist_ok=True)
    save_text(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[dexgen] {len(data)} samples ({', '.join(mcfg['modes_seen'])}) from {len(datasets)} dataset(s), "
          f"{n_params / 1e6:.2f}M parameters, from step {step}")

    def ema_model():
        m = copy.deepcopy(model)
        ema.copy_to(m.parameters())
        return m.eval()

    def save():
        save_checkpoint(ckpt, kind="dexgen", config=mcfg, model=model.state_dict(), ema=ema.state_dict(),
                        ema_model=ema_model().state_dict(), optimizer=opt.state_dict(), lr_scheduler=sched.state_dict(),
                        rng=torch.get_rng_state(), step=step, seconds=seconds, provenance=provenance())

    def log(m: dict) -> None:
        metrics.append(m)
        append_jsonl(out / "metrics.jsonl", m)

    rng = np.random.default_rng([seed, step])
    bs = min(cfg.batch_size, len(data))
    bar = tqdm(total=steps, initial=step, desc="train dexgen", disable=not progress)
    t0 = time.perf_counter() - seconds
    model.train()
    while step < steps:
        if minutes is not None and time.perf_counter() - t0 > 60 * minutes:
            print(f"[dexgen] the {minutes}-minute budget ran out at step {step}")
            break
        d, i = model.losses(*tensors(data, rng.integers(0, len(data), bs)))
        opt.zero_grad(set_to_none=True)
        (d + i).backward()
        opt.step()
        sched.step()
        ema.step(model.parameters())
        step += 1
        seconds = time.perf_counter() - t0
        bar.update(1)
        if step % 20 == 0 or step == 1:
            log(dict(step=step, diffusion=d.item(), inverse=i.item(), lr=sched.get_last_lr()[0], seconds=round(seconds, 1)))
            bar.set_postfix(diffusion=f"{d.item():.3f}", inverse=f"{i.item():.3f}")
        if step % ckpt_every == 0 or step == steps:
            vd, vi = valid_losses(ema_model(), valid)
            if vd is not None:
                log(dict(step=step, valid_diffusion=vd, valid_inverse=vi))
            save()
    bar.close()
    save()
    plot(out, metrics)
    tr = [m for m in metrics if "diffusion" in m]
    summary = dict(step=step, seconds=round(seconds, 1), params=n_params, samples=len(data),
                   first=dict(diffusion=tr[0]["diffusion"], inverse=tr[0]["inverse"]) if tr else None,
                   final=dict(diffusion=float(np.mean([m["diffusion"] for m in tr[-10:]])),
                              inverse=float(np.mean([m["inverse"] for m in tr[-10:]]))) if tr else None)
    if tr:
        print(f"[dexgen] done: step {step}; diffusion loss {summary['first']['diffusion']:.3f} -> "
              f"{summary['final']['diffusion']:.3f}, inverse dynamics {summary['first']['inverse']:.3f} -> "
              f"{summary['final']['inverse']:.3f}; wrote {ckpt}, {out / 'loss.png'}")
    return summary


def save_checkpoint(path: Path, **state) -> None:
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


@dataclass(kw_only=True)
class Args(DexGenConfig):
    dataset: tuple[ExistingPath, ...] = (Path("runs/transitions/transitions.hdf5"),)
    """one or more datasets in the project's format with keypoints and joint targets (DexRegrasp-v0's)"""
    out: Path = Path("runs/dexgen")
    steps: Count = 20000
    minutes: Positive | None = None
    """stop (and checkpoint) after this much training time"""
    ckpt_every: Count = 1000
    seed: NonNegative = 0
    resume: bool = False
    progress: bool = True

    def check(self) -> None:
        if (self.out / "checkpoint.pt").exists() and not self.resume:
            raise UsageError("out", self.out, "holds a checkpoint; pass --resume to continue it, or choose another")
        robots = {str(env_args(d).get("robot", ["?"])[0]) for d in self.dataset}
        if len(robots) > 1:
            raise UsageError("dataset", [str(d) for d in self.dataset], f"mixes hands {sorted(robots)}: one "
                             "controller is trained per hand")


def main(args: Args) -> dict:
    cfg = DexGenConfig(**{k: getattr(args, k) for k in DexGenConfig.__dataclass_fields__})
    return train(list(args.dataset), args.out, cfg, args.steps, args.minutes, args.seed, args.resume, args.progress,
                 args.ckpt_every)


if __name__ == "__main__":
    run_cli(main, Args)
