"""What every benchmark and study shares: where results go, and writing them (atomically, with the commit and the
settings that made them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dexenvs.results import provenance, save_json

RESULTS = Path(__file__).parent / "results"


def save_result(path: Path, result: dict, settings: Any) -> Path:
    """`result` with its provenance (commit, machine, `settings`) written to `path` atomically."""
    return save_json(path, dict(result, provenance=provenance(settings)))
