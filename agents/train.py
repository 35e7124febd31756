"""Train a diffusion policy or the BC baseline on a dexsuite dataset:

    python -m agents.train --algo diffusion --dataset demos/grasp/aep.hdf5 [--obs state|rgb|rgb+state] --out runs/X
        [--steps 20000] [--minutes 30] [--resume] [--human runs/human_inspire.hdf5 --human-ratio 2]

Read top to bottom: pick observation keys, build windows (obs history, action chunk) from the train mask, build the
model with the dataset's statistics inside, then AdamW + cosine schedule with warm-up + EMA (diffusion_policy's
recipe). Every `--ckpt-every` steps `checkpoint.pt` is rewritten atomically (`--resume` continues from it; a larger
`--steps` than it was trained to gets its own warm-up and cosine over the added steps); every
`--eval-every` steps the EMA policy runs `--eval-episodes` episodes in the sim. `metrics.jsonl` logs loss, validation
loss and success; `loss.png` plots them.

With `--human` (a human dataset retargeted to the robot by `python -m generators.human.to_robot`), training is
DexWild's co-training: both datasets in the embodiment-agnostic representation (`agents.embodiment`; the robot dataset
is converted into `<out>/robot_relative.hdf5`), each normalized by its own statistics, and every batch holding
`--human-ratio` human windows per robot window. The policy acts through the representation's frontend, so it evaluates
and deploys like any other.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from agents.checkpoint import read_checkpoint, save_checkpoint
from agents.embodiment import REPRESENTATION, relative_dataset
from agents.evaluate import evaluate
from agents.models import build_model
from agents.windows import DemoWindows
from dexenvs.cli import AtLeast, Count, DexError, ExistingPath, NonNegative, Positive, UsageError, run_cli, validate
from dexenvs.results import append_jsonl, atomic_write, read_jsonl, save_text
from dexenvs.trajectory import demo_names, env_args as dataset_env_args, open_dataset

PROPRIO = ("agent_qpos", "agent_qvel", "extra_wrist_pose", "extra_fingertip_pos")  # what the robot knows of itself


@dataclass
class TrainConfig:
    """How a policy is trained: the model and the optimizer's recipe (the flywheel nests this as `--base.*`). What to
    train on, for how long and where are `train`'s other arguments."""

    algo: Literal["diffusion", "bc"] = "diffusion"
    obs: Literal["state", "rgb", "rgb+state"] = "state"
    """state: every low-dim key; rgb: camera images + proprioception; rgb+state: images + every low-dim key"""
    batch_size: Count = 256
    lr: Positive = 1e-3
    """for both algos: the CPU-sized U-Net learned far slower at diffusion_policy's 1e-4 (made for 66M params)"""
    weight_decay: Annotated[float, AtLeast(0)] = 1e-6
    warmup_steps: NonNegative = 200
    obs_horizon: Count = 2
    action_horizon: Count = 16
    action_steps: Count = 8
    """actions of each predicted chunk that are executed: at most --action-horizon"""
    down_dims: tuple[Count, ...] | None = None
    """U-Net widths; default `default_down_dims(action_dim)`: (64, 128) for one hand, (128, 256) for two.
    (256, 512, 1024) is diffusion_policy's GPU default (see benchmarks.policy_latency)"""
    hidden_dims: tuple[Count, ...] = (512, 512, 512)
    """BC MLP widths"""
    ddim_steps: Count = 8
    precision: Literal["fp32", "bf16"] = "fp32"
    """bf16: the forward pass under bfloat16 autocast (weights, Adam's moments and the EMA stay fp32). Faster only where
    the hardware has bf16 arithmetic; elsewhere it is emulated and slower (benchmarks.train_throughput), and a warning
    says so"""

    def check(self) -> None:
        if self.action_steps > self.action_horizon:
            raise UsageError("action_steps", self.action_steps,
                             f"must be <= --action-horizon ({self.action_horizon}): a chunk runs at most its length")
        if self.algo == "diffusion" and self.down_dims is not None and len(self.down_dims) < 1:
            raise UsageError("down_dims", self.down_dims, "needs at least one width")


@dataclass(kw_only=True)
class Args(TrainConfig):
    dataset: ExistingPath = Path("demos/grasp/aep.hdf5")
    out: Path = Path("runs/grasp_diffusion")
    steps: Count = 6000
    minutes: Positive | None = None
    """stop (and checkpoint) after this much training time"""
    eval_every: NonNegative = 2000
    """0: no evaluation during training"""
    eval_episodes: NonNegative = 10
    ckpt_every: Count = 500
    seed: NonNegative = 0
    resume: bool = False
    human: ExistingPath | None = None
    """a human dataset retargeted to this robot (python -m generators.human.to_robot) to co-train with"""
    human_ratio: Annotated[float, AtLeast(0)] = 2.0
    """human windows per robot window in every batch (DexWild's best: 2, i.e. 1:2); 0 trains on the robot data alone,
    in the same representation"""
    progress: bool = True
    device: str = "auto"
    """torch device for training ("cuda", "cuda:1", "cpu"); auto: CUDA when there is one. Checkpoints load on any."""

    def check(self) -> None:
        TrainConfig.check(self)
        if (self.out / "checkpoint.pt").exists() and not self.resume:
            raise UsageError("out", self.out, "holds a checkpoint; pass --resume to continue it, or choose another")
        resolve_device(self.device)
        if self.human is not None:
            check_human(self.human, self.dataset)


def check_human(human: Path, dataset: Path) -> None:
    """Refuses a human dataset that is not in the representation, or made for another env or robot."""
    h, r = dataset_env_args(human), dataset_env_args(dataset)
    if h.get("representation") != REPRESENTATION or h.get("embodiment") != "human":
        raise UsageError("human", human, "is not a retargeted human dataset; make one with python -m "
                                         "generators.human.to_robot")
    for key in ("env_name", "robot"):
        if h.get(key) != r.get(key):
            raise UsageError("human", human, f"was retargeted for {key} {h.get(key)!r}; {dataset} has {r.get(key)!r}")


def select_keys(path: Path, obs: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Low-dim keys with their sizes and image keys with their (H, W, C), as `obs` asks."""
    with open_dataset(path) as f:
        names = demo_names(f)
        if not names:
            raise DexError(f"{path} holds no demos", hint="record some with python -m generators.seed or "
                                                           "generators.augment")
        g = f["data"][names[0]]["obs"]
        shapes = {k: g[k].shape[1:] for k in g}
    images = {k: list(s) for k, s in shapes.items() if len(s) == 3}
    low = {k: int(np.prod(s)) for k, s in shapes.items() if len(s) != 3}
    if obs == "state":
        return low, {}
    if not images:
        raise DexError(f"--obs {obs}: {path} has no camera images (keys: {sorted(shapes)}); record them with "
                         f"`python -m generators.augment ... --obs-mode rgb` or `python -m generators.replay {path} "
                         f"--obs-mode rgb --out X.hdf5`")
    if obs == "rgb":
        low = {k: v for k, v in low.items() if k.startswith(PROPRIO)}
    return low, images


def default_down_dims(action_dim: int) -> tuple[int, int]:
    """U-Net widths for an action of this size: (64, 128) per 16 dimensions. The CPU-sized (64, 128) fits one hand's
    15-D action but underfits two hands' 30-D: the handover's base plateaued an order of magnitude higher in loss and
    dropped the object from the giving palm (docs/notebook.md)."""
    w = 64 * -(-action_dim // 16)
    return w, 2 * w


def config_of(cfg: TrainConfig, dataset: Path, ds: DemoWindows, low: dict, images: dict, run: dict) -> dict:
    with open_dataset(dataset) as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        # what evaluation may ask of the policy (the handover's giver): only what some training demo shows
        reset_options = sorted({f["data"][n].attrs["reset_options"] for n in ds.names})
    stats = {k: dict(min=np.asarray(ds.stats[k]["min"]).tolist(), max=np.asarray(ds.stats[k]["max"]).tolist())
             for k in ["actions", *low]}
    action_dim = int(np.asarray(ds.stats["actions"]["min"]).size)
    return dict(algo=cfg.algo, obs=cfg.obs, low_dim=low, images=images, obs_horizon=cfg.obs_horizon,
                action_horizon=cfg.action_horizon, action_steps=cfg.action_steps,
                action_dim=action_dim, down_dims=list(cfg.down_dims or default_down_dims(action_dim)),
                hidden_dims=list(cfg.hidden_dims), ddim_steps=cfg.ddim_steps, stats=stats, env_args=env_args,
                dataset=str(dataset), train_demos=len(ds.names), reset_options=[json.loads(o) for o in reset_options],
                train_config=asdict(cfg), train_run=run)


def batches(ds, batch_size: int, generator: torch.Generator):
    """Endless shuffled batches: a permutation per epoch, the last partial batch dropped."""
    if not ds.cache:  # windows read from the file one by one
        loader = torch.utils.data.DataLoader(ds, batch_size=min(batch_size, len(ds)), shuffle=True, drop_last=True,
                                             generator=generator)
        while True:
            yield from loader
    bs = min(batch_size, len(ds))
    while True:
        perm = torch.randperm(len(ds), generator=generator).numpy()
        for k in range(0, len(perm) - bs + 1, bs):
            b = ds.batch(perm[k : k + bs])
            yield dict(obs={key: torch.from_numpy(v) for key, v in b["obs"].items()},
                       actions=torch.from_numpy(b["actions"]))


def mixed_batches(robot: DemoWindows, human: DemoWindows, batch_size: int, ratio: float,
                  generator: torch.Generator):
    """Endless co-training batches: `ratio` human windows per robot window in every batch (rounded; at least one
    robot window), the human ones moved into the robot's normalization range key by key (each embodiment normalized
    by its own statistics, DexWild's per-embodiment normalization). `embodiment` marks the human rows."""
    n_human = min(batch_size - 1, round(batch_size * ratio / (1 + ratio)))
    robot_batches = batches(robot, batch_size - n_human, generator)
    human_batches = batches(human, n_human, generator) if n_human else None
    spans = {}  # key -> (human min, human span, robot span, robot min): x -> (x - h_min) / h_span * r_span + r_min
    for key in ["actions", *robot.obs_keys]:
        h, r = human.stats[key], robot.stats[key]
        spans[key] = [torch.as_tensor(v, dtype=torch.float32) for v in
                      (h["min"], np.maximum(h["max"] - h["min"], 1e-6), np.maximum(r["max"] - r["min"], 1e-6), r["min"])]

    def into_robot_range(key: str, x: torch.Tensor) -> torch.Tensor:
        h_min, h_span, r_span, r_min = spans[key]
        return (x - h_min) / h_span * r_span + r_min

    while True:
        b = next(robot_batches)
        if human_batches is None:
            yield dict(b, human=torch.zeros(len(b["actions"]), dtype=torch.bool))
            continue
        hb = next(human_batches)
        yield dict(obs={k: torch.cat([b["obs"][k], into_robot_range(k, hb["obs"][k])]) for k in b["obs"]},
                   actions=torch.cat([b["actions"], into_robot_range("actions", hb["actions"])]),
                   human=torch.arange(batch_size) >= batch_size - n_human)


def ema_copy(model, ema: EMAModel):
    m = copy.deepcopy(model)
    ema.copy_to(m.parameters())
    return m.eval()


def valid_windows(path: Path, keys: list[str], cfg: TrainConfig) -> DemoWindows | None:
    try:
        return DemoWindows(path, keys, cfg.obs_horizon, cfg.action_horizon, mask="valid", normalize=False)
    except ValueError:  # no validation demos (tiny datasets)
        return None


def valid_loss(model, ds: DemoWindows | None) -> float | None:
    if ds is None:
        return None
    g = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, generator=g)
    torch.manual_seed(0)  # the same noise draws each time: comparable numbers
    with torch.no_grad():
        losses = [model.loss(b["obs"], b["actions"]).item() for _, b in zip(range(4), loader)]
    return float(np.mean(losses))


def plot(out: Path, metrics: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    tr = [(m["step"], m["loss"]) for m in metrics if "loss" in m]
    if tr:
        s, l = zip(*tr)
        ax.plot(s, l, lw=0.8, alpha=0.5, label="train loss")
        k = max(1, len(l) // 50)
        ax.plot(s[k - 1 :], np.convolve(l, np.ones(k) / k, mode="valid"), label="train loss (smoothed)")
    va = [(m["step"], m["valid_loss"]) for m in metrics if m.get("valid_loss") is not None]
    if va:
        ax.plot(*zip(*va), "o-", color="tab:red", label="valid loss")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ev = [(m["step"], m["success"]) for m in metrics if "success" in m]
    if ev:
        ax2 = ax.twinx()
        ax2.plot(*zip(*ev), "s-", color="tab:green", label="sim success")
        ax2.set_ylim(-0.02, 1.02)
        ax2.set_ylabel("success rate")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left" if not ev else "lower left")
    ax.set_title(out.name)
    fig.tight_layout()
    with atomic_write(out / "loss.png") as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise UsageError("device", name, "valid: auto, cpu, cuda, cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("device", name, f"this torch ({torch.__version__}) sees no CUDA device; use auto or cpu")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run in hardware here: CUDA from Ampere on, a CPU with AVX512-BF16 or AMX. Elsewhere oneDNN
    emulates them and autocast slows training down."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in torch.cpu: missing ones say no
    return any(getattr(torch.cpu, f, lambda: False)() for f in checks)


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: to_device(v, device) if isinstance(v, dict) else v.to(device, non_blocking=True)
            for k, v in batch.items()}


def train(dataset: Path, out: Path, cfg: TrainConfig = TrainConfig(), steps: int = 6000, minutes: float | None = None,
          seed: int = 0, device: str = "auto", resume: bool = False, progress: bool = True, eval_every: int = 0,
          eval_episodes: int = 10, ckpt_every: int = 500, human: Path | None = None, human_ratio: float = 2.0) -> dict:
    """Trains a policy on `dataset` into `out` (checkpoint.pt, metrics.jsonl, loss.png) for `steps` steps (or
    `minutes`); with `resume`, from the checkpoint there. Every `eval_every` steps the EMA policy plays
    `eval_episodes` episodes. With `human`, co-trains on it at `human_ratio` human windows per robot window (module
    doc). Returns the run's summary (steps, seconds, losses, samples/s)."""
    validate(cfg)
    device = resolve_device(device)
    if cfg.precision == "bf16" and not native_bf16(device):
        print(f"[train] warning: --precision bf16 on {device}, which has no bf16 arithmetic (no AVX512-BF16 or AMX): "
              "autocast is emulated and slower than fp32 (benchmarks.train_throughput)")
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists() and not resume:
        raise UsageError("out", out, "holds a checkpoint; pass --resume to continue it, or choose another")
    torch.manual_seed(seed)
    source = dataset
    if human is not None:
        check_human(human, dataset)
        if cfg.obs != "state":
            raise UsageError("obs", cfg.obs, "co-training (--human) reads state: the representation has no images")
        if dataset_env_args(dataset).get("representation") != REPRESENTATION:
            dataset = out / "robot_relative.hdf5"
            if not dataset.exists():  # a resumed run converted it already
                out.mkdir(parents=True, exist_ok=True)
                relative_dataset(source, dataset)
    low, images = select_keys(dataset, cfg.obs)
    keys = sorted(low) + sorted(images)
    ds = DemoWindows(dataset, keys, cfg.obs_horizon, cfg.action_horizon, mask="train", normalize=False)
    constant = [k for k in low if np.array_equal(ds.stats[k]["min"], ds.stats[k]["max"])]
    if constant:
        # a key the same in every training window (one object's size) tells the policy nothing, and any other value
        # at test time would sit thousands of spans outside the range it was normalized to
        print(f"[train] leaving out obs keys constant over {dataset}: {constant}")
        low = {k: v for k, v in low.items() if k not in constant}
        keys = [k for k in keys if k not in constant]
        ds.obs_keys = [k for k in ds.obs_keys if k not in constant]
    valid = valid_windows(dataset, keys, cfg)
    model_cfg = config_of(cfg, dataset, ds, low, images, run=dict(
        dataset=str(source), out=str(out), steps=steps, seed=seed, device=str(device)))
    hds = None
    if human is not None:
        hds = DemoWindows(human, keys, cfg.obs_horizon, cfg.action_horizon, mask="train", normalize=False)
        model_cfg.update(representation=REPRESENTATION, cotrain=dict(
            human=str(human), human_ratio=human_ratio, human_demos=len(hds.names), robot_demos=len(ds.names)))
    ck = read_checkpoint(ckpt_path) if resume and ckpt_path.exists() else None
    if ck is not None and cfg.down_dims is None:  # the width it started with (an older default)
        model_cfg["down_dims"] = ck["config"]["down_dims"]
    model = build_model(model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = EMAModel(model.parameters(), power=0.75, use_ema_warmup=True)
    step, metrics, trained_seconds, start = 0, [], 0.0, 0  # start: the step the warm-up + cosine schedule began at
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, start = ck["step"], ck.get("schedule_start", 0)

    def schedule(start: int):  # warm-up, then cosine to 0 at `steps`
        return get_scheduler("cosine", opt, num_warmup_steps=cfg.warmup_steps, num_training_steps=steps - start)
    sched = schedule(start)
    if ck is not None:
        saved_lr = ck["optimizer"]["param_groups"][0]["lr"]
        if math.isclose(sched.lr_lambdas[0](step - start) * sched.base_lrs[0], saved_lr, rel_tol=1e-6, abs_tol=1e-12):
            sched.load_state_dict(ck["lr_scheduler"])  # the same schedule, interrupted: go on along it
            opt.param_groups[0]["lr"] = saved_lr  # building the scheduler reset it to the warm-up's first value
        elif step < steps:
            # more steps moved the schedule's end: jumping into the new cosine midway blew a trained base's loss up
            # by two orders of magnitude within 20 steps, because Adam's second moments still held the tiny
            # late-training gradients; a fresh warm-up lets them catch up
            start = step
            sched = schedule(start)
            print(f"[train] {steps} steps differ from the schedule {ckpt_path} was trained on: steps {step}-{steps} "
                  f"get their own warm-up and cosine")
        ema.load_state_dict(ck["ema"])
        ema.to(device)
        torch.set_rng_state(ck["rng"])
        trained_seconds = ck.get("trained_seconds", 0.0)
        metrics = [m for m in read_jsonl(out / "metrics.jsonl") if m["step"] <= step]
    out.mkdir(parents=True, exist_ok=True)  # only now: every check that could refuse the run has passed
    save_text(out / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in metrics))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[train] {cfg.algo} ({cfg.obs}: {keys}) on {len(ds.names)} demos / {len(ds)} windows"
          + (f" + {len(hds.names)} human demos / {len(hds)} windows at {human_ratio:g} human per robot window"
             if hds is not None else "")
          + f", {n_params / 1e6:.2f}M parameters, on {device} ({cfg.precision}), from step {step}")

    def save():
        save_checkpoint(ckpt_path, config=model_cfg, model=model.state_dict(), ema=ema.state_dict(),
                        ema_model=ema_copy(model, ema).state_dict(), optimizer=opt.state_dict(),
                        lr_scheduler=sched.state_dict(), rng=torch.get_rng_state(), step=step,
                        schedule_start=start, trained_seconds=trained_seconds)

    def log(m: dict) -> None:
        metrics.append(m)
        append_jsonl(out / "metrics.jsonl", m)

    gen = torch.Generator().manual_seed(seed + step)
    data = batches(ds, cfg.batch_size, gen) if hds is None else mixed_batches(ds, hds, cfg.batch_size, human_ratio, gen)
    bar = tqdm(total=steps, initial=step, desc=f"train {cfg.algo}", disable=not progress)
    t_start = time.perf_counter() - trained_seconds
    model.train()
    while step < steps:
        if minutes is not None and time.perf_counter() - t_start > 60 * minutes:
            print(f"[train] the {minutes}-minute budget ran out at step {step}")
            break
        batch = to_device({k: v for k, v in next(data).items() if k != "human"}, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            loss = model.loss(batch["obs"], batch["actions"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema.step(model.parameters())
        step += 1
        trained_seconds = time.perf_counter() - t_start
        bar.update(1)
        if step % 20 == 0 or step == 1:
            log(dict(step=step, loss=loss.item(), lr=sched.get_last_lr()[0], seconds=round(trained_seconds, 1)))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % ckpt_every == 0:
            save()
        if eval_every and eval_episodes and step % eval_every == 0:
            m = ema_copy(model, ema).cpu()  # policies act on CPU, next to the simulator
            res = evaluate(m, None, "train", seeds=1, episodes=eval_episodes, workers=1)
            log(dict(step=step, success=res["success_mean"], valid_loss=valid_loss(m, valid)))
            bar.set_postfix(loss=f"{loss.item():.4f}", success=f"{res['success_mean']:.0%}")
    bar.close()
    save()
    plot(out, metrics)
    losses = [m["loss"] for m in metrics if "loss" in m]
    summary = dict(step=step, seconds=round(trained_seconds, 1), params=n_params, first_loss=losses[0] if losses else None,
                   final_loss=float(np.mean(losses[-10:])) if losses else None,
                   samples_per_second=round(step * min(cfg.batch_size, len(ds)) / max(trained_seconds, 1e-9), 1))
    print(f"[train] done: step {step}, loss {summary['first_loss']:.4f} -> {summary['final_loss']:.4f}, "
          f"{summary['samples_per_second']:.0f} samples/s; wrote {ckpt_path}, {out / 'loss.png'}")
    return summary


def main(args: Args) -> dict:
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    return train(args.dataset, args.out, cfg, args.steps, args.minutes, args.seed, args.device, args.resume,
                 args.progress, args.eval_every, args.eval_episodes, args.ckpt_every, args.human, args.human_ratio)


if __name__ == "__main__":
    run_cli(main, Args)
