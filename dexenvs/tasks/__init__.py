"""One module per task; importing this package registers them all."""
from dexenvs.tasks.grasp import DexGraspEnv
from dexenvs.tasks.handover import DexHandoverEnv
from dexenvs.tasks.lift import DexLiftEnv
from dexenvs.tasks.pour import DexPourEnv

__all__ = ["DexGraspEnv", "DexHandoverEnv", "DexLiftEnv", "DexPourEnv"]
