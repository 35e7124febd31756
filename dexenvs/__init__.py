"""Dexterous manipulation environments on ManiSkill3. Importing the package registers every task with ManiSkill and
gymnasium: `import dexenvs; gym.make("DexGrasp-v0")` (or `gym.make("dexenvs:DexGrasp-v0")` without the import)."""

import warnings as _warnings

_warnings.filterwarnings("ignore", message=".*Failed to find system libvulkan.*")
# ManiSkill's joint controllers build float32 Boxes from float64 joint limits; the cast is exact enough and harmless
_warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32.*")

from dexenvs import robots  # noqa: E402,F401  (registers the agents)
from dexenvs.registration import TASK_IDS  # noqa: E402
from dexenvs.scenarios import SPLITS, Scenario  # noqa: E402
from dexenvs import tasks  # noqa: E402,F401

__all__ = ["TASK_IDS", "SPLITS", "Scenario"]
