"""`Recorder`: a wrapper that records any dexenvs env's episodes as `Episode`s (`dexenvs.trajectory.dataset`), and the
env arguments a dataset stores to rebuild the env it was recorded in (`env_args_of`, `make_env`).

Works on the env gym.make returns or on the unwrapped batched env with one sub-env. Per step it keeps the observation
the action was chosen from (every obs key, images as uint8 HWC), the action, reward, done, the full sim state (to reset
and replay exactly), and MimicGen's datagen info: each hand's wrist pose, the task's reference
poses (`env.reference_poses()`: the object, and DexPour-v0's bowl) and the phase labels.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from dexenvs.trajectory.dataset import Episode


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def flatten_obs(obs: dict, prefix: str = "", keep_batch: bool = False) -> dict[str, np.ndarray]:
    """ManiSkill's nested obs dict -> flat robomimic keys (agent_qpos, extra_obj_pose, head_rgb, ...) as numpy, batch
    dim 0 dropped unless `keep_batch`. Camera parameters are left out."""
    out = {}
    for k, v in obs.items():
        if k in ("sensor_param",):
            continue
        if isinstance(v, dict):
            out.update(flatten_obs(v, "" if k == "sensor_data" else f"{prefix}{k}_", keep_batch))
        else:
            out[prefix + k] = _np(v) if keep_batch else _np(v)[0]
    return out


def env_args_of(env) -> dict:
    """What a dataset records to rebuild `env`: its id, kwargs, robots and control mode (robomimic's env_args)."""
    base = env.unwrapped
    mode = base.control_mode
    if isinstance(mode, dict):  # several hands: ManiSkill reports one mode per agent; ours share one
        modes = set(mode.values())
        mode = modes.pop() if len(modes) == 1 else mode
    kwargs = dict(obs_mode=base.obs_mode, control_mode=mode, robot_uids=list(base.robot_names),
                  split=base.split, **base.task_kwargs)
    return dict(env_name=base.spec.id if base.spec else type(base).__name__, env_type="dexsuite", env_kwargs=kwargs,
                robot=list(base.robot_names), control_mode=mode)


def make_env(env_args: dict, obs_mode: str | None = None, render: bool = False):
    """The (unwrapped, batched) env a dataset was recorded in, optionally in another observation mode."""
    kwargs = dict(env_args["env_kwargs"])
    if obs_mode:
        kwargs["obs_mode"] = obs_mode
    return gym.make(env_args["env_name"], render_mode="rgb_array" if render else None, **kwargs).unwrapped


def _batched(obs: dict, space: gym.Space) -> bool:
    """Whether a dict observation carries a batch dimension its space does not have."""
    for k, v in obs.items():
        sub = space[k] if isinstance(space, gym.spaces.Dict) and k in space.spaces else None
        if isinstance(v, dict):
            return _batched(v, sub)
        return sub is None or np.ndim(v) > len(sub.shape)
    return True


class Recorder(gym.Wrapper):
    """`base`: the sim env whose state mirrors `env` (default `env.unwrapped`); a `HardwareEnv` passes its twin, so a
    real robot's episodes carry the measured states like a sim's."""

    def __init__(self, env: gym.Env, base=None):
        super().__init__(env)
        self.base = base if base is not None else env.unwrapped
        if self.base.num_envs != 1:
            raise ValueError(f"Recorder records one episode at a time: make the env with num_envs=1, not {self.base.num_envs}")
        self._steps: list = []

    def _obs_dict(self, obs) -> dict[str, np.ndarray]:
        if not isinstance(obs, dict):
            return flatten_obs(self.base.get_obs(unflattened=True))
        # gym.make's single-env API has no batch dimension to drop
        space = getattr(self.env, "single_observation_space", None) or self.env.observation_space
        return flatten_obs(obs, keep_batch=not _batched(obs, space))

    def _datagen(self) -> dict[str, np.ndarray]:
        snap = self.base.snapshot()
        d = {f"wrist_pose_{k}": np.concatenate([_np(snap[f"wrist_pos{k}"][0]), _np(snap[f"wrist_quat{k}"][0])])
             for k in range(len(self.base._hands))}
        d.update({k: _np(v[0]) for k, v in self.base.reference_poses().items()})
        return d

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.seed, self.options = seed, dict(options or {})
        self._steps = []
        self._obs = self._obs_dict(obs)
        self._states = [_np(self.base.get_state())[0]]
        self._last_info = info
        return obs, info

    def step(self, action, phase=None):
        """`phase`: this step's label, one string or one per hand (experts return them with each action)."""
        datagen = self._datagen()
        obs, reward, terminated, truncated, info = self.env.step(action)
        a = _np(action).reshape(-1)
        labels = (phase,) if isinstance(phase, str) or phase is None else tuple(phase)
        self._steps.append((self._obs, a, float(_np(reward).reshape(-1)[0]), bool(_np(terminated).reshape(-1)[0]),
                            datagen, labels))
        self._obs = self._obs_dict(obs)
        self._states.append(_np(self.base.get_state())[0])
        self._last_info = info
        return obs, reward, terminated, truncated, info

    def episode(self, provenance: dict | None = None, phases: list | None = None) -> Episode:
        """The episode recorded since the last reset; `phases` (one label or one per hand, per step) replaces the
        labels passed to step(), e.g. the ones `dexenvs.experts.rollout` returns."""
        if not self._steps:
            raise RuntimeError("no steps recorded since reset")
        obs_list, actions, rewards, dones, datagen, labels = zip(*self._steps)
        if phases is not None:
            labels = [(p,) if isinstance(p, str) else tuple(p) for p in phases]
        names = list(dict.fromkeys(l for ls in labels for l in ls if l is not None))  # in order of first use
        phase = np.array([[names.index(l) if l is not None else -1 for l in ls] for ls in labels], dtype=np.int8)
        info = self._last_info
        success = bool(_np(info["success"]).reshape(-1)[0])
        scenario = info["scenario"] if isinstance(info["scenario"], str) else info["scenario"][0]
        return Episode(actions=np.stack(actions), obs={k: np.stack([o[k] for o in obs_list]) for k in obs_list[0]},
                       rewards=np.array(rewards, dtype=np.float32), dones=np.array(dones), states=np.stack(self._states),
                       datagen_info=dict({k: np.stack([d[k] for d in datagen]) for k in datagen[0]}, phase=phase),
                       scenario=scenario, seed=int(self.seed) if self.seed is not None else -1,
                       reset_options={k: v for k, v in self.options.items()  # the scenario has its own field
                                      if isinstance(v, (str, int, float)) and k != "scenario"},
                       success=success, phase_names=names, provenance=dict(provenance or {}))
