"""Registration with ManiSkill and gymnasium, and the API each kind of user gets from `gym.make`.

- `gym.make("DexGrasp-v0")` (one env, CPU backend): a plain gymnasium env with numpy observations and actions and no
  batch dimension, time-limited, as gymnasium's `check_env` and stable-baselines3 expect.
- `gym.make("DexGrasp-v0", num_envs=N)` or `sim_backend="gpu"`: ManiSkill's batched torch env (wrap it with
  `mani_skill.vector.wrappers.gymnasium.ManiSkillVectorEnv` for the vector API), with ManiSkill's batched time limit.
"""

from __future__ import annotations

import dataclasses
import gc
import os

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec
from mani_skill.utils.registration import REGISTERED_ENVS, TimeLimitWrapper, register_env
from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

TASK_IDS: list[str] = []

# gymnasium's AsyncVectorEnv (fork, its default on Linux) builds one env in the parent to read the spaces, closes it and
# forks. A closed env's SAPIEN scene sits in reference cycles until the garbage collector runs; a child that collects it
# destroys a render context whose Vulkan (lavapipe) threads it did not inherit and waits on them forever. Collecting
# in the parent before every fork tears such contexts down where their threads live.
os.register_at_fork(before=gc.collect)


class DexGymAPI(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Outermost wrapper `gym.make` adds: rebuilds the chain under it as `TimeLimit(CPUGymWrapper(env))` for a single
    CPU env, or ManiSkill's batched `TimeLimitWrapper(env)` otherwise, keeping the step limit gymnasium was given."""

    def __init__(self, env: gym.Env, max_episode_steps: int):
        gym.utils.RecordConstructorArgs.__init__(self, max_episode_steps=max_episode_steps)
        limit, e = max_episode_steps, env
        while isinstance(e, gym.Wrapper):
            if isinstance(e, gym.wrappers.TimeLimit):
                limit = e._max_episode_steps
            e = e.env
        base = e
        if base.num_envs == 1 and not base.gpu_sim_enabled:
            inner = gym.wrappers.TimeLimit(CPUGymWrapper(base), limit)
        else:
            inner = TimeLimitWrapper(base, limit)
        super().__init__(inner)
        self.max_episode_steps = limit

    @property
    def spec(self):
        # the spec gym.make was given (user kwargs, step limit, this wrapper), not one derived from the rebuilt chain
        # (whose CPUGymWrapper cannot be recreated), so gym.make(env.spec) rebuilds this env
        base = self.env.unwrapped.spec
        if base is None:
            return None
        return dataclasses.replace(base, max_episode_steps=self.max_episode_steps, additional_wrappers=(
            WrapperSpec("DexGymAPI", f"{__name__}:DexGymAPI", dict(max_episode_steps=self.max_episode_steps)),))


def _make(env_id: str, **kwargs):
    return REGISTERED_ENVS[env_id].make(**kwargs)


def register(env_id: str, max_episode_steps: int):
    """Class decorator: register a dexsuite task with ManiSkill and (with the API above) with gymnasium."""

    def deco(cls):
        cls.env_id, cls.max_episode_steps = env_id, max_episode_steps
        register_env(env_id, max_episode_steps=max_episode_steps, override=env_id in REGISTERED_ENVS)(cls)
        gym.registry.pop(env_id, None)
        gym.register(
            env_id,
            entry_point=f"{__name__}:_make",
            kwargs=dict(env_id=env_id),
            max_episode_steps=max_episode_steps,
            disable_env_checker=True,  # the checker would see the batched env before DexGymAPI unbatches it
            order_enforce=False,
            additional_wrappers=(
                WrapperSpec("DexGymAPI", f"{__name__}:DexGymAPI", dict(max_episode_steps=max_episode_steps)),
            ),
        )
        if env_id not in TASK_IDS:
            TASK_IDS.append(env_id)
        return cls

    return deco
