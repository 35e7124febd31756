"""DexHandover-v0: one Inspire hand hands an object to the other.

The object starts resting on the giving hand's upturned palm at the handover point (the scenario pose sets where, and
the object's yaw). The receiving hand starts out at its own side. Which hand gives is the env option `giver`
("right", the default, or "left"), or per episode `reset(options={"giver": ...})`.

Success, held for HOLD_STEPS consecutive control steps:
- the receiver holds the object: at least two of its fingertips within 2 cm of the object's bounding box, and the
  object moving with the receiver's wrist (relative speed < 0.5 m/s);
- the giver has let go: none of its palm points or fingertips within RELEASE_DIST of the box;
- the object is off the table: its lowest box corner at least OFF_TABLE above the table top.
Both hands still on the object is therefore not success. Fail: the object dropped onto the table or off it.
"""

from __future__ import annotations

import numpy as np
import torch

from dexenvs.base import DexEnv, hand_rotation
from dexenvs.experts.handover import HandoverExpert
from dexenvs.registration import register
from dexenvs.scenarios import Workspace
from dexenvs.tasks.spec import FlywheelPreset, TaskSpec, register_task

HOLD_STEPS = 10
RELEASE_DIST = 0.05  # the giver must have moved clear, not merely had the object lifted off its palm
OFF_TABLE = 0.05
HANDOVER_Z = 0.15  # height above the table of the object's base at the start, on the giver's palm
GIVERS = ("right", "left")
# The Inspire palm's top falls ~2 cm from heel to knuckles (its collision hull: z = 0.029 - 0.2 y in the hand frame),
# so a palm held flat tips a standing object over. The giver raises its fingers by that slope's angle to level the
# palm, and the object stands at SEAT: on the flat part, a little off the thumb side (the thumb's base stands higher).
PALM_PITCH = float(np.arctan(0.2))
SEAT = (-0.008, 0.06, 0.017)  # hand frame: thumb side x, along the fingers y, out of the palm z (times palm_sign)


def _check_giver(giver: str) -> str:
    if giver not in GIVERS:
        raise ValueError(f"unknown giver {giver!r}; valid: {list(GIVERS)}")
    return giver


@register("DexHandover-v0", max_episode_steps=150)
class DexHandoverEnv(DexEnv):
    task_name = "handover"
    # standing objects the receiver's thumb-palm side grasp takes (as in DexGrasp-v0); mugs' handles would catch
    object_categories = ("can", "bottle", "cup", "box")
    # the handover point (palm centre of the giver) and the object's yaw on the palm
    workspace = Workspace(x=(-0.02, 0.08), y=(-0.05, 0.05), yaw=(-0.6, 0.6))
    default_robots = ("floating_inspire_hand_left", "floating_inspire_hand_right")
    max_dense_reward = 6.0
    hold_steps_required = HOLD_STEPS
    render_eye = (-0.75, -0.55, 0.65)
    render_target = (0.0, 0.0, 0.15)

    def __init__(self, *args, giver: str = "right", **kwargs):
        self.giver_side = _check_giver(giver)
        self.task_kwargs = dict(giver=giver)
        super().__init__(*args, **kwargs)

    def reset(self, seed=None, options=None):
        """`options={"giver": "left"}` switches the giving hand from this episode on (all sub-envs share it)."""
        options = dict(options or {})
        self.giver_side = _check_giver(options.pop("giver", self.giver_side))
        return super().reset(seed=seed, options=options)

    def get_info(self) -> dict:
        return dict(super().get_info(), giver=self.giver_side)

    @property
    def giver(self) -> int:
        """Index of the giving hand in the env's hands (and in the flattened action)."""
        return [h.hand_side for h in self._hands].index(self.giver_side)

    @property
    def receiver(self) -> int:
        return 1 - self.giver

    # ------------------------------------------------------------------ start state
    def _giver_palm_up(self) -> np.ndarray:
        """The giver's rotation: palm up and levelled (fingers raised by PALM_PITCH), fingers forward (+x)."""
        c, s = np.cos(PALM_PITCH), np.sin(PALM_PITCH)
        return hand_rotation(fingers=(c, 0, s), palm=(-s, 0, c), palm_sign=self._hands[self.giver].palm_sign)

    def _initial_wrist_pose(self, hand_idx, env_idx):
        b = len(env_idx)
        if hand_idx != self.giver:
            return self._side_wrist_pose(hand_idx, b)
        rot = torch.as_tensor(self._giver_palm_up(), dtype=torch.float32, device=self.device)
        seat = torch.cat([self.scenario_poses(env_idx)[:, :2], torch.full((b, 1), HANDOVER_Z, device=self.device)], -1)
        local = torch.tensor([SEAT[0], SEAT[1], self._hands[hand_idx].palm_sign * SEAT[2]], device=self.device)
        return seat - rot @ local, rot.expand(b, 3, 3)

    def _object_start(self, env_idx):
        xyz, yaw = super()._object_start(env_idx)
        xyz[:, 2] = HANDOVER_Z + 0.003  # standing on the giver's palm
        return xyz, yaw

    # ------------------------------------------------------------------ success terms
    def _terms(self) -> dict:
        """received (the receiver holds it), released (the giver is clear of it), off_table; computed once a step."""
        snap = self.snapshot()
        if "terms" not in snap:
            giver_gap = self.distance_to_object(self.hand_points(self.giver)).min(-1).values
            snap["terms"] = dict(received=self.held_by(self.receiver), released=giver_gap > RELEASE_DIST,
                                 off_table=self.object_bottom() > OFF_TABLE, giver_gap=giver_gap)
        return snap["terms"]

    def object_bottom(self) -> torch.Tensor:
        """Height of the object's lowest bounding-box corner above the table top."""
        snap = self.snapshot()
        reach = (snap["obj_rot"][:, 2, :].abs() * self._obj_half_extents).sum(-1)
        return snap["obj_center"][:, 2] - reach

    def _holding(self) -> torch.Tensor:
        t = self._terms()
        return t["received"] & t["released"] & t["off_table"]

    def evaluate(self):
        t = self._terms()
        base = self._base_eval()
        base["fail"] = base["fail"] | (self.object_bottom() < 0.01)  # dropped: it lies on the table
        return dict(base, received=t["received"], released=t["released"], off_table=t["off_table"])

    def compute_dense_reward(self, obs, action, info):
        tip_d = self.tip_distances(self.receiver).mean(-1)
        reach = 1 - torch.tanh(5.0 * tip_d)
        received = info["received"].float()
        release = received * torch.tanh(20.0 * self._terms()["giver_gap"])  # letting go pays only once received
        carried = received * info["released"].float() * info["off_table"].float()
        reward = reach + 2.0 * received + release + 2.0 * carried
        return torch.where(info["success"], torch.full_like(reward, self.max_dense_reward), reward)


def hand_roles(robots, reset_options) -> list[str]:
    """`giver` and `receiver`, from the episode's `giver` option (default right)."""
    giver = reset_options.get("giver", "right")
    return ["giver" if giver in r else "receiver" for r in robots]


def expert_options(seed: int) -> dict:
    """Expert runs alternate the giving hand: even seeds right, odd left."""
    return {"giver": GIVERS[seed % 2]}


SPEC = register_task(TaskSpec(
    name="handover", env_cls=DexHandoverEnv, expert=HandoverExpert, carry_phase="transfer",
    # the giver holds the object out and lets go relative to where it started, wherever the object is
    references={"giver/hold": "start", "giver/release": "start", "giver/retreat": "start"},
    hand_roles=hand_roles, giving_roles=("giver",), expert_options=expert_options,
    grasp_at_end=True,  # the object starts in the air on the giver's palm and need not rise
    slip_measurable=False,  # the object changes hands
    flywheel=FlywheelPreset(
        seed_scenarios=tuple(f"{o}|studio-white-blue|p25" for o in ("box_02", "bottle_00", "can_00", "cup_00")),
        train_steps=(4000, 5000, 6000), cover=True),
    reference_t_oep=(0.8, 17.5, 72.5), reference_replay=42.5))
