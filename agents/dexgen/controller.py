"""Drive a hand by keypoint-motion commands: what a teleoperation system or a high-level policy produces.

`DexGenController(env, checkpoint)` wraps a dexsuite env whose hand the controller was trained for (its observations
carry the hand's keypoints and joint targets, as DexRegrasp-v0's do) into an env whose action is a command: the
motion of the K keypoints over the next `horizon` control steps, (horizon, K, 3) metres in the hand frame, each
relative to the keypoints now (a batched env takes (num_envs, horizon, K, 3)). Each step samples a keypoint motion from
the model guided toward the command with strength `alpha` (0: the model's own motion, the command ignored), turns its
first step into joint targets with the inverse dynamics model and executes them as absolute targets.

`DirectController(env)` takes the same command and executes it without the model: the command's first step is
retargeted to joint targets finger by finger (damped least squares on the hand's kinematics), as a teleoperation
retargeter would. It is the baseline the controller is measured against.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agents.dexgen.features import History, check_mode, step_features
from agents.dexgen.kinematics import KeypointKinematics
from dexenvs.robots import ROBOTS

COMMAND_BOUND = 0.05  # m per keypoint and step ahead: the action space's box (no finger moves that far in 50 ms)


class _KeypointCommandEnv(gym.Wrapper, gym.utils.RecordConstructorArgs):
    def __init__(self, env: gym.Env, horizon: int):
        base = env.unwrapped
        if base.control_mode != "pd_joint_pos":
            raise ValueError(f"a keypoint-command controller executes absolute joint targets: make the env with "
                             f"control_mode='pd_joint_pos', not {base.control_mode!r}")
        super().__init__(env)
        hand = ROBOTS[base.robot_names[0]]
        self.num_keypoints = len(hand.keypoint_links)
        self.horizon = horizon
        self.single_command_shape = (horizon, self.num_keypoints, 3)
        self.action_space = gym.spaces.Box(-COMMAND_BOUND, COMMAND_BOUND, self.single_command_shape, np.float32)
        self.base = base
        # gym.make gives one sub-env behind ManiSkill's CPUGymWrapper: numpy in and out, no batch dimension
        self.unbatched = _has_wrapper(env, "CPUGymWrapper")

    def check_command(self, command) -> torch.Tensor:
        """A (horizon, K, 3) or (num_envs, horizon, K, 3) command as a float tensor, or a ValueError that says why."""
        c = torch.as_tensor(np.asarray(command.cpu() if isinstance(command, torch.Tensor) else command,
                                       dtype=np.float32))
        b, shape = self.base.num_envs, self.single_command_shape
        if tuple(c.shape) == shape:
            c = c.unsqueeze(0).expand(b, *shape)
        if tuple(c.shape) != (b, *shape):
            raise ValueError(f"a keypoint-motion command has shape {shape} (horizon, keypoints, xyz) or "
                             f"{(b, *shape)}; got {tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError("the keypoint-motion command has non-finite values (nan or inf)")
        return c

    def execute(self, targets: torch.Tensor):
        """Steps the wrapped env with absolute joint targets (b, J)."""
        if self.unbatched:
            return self.env.step(targets[0].detach().cpu().numpy())
        return self.env.step(targets.to(self.base.device))

    def features(self) -> torch.Tensor:
        """(b, F) step features of the hand now, in action order."""
        b = self.base
        ctrl = b.agent.controller
        kp = b.snapshot()["keypoints"].reshape(b.num_envs, -1)
        return step_features(kp.float(), ctrl.qpos.float(), ctrl._target_qpos.float())

    def keypoints(self) -> torch.Tensor:
        return self.base.snapshot()["keypoints"].clone()


class DexGenController(_KeypointCommandEnv):
    def __init__(self, env: gym.Env, checkpoint: str | Path | None = None, model=None, alpha: float = 1.0,
                 mode: str = "regrasp", ddim_steps: int | None = None, seed: int = 0):
        from agents.dexgen.train import load_dexgen

        if model is None:
            if checkpoint is None:
                raise ValueError("DexGenController needs a checkpoint (or a loaded model)")
            model = load_dexgen(checkpoint)
        gym.utils.RecordConstructorArgs.__init__(self, checkpoint=checkpoint, model=model, alpha=alpha, mode=mode,
                                                 ddim_steps=ddim_steps, seed=seed)
        robot = env.unwrapped.robot_names[0]
        if model.cfg["robot"] != robot:
            raise ValueError(f"this DexGen model was trained for {model.cfg['robot']!r}, the env's hand is {robot!r}")
        super().__init__(env, model.horizon)
        if model.K != self.num_keypoints:
            raise ValueError(f"model has {model.K} keypoints, {robot} has {self.num_keypoints}")
        self.model = model.eval()
        self.alpha = float(alpha)
        self.mode = mode
        self.ddim_steps = ddim_steps
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.history = History(model.history)
        self.last_motion: torch.Tensor | None = None

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._mode_idx = check_mode(value)
        self._mode = value

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"alpha (guidance strength) must be a finite number >= 0, got {value}")
        self._alpha = float(value)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        if seed is not None:
            self.generator.manual_seed(int(np.atleast_1d(seed)[0]) * 7919 + self.seed)
        self.history.reset(self.features())
        return obs, info

    @torch.no_grad()
    def plan(self, command: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(motion (b, horizon, K, 3), joint targets (b, J)) for a checked command (None: unguided)."""
        mode = torch.full((self.base.num_envs,), self._mode_idx, dtype=torch.long)
        cond = self.model.condition(self.history.buf, mode)
        motion = self.model.sample(cond, command, self.alpha, self.ddim_steps, self.generator)
        targets = self.base.agent.controller.qpos.float() + self.model.inverse(cond, motion)
        return motion, targets

    def step(self, command):
        c = self.check_command(command)
        motion, targets = self.plan(c)
        self.last_motion = motion
        obs, reward, terminated, truncated, info = self.execute(targets)
        self.history.push(self.features())
        return obs, reward, terminated, truncated, info


class DirectController(_KeypointCommandEnv):
    def __init__(self, env: gym.Env, horizon: int = 2):
        gym.utils.RecordConstructorArgs.__init__(self, horizon=horizon)
        super().__init__(env, horizon)
        self.kin = KeypointKinematics(env)

    def step(self, command):
        c = self.check_command(command).numpy()
        current = self.base.agent.controller._target_qpos.cpu().numpy()
        targets = np.stack([self.kin.retarget(current[i], c[i, 0]) for i in range(len(c))]).astype(np.float32)
        return self.execute(torch.as_tensor(targets))


def _has_wrapper(env: gym.Env, name: str) -> bool:
    while isinstance(env, gym.Wrapper):
        if type(env).__name__ == name:
            return True
        env = env.env
    return False
