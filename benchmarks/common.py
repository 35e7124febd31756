"""What every benchmark and study shares: where results go, and writing them (atomically, with the commit and the
settings that made them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dexenvs.cli import check_output
from dexenvs.results import provenance, save_json

RESULTS = Path(__file__).parent / "results"


def save_result(path: Path, result: dict, settings: Any) -> Path:
    """`result` with its provenance (commit, machine, `settings`) written to `path` atomically."""
    return save_json(path, dict(result, provenance=provenance(settings)))


@dataclass(kw_only=True)
class ResultArgs:
    """What every benchmark's arguments share: the results of an earlier run are kept unless `--overwrite`."""

    overwrite: bool = False
    """replace the results an earlier run wrote"""

    def outputs(self) -> list[Path]:
        """The result files this run writes."""
        return []

    def check(self) -> None:
        for path in self.outputs():
            check_output("out", path, self)
