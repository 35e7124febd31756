"""The environment library (the E of a scenario): lighting presets x table materials x backgrounds.

An environment is pure data; tasks apply it in `_load_lighting` and when they build the table and backdrop.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product


@dataclass(frozen=True)
class Lighting:
    ambient: tuple[float, float, float]
    # (direction, colour) of each directional light; the first casts shadows
    directional: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...]


@dataclass(frozen=True)
class TableMaterial:
    color: tuple[float, float, float, float]
    roughness: float
    metallic: float = 0.0


@dataclass(frozen=True)
class EnvironmentSpec:
    id: str
    lighting: Lighting
    table: TableMaterial
    background: tuple[float, float, float, float]


LIGHTING = {
    "studio": Lighting((0.35, 0.35, 0.35), (((0.3, 0.4, -1.0), (1.6, 1.6, 1.6)), ((-0.5, -0.3, -1.0), (0.5, 0.5, 0.5)))),
    "warm": Lighting((0.40, 0.30, 0.20), (((-0.4, 0.6, -1.0), (1.8, 1.35, 0.9)),)),
    "cool": Lighting((0.20, 0.26, 0.36), (((0.6, -0.2, -1.0), (1.0, 1.25, 1.7)),)),
    "dim": Lighting((0.12, 0.12, 0.12), (((0.0, 0.5, -1.0), (0.7, 0.7, 0.7)),)),
}
TABLES = {
    "wood": TableMaterial((0.55, 0.38, 0.22, 1), 0.7),
    "white": TableMaterial((0.88, 0.88, 0.85, 1), 0.4),
    "dark": TableMaterial((0.14, 0.14, 0.16, 1), 0.3, 0.2),
    "green": TableMaterial((0.20, 0.42, 0.26, 1), 0.9),
}
BACKGROUNDS = {
    "grey": (0.55, 0.55, 0.55, 1),
    "blue": (0.30, 0.42, 0.62, 1),
}

ENVIRONMENTS: dict[str, EnvironmentSpec] = {
    f"{l}-{t}-{b}": EnvironmentSpec(f"{l}-{t}-{b}", LIGHTING[l], TABLES[t], BACKGROUNDS[b])
    for l, t, b in product(LIGHTING, TABLES, BACKGROUNDS)
}


def get_environment(env_id: str) -> EnvironmentSpec:
    try:
        return ENVIRONMENTS[env_id]
    except KeyError:
        raise KeyError(f"unknown environment id {env_id!r}; valid ids: {list(ENVIRONMENTS)}") from None
