"""Checkpoints: one file holding the config (with the dataset's statistics), the weights, the EMA weights, and the
optimizer / LR schedule / RNG state for resuming. Written atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path

import torch

from agents.models import ChunkModel, build_model
from agents.policy import Policy
from dexenvs.cli import DexError
from dexenvs.results import atomic_write


def save_checkpoint(path: str | Path, **state) -> None:
    with atomic_write(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise DexError(f"no checkpoint at {path}", hint="train one with python -m agents.train")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        raise DexError(f"{path} is not a readable checkpoint: {e}") from None
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise DexError(f"{path} is not a dexsuite agents checkpoint (no config/model)")
    return ckpt


def load_model(path: str | Path, ema: bool = True) -> ChunkModel:
    """The trained model (its EMA weights by default)."""
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["config"])
    model.load_state_dict(ckpt["ema_model"] if ema and ckpt.get("ema_model") else ckpt["model"])
    return model.eval()


def load_policy(path: str | Path, ema: bool = True, **policy_kwargs) -> Policy:
    return Policy(load_model(path, ema), **policy_kwargs)
