"""Retargeting to the robots' own kinematics: fingertips the robot can reach are reached (Inspire and Allegro), joint
limits hold, and the wrist frame turns into the robot's base frame."""

import numpy as np
import pytest

from generators.human.retarget import HANDS, Retargeter


@pytest.mark.parametrize("hand", list(HANDS))
def test_retargeting_reaches_the_robots_own_fingertips(hand):
    r = Retargeter(hand)
    lim = r.joint_limits
    rng = np.random.default_rng(0)
    q = lim.mean(1)
    errors = []
    for _ in range(60):  # a smooth motion, as a tracked hand moves
        q = np.clip(q + rng.normal(0, 0.03, q.shape), lim[:, 0], lim[:, 1])
        human = r.human_from_robot(r.fingertips(q))  # the robot's own fingertips, as a human hand's
        got = r.fingers(human)
        assert np.all(got >= lim[:, 0] - 1e-6) and np.all(got <= lim[:, 1] + 1e-6)
        errors.append(r.error(human, got).max())
    assert np.max(errors) < 0.003  # metres
    assert len(r.latencies) == 60


def test_the_wrist_turns_into_the_robot_base_frame_and_unreachable_tips_stay_in_limits():
    r = Retargeter("allegro_right")
    w = np.eye(4)
    w[:3, 3] = [0.1, 0.2, 0.3]
    base = r.wrist(w)
    # human fingers (+y) point along the Allegro's fingers (+z), its palm normal (+z) along the Allegro's (+x)
    assert np.allclose(base[:3, :3] @ [0, 0, 1], [0, 1, 0]) and np.allclose(base[:3, 3], [0.1, 0.2, 0.3])
    far = np.tile([0.0, 1.0, 0.0], (5, 1))  # a metre away: out of reach
    q = r.fingers(far)
    lim = r.joint_limits
    assert np.all(q >= lim[:, 0] - 1e-6) and np.all(q <= lim[:, 1] + 1e-6) and np.isfinite(q).all()
    with pytest.raises(ValueError, match="unknown hand"):
        Retargeter("shadow")
