"""One module per task; importing this package registers them all."""
from dexenvs.tasks.grasp import DexGraspEnv

__all__ = ["DexGraspEnv"]
