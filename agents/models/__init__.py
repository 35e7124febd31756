"""The policy networks: `ChunkModel` (what the diffusion policy and BC share), the models, and `build_model`, which
makes one from its config (stored in every checkpoint)."""

from agents.models.base import ChunkModel
from agents.models.bc import BCModel
from agents.models.diffusion import DiffusionModel

MODELS = {"diffusion": DiffusionModel, "bc": BCModel}


def build_model(cfg: dict) -> ChunkModel:
    if cfg["algo"] not in MODELS:
        raise ValueError(f"unknown algo {cfg['algo']!r}; valid: {list(MODELS)}")
    return MODELS[cfg["algo"]](cfg)


__all__ = ["BCModel", "ChunkModel", "DiffusionModel", "MODELS", "build_model"]
