"""`HardwareEnv`: a dexsuite task on real devices, with the sim env's API, spaces and controller.

As ManiSkill's `Sim2RealEnv` does, it keeps a twin of the task's sim env: each step it copies what the devices measure
into the twin (joint positions, the passive joints through the URDF's mimic relations, the object's pose), runs the
twin's own controller on the task's action (e.g. `pd_wrist_pose`) to get joint targets, and computes observations,
reward and success from the twin's state, so a policy sees exactly the keys, shapes and dtypes it was trained on. It
adds what Sim2RealEnv leaves out: every target passes the always-on safety layer (`dexenvs.hardware.safety`), a
watchdog thread stops the robot when commands stop coming, the loop runs at the task's control rate and reports its
overruns, and `info` says what the safety layer did.
"""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Callable

import gymnasium as gym
import numpy as np
import torch
from mani_skill.utils import common
from mani_skill.utils.structs.pose import Pose

from dexenvs.hardware.drivers import Devices, JointReading
from dexenvs.hardware.safety import SafetyConfig, SafetyLayer, SafetyStop


class SpaceMismatch(ValueError):
    """The devices cannot produce the sim task's observations or carry out its actions; the message lists each
    difference."""


@dataclass
class Reading:
    qpos: np.ndarray
    """(n,) the actuated joints in the env's `joint_names` order"""
    stamp: float
    """the oldest of the joint readings' timestamps"""
    force: np.ndarray | None
    faults: tuple[str, ...]
    obj_pose: np.ndarray | None
    obj_stamp: float | None
    images: dict[str, np.ndarray] = field(default_factory=dict)


def mimic_relations(urdf_path: str) -> dict[str, tuple[str, float, float]]:
    """joint -> (the joint it follows, multiplier, offset) from a URDF's <mimic> tags: q = multiplier * q_src + offset."""
    out = {}
    for j in ET.parse(urdf_path).getroot().iter("joint"):
        m = j.find("mimic")
        if m is not None:
            out[j.get("name")] = (m.get("joint"), float(m.get("multiplier", 1.0)), float(m.get("offset", 0.0)))
    return out


def check_spaces(sim_space: gym.Space, hw_space: gym.Space, path: str = "") -> list[str]:
    """Every difference between two observation (or action) spaces, key by key: missing and extra keys, shapes, dtypes."""
    if isinstance(sim_space, gym.spaces.Dict) != isinstance(hw_space, gym.spaces.Dict):
        return [f"{path or 'observation'}: sim has {type(sim_space).__name__}, hardware {type(hw_space).__name__}"]
    if isinstance(sim_space, gym.spaces.Dict):
        out = []
        for k in sim_space.spaces:
            if k not in hw_space.spaces:
                out.append(f"{path}{k}: missing on the hardware")
            else:
                out += check_spaces(sim_space[k], hw_space[k], f"{path}{k}/")
        out += [f"{path}{k}: not in the sim task" for k in hw_space.spaces if k not in sim_space.spaces]
        return out
    key = path.rstrip("/") or "action"
    out = []
    if sim_space.shape != hw_space.shape:
        out.append(f"{key}: shape {hw_space.shape} on the hardware, {sim_space.shape} in the sim")
    if sim_space.dtype != hw_space.dtype:
        out.append(f"{key}: dtype {hw_space.dtype} on the hardware, {sim_space.dtype} in the sim")
    return out


def _space_of(x) -> gym.Space:
    if isinstance(x, dict):
        return gym.spaces.Dict({k: _space_of(v) for k, v in x.items()})
    x = np.asarray(x)
    return gym.spaces.Box(-np.inf, np.inf, x.shape, x.dtype) if x.dtype != np.uint8 else gym.spaces.Box(0, 255, x.shape, np.uint8)


def default_reset_hook(seed, options, twin) -> None:
    scenario = twin.scenarios[0]
    input(f"[hardware] place {scenario.object_id} at pose {scenario.pose_id} ({twin.space.pose(scenario.pose_id)} "
          f"x, y, yaw), then press Enter ")


class HardwareEnv(gym.Env):
    """A dexsuite task on devices. `env_id`: the sim task; `devices`: joint drivers covering the sim robot's actuated
    joints, an object-pose source if the task observes the object, cameras by the sim's sensor names. `reset_hook(seed,
    options, twin)` sets the scene up before each episode (an operator places the object; the loopback robot resets its
    sim); `ramp_steps`: at most this many control periods to bring the robot to the task's start pose."""

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, devices: Devices, safety: SafetyConfig | None = None, obs_mode: str = "state_dict",
                 reset_hook: Callable | None = default_reset_hook, ramp_steps: int = 100, watchdog: bool = True,
                 connect: bool = True, **sim_kwargs):
        self.api = gym.make(env_id, obs_mode=obs_mode, **sim_kwargs)
        self.twin = self.api.unwrapped
        self.env_id, self.devices, self.reset_hook, self.ramp_steps = env_id, devices, reset_hook, ramp_steps
        self.observation_space, self.action_space = self.api.observation_space, self.api.action_space
        self.max_episode_steps = self.api.spec.max_episode_steps if self.api.spec else None
        self.period = 1.0 / self.twin.control_freq
        robot = self.twin.agent.robot
        active = [j.name for j in robot.get_active_joints()]
        self.joint_names = [j.name for c in self._ctrls for j in c.joints]
        self._map_drivers(active)
        mimic = mimic_relations(self.twin.agent.urdf_path)
        self._mimic = self._resolve_mimic(mimic, active)
        limits = robot.get_qlimits()[0].cpu().numpy()
        lower = limits[[active.index(n) for n in self.joint_names], 0].astype(np.float64)
        upper = limits[[active.index(n) for n in self.joint_names], 1].astype(np.float64)
        for d, idx in zip(devices.joints, self._driver_idx):
            lower[idx], upper[idx] = np.maximum(lower[idx], d.lower), np.minimum(upper[idx], d.upper)
        joints = {j.name: j for j in robot.get_active_joints()}
        prismatic = np.array([joints[n]._objs[0].type == "prismatic" for n in self.joint_names])
        self._active_idx = np.array([active.index(n) for n in self.joint_names])
        self.safety = SafetyLayer(self.joint_names, lower, upper, prismatic, self.period, safety,
                                  wrist_position=self._wrist_position if self.twin.agent.floating else None)
        self._io = threading.RLock()  # device I/O from the loop and the watchdog never interleaves
        self._last_command = None
        self._prev: Reading | None = None
        self._last_read = self._reading_stamp = time.monotonic()
        self._episode_running = False
        self._periods: list[float] = []
        self.overruns = 0
        if connect:
            for d in devices.joints:
                d.connect()
        self._check_observations(obs_mode)
        self._watchdog_stop = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, daemon=True, name="hardware-watchdog") if watchdog else None
        if self._watchdog:
            self._watchdog.start()

    @property
    def _ctrls(self) -> list:
        """The twin's joint-position controllers (rebuilt when a reset reconfigures the scene)."""
        return [c for c in self.twin.agent.controller.controllers.values() if hasattr(c.config, "stiffness")]

    # ------------------------------------------------------------------ construction checks
    def _map_drivers(self, active: list[str]) -> None:
        problems, seen = [], {}
        self._driver_idx = []
        for d in self.devices.joints:
            idx = []
            for n in d.joint_names:
                if n not in self.joint_names:
                    problems.append(f"{type(d).__name__} drives {n!r}, which the task's controller does not command "
                                    f"(valid: {self.joint_names})")
                elif n in seen:
                    problems.append(f"{n!r} is driven by both {seen[n]} and {type(d).__name__}")
                else:
                    seen[n] = type(d).__name__
                    idx.append(self.joint_names.index(n))
            self._driver_idx.append(np.array(idx, dtype=int))
        missing = [n for n in self.joint_names if n not in seen]
        if missing:
            problems.append(f"no driver moves {missing}")
        if problems:
            raise SpaceMismatch(f"{self.env_id} on these devices: " + "; ".join(problems))

    def _resolve_mimic(self, mimic: dict, active: list[str]) -> list[tuple[int, int, float, float]]:
        """(joint index, source index, multiplier, offset) in the active-joint order, sources before followers,
        chains (a mimic of a mimic) folded into one relation to an actuated joint."""
        out = []
        for n in active:
            if n in self.joint_names:
                continue
            if n not in mimic:
                raise SpaceMismatch(f"{self.env_id}: joint {n!r} is neither commanded nor a URDF mimic joint, so no "
                                    f"device reading can set it")
            src, m, o = mimic[n]
            while src not in self.joint_names:  # q = m (m2 q2 + o2) + o
                if src not in mimic:
                    raise SpaceMismatch(f"{self.env_id}: mimic chain of {n!r} ends at {src!r}, which no driver moves")
                src2, m2, o2 = mimic[src]
                src, m, o = src2, m * m2, m * o2 + o
            out.append((active.index(n), active.index(src), m, o))
        return out

    def _check_observations(self, obs_mode: str) -> None:
        problems = []
        extra = self.observation_space.spaces.get("extra") if isinstance(self.observation_space, gym.spaces.Dict) else None
        if extra is not None and "obj_pose" in extra.spaces and self.devices.object_pose is None:
            problems.append("extra/obj_pose: the task observes the object's pose and no object-pose source was given")
        sensors = self.observation_space.spaces.get("sensor_data") if isinstance(self.observation_space, gym.spaces.Dict) else None
        if sensors is not None:
            for name in sensors.spaces:
                if name not in self.devices.cameras:
                    problems.append(f"sensor_data/{name}: no camera named {name!r} (cameras: {list(self.devices.cameras)})")
            problems += [f"camera {n!r}: the sim task has no such sensor (sensors: {list(sensors.spaces)})"
                         for n in self.devices.cameras if n not in sensors.spaces]
        if problems:
            raise SpaceMismatch(f"{self.env_id} on these devices: " + "; ".join(problems))
        self.api.reset(seed=0)  # a scene to compute observations in
        obs = self._observe(self._read(), first=True)
        diffs = check_spaces(self.observation_space, _space_of(obs))
        if diffs:
            raise SpaceMismatch(f"{self.env_id} on these devices: " + "; ".join(diffs))

    # ------------------------------------------------------------------ devices
    def _read(self) -> Reading:
        try:
            r = self._read_devices()
        except Exception as e:
            # a device that cannot be read is a fault: the others are brought to a safe stop before the error rises
            self.safety.stop("fault", f"reading the devices failed: {e}")
            self._stop_devices()
            raise
        if r.faults and self.safety.stopped is None:  # a fault the device reports stops the robot at once
            self.safety.stop("fault", "; ".join(r.faults))
            self._stop_devices()
        return r

    def _read_devices(self) -> Reading:
        with self._io:
            q = np.zeros(len(self.joint_names))
            force = np.zeros(len(self.joint_names))
            has_force, stamps, faults = True, [], []
            for d, idx in zip(self.devices.joints, self._driver_idx):
                r: JointReading = d.read()
                q[idx] = r.qpos
                stamps.append(r.stamp)
                faults += list(r.faults)
                if r.force is None:
                    has_force = False
                else:
                    force[idx] = r.force
            pose = self.devices.object_pose.read() if self.devices.object_pose is not None else None
            images = {n: c.read().image for n, c in self.devices.cameras.items()}
        self._last_read, self._reading_stamp = time.monotonic(), min(stamps)
        return Reading(q, min(stamps), force if has_force else None, tuple(faults),
                       None if pose is None else np.asarray(pose.pose, np.float64), None if pose is None else pose.stamp,
                       images)

    def _send(self, targets: np.ndarray) -> np.ndarray:
        sent = targets.copy()
        with self._io:
            if self.safety.stopped is not None:  # the watchdog stopped the robot since these targets were filtered
                return sent
            try:
                for d, idx in zip(self.devices.joints, self._driver_idx):
                    sent[idx] = d.send(targets[idx])
            except Exception as e:
                self.safety.stop("fault", f"sending to {type(d).__name__} failed: {e}")
                self._stop_devices()
                raise
            self._last_command = time.monotonic()
        return sent

    def _stop_devices(self) -> None:
        with self._io:
            for d in self.devices.joints:
                try:
                    d.stop()
                except Exception as e:  # one device gone must not keep the others from stopping
                    self.safety.stop("fault", f"{type(d).__name__}.stop failed: {e}")

    def _watch(self) -> None:
        """While an episode runs: stops the robot when its sensors go stale (reading them itself when the loop has not
        for half a period, so a slow policy step does not hide a dead sensor) or when commands stop coming (a hung
        policy, a crashed process)."""
        while not self._watchdog_stop.wait(self.period / 5):
            if not self._episode_running or self.safety.stopped is not None or self._last_command is None:
                continue
            now = time.monotonic()
            try:
                if now - self._last_read > self.period / 2:
                    self._read()
            except Exception:  # `_read` stopped the robot; the watchdog itself carries on
                continue
            age = time.monotonic() - self._reading_stamp  # the oldest driver's
            late = time.monotonic() - self._last_command
            if age > self.safety.cfg.stale_periods * self.period:
                self.safety.stop("stale_sensor", f"newest joint reading is {age * 1000:.0f} ms old", amount=age)
                self._stop_devices()
            elif late > self.safety.cfg.command_periods * self.period:
                self.safety.stop("late_command", f"no command for {late * 1000:.0f} ms", amount=late)
                self._stop_devices()

    # ------------------------------------------------------------------ the twin
    def _sync(self, r: Reading, prev: Reading | None) -> None:
        """Writes the measured state into the twin: joints (passive ones through their mimic relation), joint speeds
        from the last two readings, the object's pose and speed."""
        robot = self.twin.agent.robot
        qpos = robot.get_qpos().clone()
        qvel = torch.zeros_like(qpos)
        qpos[0, self._active_idx] = torch.as_tensor(r.qpos, dtype=qpos.dtype)
        if prev is not None and r.stamp > prev.stamp:
            qvel[0, self._active_idx] = torch.as_tensor((r.qpos - prev.qpos) / (r.stamp - prev.stamp), dtype=qpos.dtype)
        for j, s, m, o in self._mimic:
            qpos[0, j] = m * qpos[0, s] + o
            qvel[0, j] = m * qvel[0, s]
        robot.set_qpos(qpos)
        robot.set_qvel(qvel)
        if r.obj_pose is not None:
            p = torch.as_tensor(r.obj_pose, dtype=torch.float32)[None]
            self.twin.obj.set_pose(Pose.create_from_pq(p[:, :3], p[:, 3:]))
            lin = torch.zeros(1, 3)
            if prev is not None and prev.obj_pose is not None and r.obj_stamp > prev.obj_stamp:
                lin = torch.as_tensor((r.obj_pose[:3] - prev.obj_pose[:3]) / (r.obj_stamp - prev.obj_stamp),
                                      dtype=torch.float32)[None]
            self.twin.obj.set_linear_velocity(lin)
            self.twin.obj.set_angular_velocity(torch.zeros(1, 3))
        self.twin._snap = None

    def _wrist_position(self, targets: np.ndarray) -> np.ndarray:
        """The wrist's world position if the joints were at `targets`: the twin's kinematics, its state restored."""
        robot = self.twin.agent.robot
        saved = robot.get_qpos().clone()
        q = saved.clone()
        q[0, self._active_idx] = torch.as_tensor(targets, dtype=q.dtype)
        for j, s, m, o in self._mimic:
            q[0, j] = m * q[0, s] + o
        robot.set_qpos(q)
        p = robot.links_map[self.twin.agent.wrist_link].pose.p[0].cpu().numpy().astype(np.float64)
        robot.set_qpos(saved)
        return p

    def _controller_targets(self, action: np.ndarray) -> np.ndarray:
        """The twin's controller on the task's action, from the measured state: the joint targets it would set."""
        self.twin.agent.set_action(torch.as_tensor(action, dtype=torch.float32)[None])
        return np.concatenate([c._target_qpos[0].cpu().numpy() for c in self._ctrls]).astype(np.float64)

    def _observe(self, r: Reading, first: bool = False, prev: Reading | None = None, stepped: bool = False):
        self._sync(r, prev)
        if stepped:
            self.twin._after_control_step()
        info = self.twin.get_info()
        obs = self.twin.get_obs(info)
        obs = common.unbatch(common.to_numpy(obs))
        if r.images and isinstance(obs, dict) and "sensor_data" in obs:
            for name, img in r.images.items():
                sim = obs["sensor_data"][name]["rgb"]
                obs["sensor_data"][name]["rgb"] = fit_image(img, sim.shape[:2])
        return (obs, info)[0] if first else (obs, info)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        why = self.safety.estop_active()
        if why:
            raise SafetyStop(f"the robot is e-stopped ({why}); clear it, then call clear_stop()")
        self._episode_running = False
        self.api.reset(seed=seed, options=options)
        start = self.twin.agent.robot.get_qpos()[0].cpu().numpy()[self._active_idx].astype(np.float64)
        if self.reset_hook is not None:
            self.reset_hook(seed, options, self.twin)
        r = self._read()
        self.safety.reset(r.qpos)
        self._ramp(start, r)
        # the twin was reset to the task's start; keep its scenario and counters, take the devices' state
        self.twin.hold_steps[:] = 0
        self._elapsed = 0
        self._prev = self._read()
        obs, info = self._observe(self._prev)
        self._last_command = time.monotonic()  # the watchdog counts from the episode's start
        self._episode_running = True
        self._next_tick = time.monotonic() + self.period
        self._last_tick = None  # the time between episodes is not a control period
        return obs, dict(common.unbatch(common.to_numpy(info)), safety=self._safety_info([]))

    def _ramp(self, start: np.ndarray, r: Reading) -> None:
        """Moves the robot to the task's start pose through the safety layer, one step-limit per period."""
        for _ in range(self.ramp_steps):
            if np.abs(start - r.qpos).max() < 0.02:
                return
            safe, _ = self.safety.filter(start, r.qpos, r.stamp, r.force, r.faults)
            if safe is None:
                self._stop_devices()
                raise SafetyStop(f"stopped while moving to the start pose: {self.safety.stopped.kind}: "
                                 f"{self.safety.stopped.detail}")
            self._send(safe)
            time.sleep(self.period)
            r = self._read()

    def step(self, action):
        a = self.safety.check_action(action, self.action_space)  # raises before anything is sent
        # the controller acts on the state as it is now, not as it was before the policy thought (Sim2RealEnv too)
        r = self._read()
        events = []
        if self.safety.stopped is None:
            self._sync(r, self._prev)
            targets = self._controller_targets(a)
            safe, events = self.safety.filter(targets, r.qpos, r.stamp, r.force, r.faults)
            if safe is None:
                self._stop_devices()
            else:
                self._send(safe)
        self._wait()
        r2 = self._read()
        obs, info = self._observe(r2, prev=r, stepped=True)
        reward = float(self.twin.get_reward(obs=None, action=torch.as_tensor(a)[None], info=info)[0])
        self._prev = r2
        self._elapsed += 1
        info = common.unbatch(common.to_numpy(info))
        terminated = bool(info.get("success", False) or info.get("fail", False))
        truncated = self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
        stopped = self.safety.stopped is not None
        if terminated or truncated or stopped:
            self._episode_running = False
        info.update(safety=self._safety_info(events), period=self._periods[-1] if self._periods else None)
        return obs, reward, terminated, bool(truncated or stopped), info

    def _wait(self) -> None:
        """Sleeps to the next control tick; a step that ran past it is an overrun and the clock restarts from now."""
        now = time.monotonic()
        if now < self._next_tick:
            time.sleep(self._next_tick - now)
            self._next_tick += self.period
        else:
            self.overruns += 1
            self._next_tick = now + self.period
        t = time.monotonic()
        if getattr(self, "_last_tick", None) is not None:
            self._periods.append(t - self._last_tick)
        self._last_tick = t

    def _safety_info(self, events) -> dict:
        s = self.safety.stopped
        return dict(stopped=None if s is None else f"{s.kind}: {s.detail}",
                    interventions=[e.kind for e in events], counts=dict(self.safety.counts))

    def timing(self) -> dict:
        """Control-loop periods so far: p50 / p99 / max (ms) and overruns."""
        p = np.array(self._periods) * 1000
        if not len(p):
            return dict(periods=0, overruns=self.overruns)
        return dict(periods=len(p), p50_ms=float(np.percentile(p, 50)), p99_ms=float(np.percentile(p, 99)),
                    max_ms=float(p.max()), overruns=self.overruns, target_ms=self.period * 1000)

    def estop(self, why: str = "e-stop") -> None:
        self.safety.estop(why)
        self.safety.stop("estop", why)
        self._stop_devices()

    def clear_stop(self) -> None:
        """An operator cleared the cause of a stop: targets restart from where the robot is."""
        self.safety.reset(self._read().qpos)

    def close(self) -> None:
        if getattr(self, "_watchdog", None) is not None:
            self._watchdog_stop.set()
            self._watchdog.join(timeout=1.0)
        try:
            self._stop_devices()
        finally:
            self.devices.close()
            self.api.close()


def fit_image(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A camera image center-cropped to the sim camera's aspect ratio and resized to its resolution (Sim2RealEnv's
    treatment), uint8 HWC."""
    h, w = img.shape[:2]
    th, tw = size
    if h * tw > w * th:
        ch = w * th // tw
        img = img[(h - ch) // 2:(h - ch) // 2 + ch]
    else:
        cw = h * tw // th
        img = img[:, (w - cw) // 2:(w - cw) // 2 + cw]
    t = torch.as_tensor(img).permute(2, 0, 1)[None].float()
    t = torch.nn.functional.interpolate(t, size=(th, tw), mode="bilinear", align_corners=False)
    return t[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
