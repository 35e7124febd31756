"""One module per task, each holding its env class and its `TaskSpec`; importing this package registers them all."""
from typing import Literal

from dexenvs.tasks.grasp import DexGraspEnv
from dexenvs.tasks.handover import DexHandoverEnv
from dexenvs.tasks.lift import DexLiftEnv
from dexenvs.tasks.pour import DexPourEnv
from dexenvs.tasks.regrasp import DexRegraspEnv
from dexenvs.tasks.spec import (FlywheelPreset, TaskSpec, get_task, import_tasks, register_task, task_modules, task_names,
                                task_of_env)

TaskName = Literal[tuple(task_names())]  # the built-in tasks, as command-line choices

__all__ = ["DexGraspEnv", "DexHandoverEnv", "DexLiftEnv", "DexPourEnv", "DexRegraspEnv", "FlywheelPreset", "TaskSpec", "TaskName",
           "get_task", "import_tasks", "register_task", "task_modules", "task_names", "task_of_env"]
