"""The safety layer between a policy and the devices: every joint target passes `SafetyLayer.filter`, always.

What it enforces, in this order, on each control step's targets (all in sim units, the drivers' joint names):
1. faults and stops: a device fault, an e-stop (`estop()`, SIGUSR1, or the e-stop file existing), a stale sensor
   (older than `stale_after`), or a joint moving faster than its velocity cap stops the robot (`filter` returns None,
   the caller sends nothing and calls the drivers' `stop`); it stays stopped until `reset()`;
2. the hand's force limit: a joint whose measured force is over the limit is held where it is (no further squeeze);
3. the per-step change limit, relative to the last target sent (LeRobot's `max_relative_target`, here always on);
4. the wrist workspace box: a target whose wrist would leave the box is pulled back along the step toward the last
   target sent (which was inside), so the wrist stops at the wall instead of jumping;
5. joint limits: the intersection of the sim robot's limits and the device's own range.
Every change it makes is an intervention, logged with its kind, joints and sizes (JSONL, appended, one line each) and
returned to the caller, who puts it in `info`. `check_action` refuses a misshapen or non-finite action before
anything else runs, so nothing is sent for it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from dexenvs.cli import Positive

INTERVENTIONS = ("estop", "fault", "stale_sensor", "late_command", "overspeed", "force", "step_limit", "workspace",
                 "joint_limit")

NEGLIGIBLE = 1e-4  # corrections below this (rad, m) are still made but not logged: float32 round-off at a limit


@dataclass
class SafetyConfig:
    max_step_rad: Positive = 0.10
    """largest change of a revolute joint's target in one control step (rad)"""
    max_step_m: Positive = 0.02
    """largest change of a prismatic joint's target in one control step (m)"""
    max_velocity_rad: Positive = 4.0
    """measured revolute joint speed above which the robot stops (rad/s)"""
    max_velocity_m: Positive = 0.8
    """measured prismatic joint speed above which the robot stops (m/s)"""
    workspace_low: tuple[float, float, float] = (-0.6, -0.6, -0.05)
    workspace_high: tuple[float, float, float] = (0.6, 0.6, 0.8)
    """the box the wrist must stay in (world frame, m)"""
    force_limit: Positive | None = None
    """in the drivers' force units; None: the device's own limit only (the Inspire driver writes its FORCE_SET)"""
    stale_periods: Positive = 1.5
    """a sensor reading older than this many control periods stops the robot"""
    command_periods: Positive = 6.0
    """no command for this many control periods: the watchdog stops the robot"""
    estop_file: Path | None = None
    """while this file exists the robot stays stopped (an operator's `touch`)"""
    log: Path | None = None
    """append every intervention here as one JSON line"""


@dataclass
class Intervention:
    kind: str
    joints: list[str] = field(default_factory=list)
    amount: float = 0.0
    """the largest correction (sim units) or the measurement that triggered a stop"""
    detail: str = ""
    stamp: float = 0.0


class SafetyStop(RuntimeError):
    """The robot was stopped by the safety layer and is waiting for `reset()`."""


class SafetyLayer:
    def __init__(self, joint_names: list[str], lower: np.ndarray, upper: np.ndarray, prismatic: np.ndarray,
                 control_period: float, config: SafetyConfig | None = None,
                 wrist_position: Callable[[np.ndarray], np.ndarray] | None = None):
        """`lower`/`upper`: the joint limits (sim robot and devices intersected); `prismatic`: (n,) bool;
        `wrist_position`: joint targets (n,) -> the wrist's world position (3,), for the workspace box (None: no
        wrist to keep in a box)."""
        self.cfg = config or SafetyConfig()
        self.names = list(joint_names)
        self.lower, self.upper = np.asarray(lower, np.float64), np.asarray(upper, np.float64)
        if np.any(self.lower > self.upper):
            bad = [n for n, lo, hi in zip(self.names, self.lower, self.upper) if lo > hi]
            raise ValueError(f"joint limits are empty for {bad}: the device's range and the sim robot's do not overlap")
        self.prismatic = np.asarray(prismatic, bool)
        self.period = float(control_period)
        self.max_step = np.where(self.prismatic, self.cfg.max_step_m, self.cfg.max_step_rad)
        self.max_vel = np.where(self.prismatic, self.cfg.max_velocity_m, self.cfg.max_velocity_rad)
        self.box = (np.asarray(self.cfg.workspace_low), np.asarray(self.cfg.workspace_high))
        self.wrist_position = wrist_position
        self.last_sent: np.ndarray | None = None
        self._prev_meas: tuple[np.ndarray, float] | None = None
        self.stopped: Intervention | None = None
        self._estop = threading.Event()
        self._lock = threading.Lock()
        self.counts = {k: 0 for k in INTERVENTIONS}
        self._step_events: list[Intervention] = []

    # ------------------------------------------------------------------ stops
    def estop(self, why: str = "e-stop") -> None:
        """Stop now and stay stopped until `reset()` (thread- and signal-safe)."""
        self._estop.set()
        self._estop_why = why

    def install_signal(self, signum: int = signal.SIGUSR1) -> bool:
        """SIGUSR1 (`kill -USR1 <pid>`) triggers the e-stop; only the main thread may install handlers."""
        if threading.current_thread() is not threading.main_thread():
            return False
        signal.signal(signum, lambda *_: self.estop(f"signal {signal.Signals(signum).name}"))
        return True

    def estop_active(self) -> str | None:
        if self._estop.is_set():
            return getattr(self, "_estop_why", "e-stop")
        if self.cfg.estop_file is not None and Path(self.cfg.estop_file).exists():
            return f"e-stop file {self.cfg.estop_file} exists"
        return None

    def reset(self, measured: np.ndarray) -> None:
        """Leave a stop (after an operator cleared its cause): targets restart from the measured positions."""
        why = self.estop_active()
        if why and not self._estop.is_set():
            raise SafetyStop(f"cannot reset: {why}; remove it first")
        self._estop.clear()
        with self._lock:
            self.stopped = None
            self.last_sent = np.clip(np.asarray(measured, np.float64), self.lower, self.upper)
            self._prev_meas = None

    def stop(self, kind: str, detail: str, joints: list[str] | None = None, amount: float = 0.0) -> Intervention:
        with self._lock:
            if self.stopped is None:
                self.stopped = self._record(Intervention(kind, joints or [], float(amount), detail, time.monotonic()))
            return self.stopped

    # ------------------------------------------------------------------ checks
    @staticmethod
    def check_action(action, space) -> np.ndarray:
        """The task's action as a float array, or a ValueError that says what is wrong; nothing has been sent."""
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"action is not an array of numbers: {e}") from None
        shape = space.shape
        if a.shape != shape and a.shape != (1, *shape):
            raise ValueError(f"action has shape {a.shape}; the task takes {shape}; nothing was sent")
        if not np.isfinite(a).all():
            raise ValueError(f"action has non-finite values (NaN or inf) at {np.argwhere(~np.isfinite(a.reshape(-1))).ravel().tolist()}; "
                             f"nothing was sent")
        return a.reshape(shape)

    def check_sensors(self, qpos: np.ndarray, stamp: float, faults: tuple[str, ...], now: float) -> Intervention | None:
        """Stops for an e-stop, a device fault, a stale reading or overspeed; None if all is well."""
        why = self.estop_active()
        if why:
            return self.stop("estop", why)
        if faults:
            return self.stop("fault", "; ".join(faults))
        age = now - stamp
        if age > self.cfg.stale_periods * self.period:
            return self.stop("stale_sensor", f"joint reading is {age * 1000:.0f} ms old (limit "
                                             f"{self.cfg.stale_periods * self.period * 1000:.0f} ms)", amount=age)
        if self._prev_meas is not None and stamp > self._prev_meas[1]:
            vel = (qpos - self._prev_meas[0]) / (stamp - self._prev_meas[1])
            over = np.abs(vel) > self.max_vel
            if over.any():
                return self.stop("overspeed", f"measured speed over the cap", [self.names[i] for i in np.flatnonzero(over)],
                                 float(np.abs(vel[over]).max()))
        self._prev_meas = (qpos.copy(), stamp)
        return self.stopped

    def filter(self, targets: np.ndarray, qpos: np.ndarray, stamp: float, force: np.ndarray | None = None,
               faults: tuple[str, ...] = (), now: float | None = None) -> tuple[np.ndarray | None, list[Intervention]]:
        """Safe targets for this step (None: stop, send nothing) and the interventions made."""
        now = time.monotonic() if now is None else now
        qpos = np.asarray(qpos, np.float64)
        self._step_events = []
        stop = self.check_sensors(qpos, stamp, faults, now)
        if stop is not None:
            return None, self._step_events or [stop]
        t = np.asarray(targets, np.float64).copy()
        if not np.isfinite(t).all():  # the controller turned a finite action into something unsafe
            self.stop("fault", "the controller produced non-finite joint targets")
            return None, self._step_events
        ref = self.last_sent if self.last_sent is not None else np.clip(qpos, self.lower, self.upper)
        if force is not None and self.cfg.force_limit is not None:
            over = np.abs(np.asarray(force)) > self.cfg.force_limit
            if over.any():
                t[over] = qpos[over]
                self._note("force", over, np.abs(np.asarray(force))[over].max(), "force over the limit: held")
        step = np.clip(t - ref, -self.max_step, self.max_step)
        self._note("step_limit", np.abs(step - (t - ref)) > NEGLIGIBLE, np.abs(step - (t - ref)).max(), "step clamped")
        t = ref + step
        t = self._keep_in_box(t, ref)
        clipped = np.clip(t, self.lower, self.upper)
        self._note("joint_limit", np.abs(clipped - t) > NEGLIGIBLE, np.abs(clipped - t).max(), "target clamped to limits")
        # clipping a joint can move the wrist again only toward the reference, which was inside; check once more
        t = self._keep_in_box(clipped, ref)
        self.last_sent = t
        return t, self._step_events

    def violations(self, sent: np.ndarray, previous: np.ndarray | None) -> list[str]:
        """What limit a target that reached a driver breaks (empty: none); for audits and tests."""
        out = []
        tol = 1e-6
        if np.any(sent < self.lower - tol) or np.any(sent > self.upper + tol):
            out.append("joint_limit")
        if previous is not None and np.any(np.abs(sent - previous) > self.max_step + tol):
            out.append("step_limit")
        if self.wrist_position is not None:
            p = self.wrist_position(sent)
            if np.any(p < self.box[0] - tol) or np.any(p > self.box[1] + tol):
                out.append("workspace")
        return out

    # ------------------------------------------------------------------ internals
    def _inside(self, t: np.ndarray) -> bool:
        p = self.wrist_position(t)
        return bool(np.all(p >= self.box[0]) and np.all(p <= self.box[1]))

    def _keep_in_box(self, t: np.ndarray, ref: np.ndarray) -> np.ndarray:
        if self.wrist_position is None or self._inside(t):
            return t
        if not self._inside(ref):
            # started outside (a robot switched on outside the box): allow only steps that bring the wrist closer
            dist = lambda x: np.linalg.norm(np.clip(self.wrist_position(x), *self.box) - self.wrist_position(x))
            if dist(t) < dist(ref):
                return t
            self._note("workspace", np.ones(len(t), bool), float(dist(t)), "wrist outside the box: held")
            return ref.copy()
        lo, hi = 0.0, 1.0  # bisect the largest fraction of the step that keeps the wrist inside
        for _ in range(20):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self._inside(ref + mid * (t - ref)) else (lo, mid)
        out = ref + lo * (t - ref)
        self._note("workspace", np.abs(out - t) > NEGLIGIBLE, float(np.abs(out - t).max()), "wrist kept in the box")
        return out

    def _note(self, kind: str, mask: np.ndarray, amount: float, detail: str) -> None:
        if not np.any(mask):
            return
        self._record(Intervention(kind, [self.names[i] for i in np.flatnonzero(mask)], float(amount), detail,
                                  time.monotonic()))

    def _record(self, ev: Intervention) -> Intervention:
        self.counts[ev.kind] += 1
        self._step_events.append(ev)
        if self.cfg.log is not None:
            Path(self.cfg.log).parent.mkdir(parents=True, exist_ok=True)
            with open(self.cfg.log, "a") as f:  # one line per write: append-safe
                f.write(json.dumps(asdict(ev)) + "\n")
        return ev
