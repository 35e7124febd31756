"""Residual RL and the data flywheel: the epsilon schedule, alpha = 0 is the base policy, `--quick` end to end for a
one-hand and a two-hand task (datasets grow in objects, environments and poses; the report has its table), and a run
killed mid-iteration resumes without redoing finished stages."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.checkpoint import load_model
from agents.policy import Policy
from agents.residual import load_residual
from agents.residual.train import EpsilonSchedule, ResidualEnv, select_alpha, validation_scenarios
from dexenvs.scenarios import Scenario
from dexenvs.tasks import get_task
from dexenvs.trajectory import demo_names, open_dataset
from dexenvs.cli import DexError, UsageError
from generators import augment
from generators.flywheel import DataConfig, FlywheelConfig, resolve, run_flywheel, run_name
from generators.flywheel.config import QUICK_DATA, QUICK_RESIDUAL
from generators.flywheel.rollouts import RolloutResult, cover_objects
from generators.flywheel.stages import Run, make_data
from generators.flywheel.state import StageLog

ROOT = Path(__file__).resolve().parents[1]


def test_epsilon_schedule_rises_linearly_from_0_to_1():
    s = EpsilonSchedule(200)
    assert [s(t) for t in (0, 50, 100, 150, 200, 1000)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert EpsilonSchedule(0)(0) == 1.0
    with pytest.raises(ValueError, match="ramp_steps must be >= 0"):
        EpsilonSchedule(-1)


@pytest.fixture(scope="module")
def grasp_run(tmp_path_factory):
    """A quick two-iteration grasp flywheel, killed once training of iteration 1 has finished, then resumed."""
    out = tmp_path_factory.mktemp("fw") / "grasp"
    cmd = [sys.executable, "-m", "generators.flywheel", "--task", "grasp", "--iters", "2", "--quick", "--out", str(out),
           "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = out / "state.json"
    deadline = time.time() + 1800  # a loaded 2-core machine needs more than the usual few minutes
    trained = False
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and "1.train" in json.loads(state.read_text())["stages"]:
            trained = True
            break
        time.sleep(1)
    assert proc.poll() is None, "the flywheel ended before it could be interrupted"
    if not trained:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the flywheel did not finish iteration 1's training within 30 minutes")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = json.loads(state.read_text())["stages"]
    mtimes = {p.name: p.stat().st_mtime for p in (out / "D1.hdf5", out / "base_1" / "checkpoint.pt")}
    report = run_flywheel(FlywheelConfig(task="grasp", iters=2, quick=True, out=out, progress=False))
    return out, before, mtimes, report


def test_quick_flywheel_one_hand_grows_data_and_resumes(grasp_run):
    out, before, mtimes, report = grasp_run
    stages = json.loads((out / "state.json").read_text())["stages"]
    # finished before the kill: not run again (same record, same files); the rest ran in the second run
    for name in ("0.seed", "1.data", "1.train"):
        assert stages[name] == before[name] and stages[name]["run"] == 1
    assert all(stages[n]["run"] == 2 for n in stages if n not in before)
    assert {"1.residual", "1.eval", "1.rollout", "2.data", "2.train", "2.residual", "2.eval"} <= set(stages)
    assert mtimes == {p.name: p.stat().st_mtime for p in (out / "D1.hdf5", out / "base_1" / "checkpoint.pt")}
    d1, d2 = (it["data"] for it in report["iterations"])
    assert d1["objects"] == 1 and d1["trajectories"] == QUICK_DATA["trajectories"][0]
    assert d2["trajectories"] == QUICK_DATA["trajectories"][1]
    assert d2["objects"] > d1["objects"] and d2["configs"] > d1["configs"]
    per_object = stages["1.rollout"]["result"]["per_object"]  # O_2, where the rollouts went
    held = {o for o, r in per_object.items() if r["kept"]}
    # the minutes-trained base's rollouts succeed on some of O_2 or, on some CPUs, on none: both paths are checked
    if held:
        # cover (the grasp's default): every object of O_2 that no kept rollout holds has its seed among A_EP's sources
        covered = set(d2["seed_objects"])
        assert not covered & held and covered | held == set(per_object) and d2["fallback"] is None
    else:
        # nothing of its own to carry: D_2 is replay from the seed onto O_2, and the report says so
        assert d2["fallback"] == "replay" and set(d2["object_ids"]) <= set(per_object)
        assert "| i = 2 (replay fallback) |" in (out / "report.md").read_text()
    assert d2["environments"] >= 2 and d2["poses"] >= 2
    md = (out / "report.md").read_text()
    assert "| Iter. | O | E | P | Configs (OxExP) | Traj. | SR in T_O^i | SR in T_OEP |" in md
    assert md.count("| i = ") == 2 and "→" in md  # base -> combined
    assert re.search(r"\| \d+\.\d% \[\d+\.\d, \d+\.\d\] \(n=4\)", md)  # every rate with its interval and count
    assert f"Commit {report['provenance']['commit']}" in md
    assert (out / "report.png").stat().st_size > 10_000
    film = report["film"]  # the final policy on held-out scenarios, a success and a failure where both occur
    assert film["videos"] and set(film["videos"]) <= {"success", "fail"}
    for v in film["videos"].values():
        assert (out / v["mp4"]).stat().st_size > 1000 and (out / v["gif"]).stat().st_size > 1000
        assert f"]({v['gif']})" in md
    ev = report["iterations"][1]["eval"]["figures"]
    assert set(ev) == {"T_O/base", "T_O/combined", "T_OEP/base", "T_OEP/combined"}
    # iteration 1 also measures both policies on O_2 and rolls out the better one there
    ev1, rollout1 = report["iterations"][0]["eval"]["figures"], report["iterations"][0]["rollout"]
    on1 = report["iterations"][0]["residual"]["alpha"] > 0
    better = "combined" if on1 and ev1["T_next/combined"]["mean"] >= ev1["T_next/base"]["mean"] else "base"
    assert rollout1["policy"] == better and f"rollouts ({better} policy)" in md
    assert all(0.0 <= v["mean"] <= 1.0 and v["interval"][0] <= v["successes"] / v["episodes"] <= v["interval"][1]
               for v in ev.values())
    # a residual switched off by its validation is not evaluated again: its figures are the base's, marked so
    for it in report["iterations"]:
        off = it["residual"]["alpha"] == 0
        for name in ("T_O", "T_OEP"):
            c, b = it["eval"]["figures"][f"{name}/combined"], it["eval"]["figures"][f"{name}/base"]
            assert c.get("same_as_base", False) == off
            assert not off or (c["mean"], c["per_scenario"]) == (b["mean"], b["per_scenario"])
    assert ("(alpha 0: the base)" in md) == any(it["residual"]["alpha"] == 0 for it in report["iterations"])
    # the residual kept the alpha that did best on its validation episodes, and that is the alpha it acts with
    res = json.loads((out / "residual_1" / "residual.json").read_text())
    v = res["validation"]
    assert v["episodes"] == QUICK_RESIDUAL["val_episodes"] and res["trained_alpha"] == 0.1
    assert sorted(map(float, v["success"])) == [0.0, 0.025, 0.05, 0.1]
    assert res["alpha"] == v["chosen"] == select_alpha({float(a): r for a, r in v["success"].items()}, v["episodes"])
    assert load_residual(out / "residual_1").alpha == res["alpha"]
    assert f"- iteration 1 residual: alpha {res['alpha']:g} kept on validation (0: " in md


def test_alpha_selection_prefers_the_base_unless_the_residual_beats_it():
    assert select_alpha({0.0: 0.5, 0.025: 0.5, 0.05: 0.45, 0.1: 0.3}, 40) == 0.0
    assert select_alpha({0.0: 0.2, 0.025: 0.4, 0.05: 0.4, 0.1: 0.35}, 40) == 0.025
    assert select_alpha({0.0: 0.0, 0.1: 0.05}, 40) == 0.1
    # ahead of the base by less than one standard error: noise, the base is kept (the grasp's i = 3 validation)
    assert select_alpha({0.0: 0.75, 0.025: 0.825, 0.05: 0.55, 0.1: 0.25}, 40) == 0.0
    assert select_alpha({0.0: 0.3, 0.025: 0.35, 0.05: 0.425, 0.1: 0.35}, 40) == 0.05  # the pour's i = 1: 12.5 > 10.7
    assert select_alpha({0.0: 0.3, 0.025: 0.35, 0.05: 0.425, 0.1: 0.35}, 4) == 0.0  # the same rates from 4 episodes
    assert select_alpha({0.025: 0.3, 0.05: 0.4}, 40) == 0.05  # no base among the alphas: the best
    space = get_task("grasp").scenario_space()
    objs = space.train_objects[:3]
    scen = [Scenario.parse(s) for s in validation_scenarios(space, objs, 50, seed=0)]
    assert scen == [Scenario.parse(s) for s in validation_scenarios(space, objs, 50, seed=0)]
    assert {s.object_id for s in scen} == set(objs)
    assert all(s.env_id in space.train_envs and s.pose_id in space.train_poses for s in scen)


def test_rollout_motion_seed_grafts_each_rollouts_grasp_onto_its_seed(tmp_path):
    """--rollout-motion seed: a rollout that held the object 1.5 cm lower and turned 0.2 rad in the wrist gives the
    seed's motion moved by exactly that offset (the same grasp in the object's frame, the seed's timing), with the
    rollout's object; A_EP carries the grafted demos. The handover's receiver is moved by its offset at the end, where
    a success holds the object, and its giver keeps the seed's motion."""

    from scipy.spatial.transform import Rotation

    from dexenvs.robots import matrix_to_rot6d, rot6d_to_matrix
    from generators import seed
    from generators.augment import HAND_DIM, graft_grasp, hand_grasp
    from dexenvs.trajectory import read_episode

    out = tmp_path / "run"
    seed.main(seed.Args(task="grasp", scenarios=("box_02|studio-white-blue|p25", "can_00|studio-white-blue|p25"),
                        out=out / "seed.hdf5"))
    with open_dataset(out / "seed.hdf5") as f:
        box, can = (read_episode(f["data"][n]) for n in demo_names(f))
    offset = np.eye(4)
    offset[:3, :3] = Rotation.from_rotvec([0.0, 0.2, 0.0]).as_matrix()
    offset[:3, 3] = [0.0, -0.015, 0.0]

    def move_wrist(actions: np.ndarray, hand: int) -> np.ndarray:
        """`actions` with one hand's wrist targets moved by `offset` in the wrist's frame."""
        cols = slice(HAND_DIM * hand, HAND_DIM * hand + 9)
        a = torch.as_tensor(actions[:, cols], dtype=torch.float64)
        m = np.tile(np.eye(4), (len(actions), 1, 1))
        m[:, :3, :3], m[:, :3, 3] = rot6d_to_matrix(a[:, 3:9]).numpy(), a[:, :3].numpy()
        m = m @ offset
        out = np.array(actions)
        out[:, cols] = np.concatenate([m[:, :3, 3], matrix_to_rot6d(torch.as_tensor(m[:, :3, :3])).numpy()], 1)
        return out

    moved = move_wrist(can.actions, 0)
    rollout = replace(can, actions=moved.astype(np.float32), scenario="can_01|studio-white-blue|p25")

    robots = ["floating_inspire_hand_right"]
    grafted = graft_grasp(can, rollout, "grasp", robots)
    assert np.abs(grafted.actions[:, :9] - moved[:, :9]).max() < 1e-4  # the seed moved by the rollout's offset
    k_roll, f_roll = hand_grasp(rollout, 0)
    k_graft, f_graft = hand_grasp(grafted, 0)
    assert np.abs(k_graft - k_roll).max() < 1e-4 and np.abs(f_graft - f_roll).max() < 1e-4
    assert grafted.scenario == rollout.scenario and grafted.provenance["generator"] == "graft_grasp"
    assert np.abs(graft_grasp(box, box, "grasp", robots).actions - box.actions).max() < 1e-4  # its own grasp: the seed

    seed.main(seed.Args(task="handover", scenarios=("can_00|studio-white-blue|p25",), out=tmp_path / "handover.hdf5"))
    with open_dataset(tmp_path / "handover.hdf5") as f:
        hseed = read_episode(f["data"][demo_names(f)[0]])
        robots = json.loads(f["data"].attrs["env_args"])["robot"]
    receiver = robots.index("floating_inspire_hand_left")  # the right hand gives by default
    cols = slice(HAND_DIM * receiver, HAND_DIM * (receiver + 1))
    moved = move_wrist(hseed.actions, receiver)
    rollout = replace(hseed, actions=moved.astype(np.float32), scenario="can_01|studio-white-blue|p25")
    grafted = graft_grasp(hseed, rollout, "handover", robots)
    assert np.abs(grafted.actions[:, cols][:, :9] - moved[:, cols][:, :9]).max() < 1e-4
    giver = slice(HAND_DIM * (1 - receiver), HAND_DIM * (2 - receiver))
    assert np.abs(grafted.actions[:, giver] - hseed.actions[:, giver]).max() < 1e-6  # the giver: the seed's own motion
    k_roll, _ = hand_grasp(rollout, receiver, "handover")
    assert np.abs(hand_grasp(grafted, receiver, "handover")[0] - k_roll).max() < 1e-4
    with pytest.raises(ValueError, match="same giver"):
        graft_grasp(hseed, replace(rollout, reset_options={"giver": "left"}), "handover", robots)

    # D_2 = A_EP of the grafted rollouts (the seeds stand in for rollouts on box_02 and can_00)
    run = _run(out, data=DataConfig(trajectories=(2, 4), envs=(0,), poses=(0,), cover=False))
    data = make_data(run, 2, _rollouts(out / "seed.hdf5", successes=2))
    assert data.trajectories == 4 and data.seed_objects is None
    with open_dataset(out / "rollouts_1_grafted.hdf5") as f:
        assert [str(f["data"][n].attrs["scenario"]) for n in demo_names(f)] == [box.scenario, can.scenario]
    with open_dataset(out / "D2.hdf5") as f:
        sources = {json.loads(f["data"][n].attrs["provenance"])["source"].split(":")[0] for n in demo_names(f)}
    assert sources == {str(out / "rollouts_1_grafted.hdf5")}


def _run(out: Path, **kw) -> Run:
    """A grasp run in `out` whose seed file is already there, for calling its stages one by one."""
    cfg = resolve(FlywheelConfig(task="grasp", out=out, progress=False, workers=1, **kw))
    run = Run(cfg, out, StageLog(out, {}, restart=False))
    run.read_seeds()
    return run


def _rollouts(path: Path, successes: int) -> RolloutResult:
    return RolloutResult(path=str(path), attempts=successes, successes=successes, task_successes=successes,
                         rejected_slip=0, max_slip=0.0, median_slip=None, success_rate=1.0, seconds=0.0, per_object={})


def test_run_names_say_what_differs_from_the_tasks_preset():
    assert run_name(FlywheelConfig(task="lift")) == "lift"
    assert run_name(FlywheelConfig(task="handover", variant="replay_only")) == "handover_replay_only"
    assert run_name(FlywheelConfig(task="grasp", seed_scenarios=get_task("grasp").flywheel.seed_scenarios)) == "grasp"
    assert run_name(FlywheelConfig(task="grasp", seed_scenarios=("draw",), data=DataConfig(cover=False))) == \
        "grasp_drawnseed_nocover"
    assert run_name(FlywheelConfig(task="lift", data=DataConfig(cover=True))) == "lift_cover"
    assert run_name(FlywheelConfig(task="pour", seed_scenarios=("mug_00|studio-white-blue|p25",))) == "pour_1seeds"
    assert run_name(FlywheelConfig(task="grasp", quick=True)) == "grasp_quick"
    from agents.train import TrainConfig

    assert run_name(FlywheelConfig(task="lift", base=TrainConfig(down_dims=(64, 128)))) == "lift_unet64-128"


def test_cover_carries_the_category_seed_onto_objects_no_rollout_holds(tmp_path):
    """--cover: an object of O_i that no kept rollout holds gets its category seed, relabelled onto it, among A_EP's
    sources; the objects the rollouts hold get nothing from the seed; other variants are refused by name."""
    from generators import seed
    from dexenvs.trajectory import DatasetWriter, read_episode

    out = tmp_path / "run"
    seed.main(seed.Args(task="grasp", scenarios=("box_02|studio-white-blue|p25", "can_00|studio-white-blue|p25"),
                        out=out / "seed.hdf5"))
    with open_dataset(out / "seed.hdf5") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        box, can = (read_episode(f["data"][n]) for n in demo_names(f))
    with DatasetWriter(out / "rollouts_1.hdf5", env_args) as w:  # the can's seed stands in for a can rollout
        w.add(can)
    run = _run(out, data=DataConfig(trajectories=(2, 4), envs=(0,), poses=(0,), cover=True))
    run.objects[2] = ["box_04", "can_00"]
    data = make_data(run, 2, _rollouts(out / "rollouts_1.hdf5", successes=1))
    assert data.seed_objects == ["box_04"] and data.trajectories == 4
    with open_dataset(out / "rollouts_1_covered.hdf5") as f:
        src = [read_episode(f["data"][n]) for n in demo_names(f)]
    assert [e.scenario for e in src] == [can.scenario, "box_04|studio-white-blue|p25"]
    assert np.array_equal(src[1].actions, box.actions) and src[1].provenance["generator"] == "cover"
    with open_dataset(out / "D2.hdf5") as f:
        objs = {Scenario.parse(str(f["data"][n].attrs["scenario"])).object_id for n in demo_names(f)}
    assert objs == {"box_04", "can_00"}
    assert cover_objects(out / "rollouts_1.hdf5", out / "seed.hdf5", ["can_00"], tmp_path / "c.hdf5")[1] == []
    with pytest.raises(ValueError, match="not replay_only"):
        run_flywheel(FlywheelConfig(task="grasp", data=DataConfig(cover=True), variant="replay_only", out=tmp_path / "x"))


def test_residual_with_alpha_zero_is_the_base_policy(grasp_run):
    out = grasp_run[0]
    model = load_model(out / "base_1" / "checkpoint.pt")
    base = Policy(model, seed=3)
    combined = load_residual(out / "residual_1", base=Policy(model, seed=3), alpha=0.0)
    nudged = load_residual(out / "residual_1", base=Policy(model, seed=3), alpha=0.5)
    objects = json.loads((out / "residual_1" / "residual.json").read_text())["objects"]
    env = ResidualEnv(str(out / "base_1" / "checkpoint.pt"), "DexGrasp-v0", objects, 0.0, 10)
    env.reset(seed=0)
    obs = env.env.get_obs()
    a_base, a_zero, a_nudged = base.act(obs), combined.act(obs), nudged.act(obs)
    assert torch.equal(a_base, a_zero)
    assert not torch.allclose(a_base, a_nudged)
    env.close()


def test_residual_env_epsilon_follows_the_global_step(grasp_run):
    out = grasp_run[0]
    ckpt = str(out / "base_1" / "checkpoint.pt")
    objects = json.loads((out / "residual_1" / "residual.json").read_text())["objects"]
    env = ResidualEnv(ckpt, "DexGrasp-v0", objects, alpha=0.2, ramp_steps=40, n_envs=2)
    env.reset(seed=1)
    eps, applied = [], []
    for _ in range(25):
        eps.append(env.epsilon)
        _, _, term, trunc, info = env.step(np.ones(env.action_space.shape, np.float32))
        applied.append(info["residual_applied"])  # what SAC's replay buffer records (zero correction when False)
        if term or trunc:
            env.reset()
    assert eps[:3] == [0.0, 0.05, 0.1] and eps[20:] == [1.0] * 5  # 2 envs: global step = 2 x local
    assert applied[0] is False and applied[20:] == [True] * 5
    env.close()


def test_hold_slip_tells_a_firm_grasp_from_a_sliding_one(tmp_path):
    from generators import seed
    from dexenvs.trajectory import open_dataset, read_episode

    with open_dataset(seed.main(seed.Args(task="grasp", out=tmp_path / "seed.hdf5"))) as f:
        ep = read_episode(f["data/demo_0"])
    firm = augment.hold_slip(ep, "grasp")
    assert firm is not None and firm < 0.01  # the scripted seed carries its object rigidly
    obj = ep.datagen_info["obj_pose"].copy()
    up = np.flatnonzero(obj[:, 2] - obj[0, 2] > augment.RISEN)[0]
    obj[up:, 2] -= np.linspace(0, 0.03, len(obj) - up)  # the object slides 3 cm down the fingers while carried
    ep.datagen_info["obj_pose"] = obj
    assert augment.hold_slip(ep, "grasp") == pytest.approx(0.03 + firm, abs=0.005)
    assert augment.hold_slip(ep, "handover") is None  # the object changes hands: not measured
    obj[:, 2] = obj[0, 2]
    assert augment.hold_slip(ep, "grasp") is None  # never carried


def test_quick_flywheel_two_hands(tmp_path):
    out = tmp_path / "handover"
    report = run_flywheel(FlywheelConfig(task="handover", iters=2, quick=True, out=out, progress=False))
    d1, d2 = (it["data"] for it in report["iterations"])
    # which handover objects D_2 gains depends on which rollouts succeed; its configurations and size must grow
    assert d1["objects"] == 1 and d2["objects"] >= 1
    assert d2["configs"] > d1["configs"] and d2["trajectories"] > d1["trajectories"]
    assert "| i = 2" in (out / "report.md").read_text()
    stages = json.loads((out / "state.json").read_text())["stages"]
    assert {"1.residual", "1.rollout", "2.eval"} <= set(stages) and all(v["run"] == 1 for v in stages.values())


def test_more_train_steps_train_the_base_on_and_rerun_what_follows(tmp_path):
    """--train-steps raised on a finished run: the first changed base keeps its checkpoint and D_i, everything after
    its training is dropped (stages and files), and fewer steps than a base has trained is refused."""
    names = ["0.seed"] + [f"{i}.{s}" for i in (1, 2, 3) for s in ("data", "train", "eval", "rollout")][:-1]
    stages = {n: dict(result=dict(step=[4000, 5000, 6000][int(n[0]) - 1]) if n.endswith("train") else {},
                      seconds=1.0, run=1) for n in names}
    settings = dict(task="handover", iters=3, train_steps=[4000, 5000, 6000])
    (tmp_path / "state.json").write_text(json.dumps(dict(settings=settings, stages=stages, runs=1)))
    files = ["seed.hdf5", "D1.hdf5", "D2.hdf5", "D2.json", "D3.hdf5", "D3.hdf5.attempts.jsonl", "rollouts_1.hdf5",
             "rollouts_2.hdf5", "rollouts_2_covered.hdf5", "report.md", "report.json"]
    for f in files:
        (tmp_path / f).write_text("x")
    for d in ("base_1", "base_2", "base_3", "residual_2", "rollouts_2_covered.hdf5.episodes"):
        (tmp_path / d).mkdir()
    with pytest.raises(ValueError, match="iteration 2 .* has trained 5000 steps; it can train longer, not shorter"):
        StageLog(tmp_path, dict(settings, train_steps=[4000, 4000, 6000]), restart=False)
    st = StageLog(tmp_path, dict(settings, train_steps=[4000, 8000, 6000]), restart=False)
    st.close()
    assert list(st.state["stages"]) == ["0.seed", "1.data", "1.train", "1.eval", "1.rollout", "2.data"]
    assert st.state["settings"]["train_steps"] == [4000, 8000, 6000]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name not in (".lock", "state.json")) == [
        "D1.hdf5", "D2.hdf5", "D2.json", "base_1", "base_2", "rollouts_1.hdf5", "seed.hdf5"]
    assert json.loads((tmp_path / "state.json").read_text())["stages"] == st.state["stages"]


def test_settings_come_from_the_tasks_preset_unless_given(tmp_path):
    """Steps, seeds, cover and slip: the task's preset (its spec) for what is not given, the quick preset's where asked;
    a given value is kept."""
    grasp = resolve(FlywheelConfig(task="grasp"))
    preset = get_task("grasp").flywheel
    assert grasp.train_steps == preset.train_steps == (4000, 5000, 12000)
    assert grasp.seed_scenarios == preset.seed_scenarios and len(grasp.seed_scenarios) == 5
    assert grasp.data.cover and grasp.data.max_slip == 0.01
    lift = resolve(FlywheelConfig(task="lift"))
    assert lift.train_steps == (4000, 5000, 6000) and not lift.data.cover and lift.data.max_slip == 0.0
    assert [s.split("|")[0] for s in lift.seed_scenarios] == ["wide_box_02", "tray_00"]
    assert not resolve(FlywheelConfig(task="grasp", variant="replay_only")).data.cover
    quick = resolve(FlywheelConfig(task="grasp", quick=True))
    assert quick.seed_scenarios == () and quick.data.cover  # a drawn seed, and the grasp's cover
    assert quick.base.algo == "bc" and quick.train_steps == preset.quick_train_steps and quick.eval.episodes == 2
    assert not resolve(FlywheelConfig(task="lift", quick=True)).data.cover
    drawn = resolve(FlywheelConfig(task="grasp", seed_scenarios=("draw",), data=DataConfig(cover=False)))
    assert drawn.seed_scenarios == () and drawn.data.cover is False
    assert resolve(FlywheelConfig(task="grasp", train_steps=(100, 200))).train_steps == (100, 200)
    with pytest.raises(ValueError, match=r"--seed-scenarios draw .*: draw stands alone"):
        resolve(FlywheelConfig(task="grasp", seed_scenarios=("draw", "box_02|studio-white-blue|p25")))


def test_flywheel_refuses_a_run_with_other_settings_and_a_second_writer(tmp_path):
    StageLog(tmp_path, dict(task="grasp", iters=2, base=dict(lr=0.001)), restart=False).close()
    with pytest.raises(ValueError, match="iters was 2, now 3.*--restart"):
        StageLog(tmp_path, dict(task="grasp", iters=3, base=dict(lr=0.001)), restart=False)
    with pytest.raises(ValueError, match="base.lr was 0.001, now 0.002"):  # nested settings by their dotted names
        StageLog(tmp_path, dict(task="grasp", iters=2, base=dict(lr=0.002)), restart=False)
    held = StageLog(tmp_path, dict(task="grasp", iters=2, base=dict(lr=0.001)), restart=False)
    with pytest.raises(DexError, match="another flywheel run is using"):
        StageLog(tmp_path, dict(task="grasp", iters=2, base=dict(lr=0.001)), restart=False)
    held.close()
    with pytest.raises(UsageError, match="--seed-scenarios tray_03.*seeds come from the train split: objects"):
        run_flywheel(FlywheelConfig(task="lift", seed_scenarios=("tray_03|studio-white-blue|p25",), out=tmp_path / "x"))
    with pytest.raises(UsageError, match="--iters 0: must be >= 1"):
        run_flywheel(FlywheelConfig(task="lift", iters=0, out=tmp_path / "x"))
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_reeval_names_the_iterations_a_run_has_evaluated(tmp_path):
    from benchmarks.studies import flywheel_reeval

    stages = {"1.eval": {}, "2.eval": {}, "3.data": {}}
    (tmp_path / "state.json").write_text(json.dumps(dict(settings=dict(task="grasp"), stages=stages)))
    with pytest.raises(ValueError, match=r"has not evaluated iteration 3; its evaluated iterations: \[1, 2\]"):
        flywheel_reeval.reevaluate(tmp_path, 3, rounds=1, workers=1)


def test_reeval_keeps_one_entry_per_run_and_iteration(grasp_run, tmp_path):
    from benchmarks.studies import flywheel_reeval

    run, out = grasp_run[0], tmp_path / "reeval.json"
    for it in (2, 1):
        flywheel_reeval.main(flywheel_reeval.Args(runs=(run,), iteration=it, rounds=1, workers=1, out=out))
    saved = json.loads(out.read_text())
    assert saved.pop("provenance")["commit"] and sorted(saved) == [f"{run.name}/i1", f"{run.name}/i2"]
    for it in (1, 2):
        r = saved[f"{run.name}/i{it}"]
        own = json.loads((run / "state.json").read_text())["stages"][f"{it}.eval"]["result"]["figures"]["T_OEP/base"]
        assert r["iteration"] == it and r["rounds"][0]["mean"] == own["mean"] and len(r["rounds"]) == 2
        assert r["episodes"] == 2 * own["episodes"]


def test_base_seeds_trains_other_seeds_on_the_runs_data_and_plays_its_episodes(grasp_run, tmp_path):
    from agents.checkpoint import read_checkpoint
    from benchmarks.studies import base_seeds

    run, out = grasp_run[0], tmp_path / "base_seeds.json"
    with pytest.raises(ValueError, match="is the run's own seed; choose others"):
        base_seeds.main(base_seeds.Args(run=run, iterations=(1,), train_seeds=(0,), workers=1, progress=False, out=out))
    base_seeds.main(base_seeds.Args(run=run, iterations=(1,), train_seeds=(1,), workers=1, progress=False, out=out))
    e = json.loads(out.read_text())[f"{run.name}/i1"]
    state = json.loads((run / "state.json").read_text())
    own = state["stages"]["1.eval"]["result"]["figures"]
    assert sorted(e["seeds"]) == ["0", "1"] and e["seeds"]["0"]["T_OEP"]["mean"] == own["T_OEP/base"]["mean"]
    ckpt = run / "base_1_seed1" / "checkpoint.pt"
    assert read_checkpoint(ckpt)["step"] == state["settings"]["train_steps"][0]
    assert read_checkpoint(ckpt)["config"]["algo"] == state["settings"]["base"]["algo"] == "bc"  # the run's recipe
    for name in ("T_O", "T_OEP"):
        new = e["seeds"]["1"][name]
        # the run's own configurations, each as often as there
        assert sorted(new["per_scenario"]) == sorted(own[f"{name}/base"]["per_scenario"])
        assert new["episodes"] == own[f"{name}/base"]["episodes"]
        vals = [own[f"{name}/base"]["mean"], new["mean"]]
        assert e[name]["seeds"] == 2 and e[name]["mean"] == pytest.approx(sum(vals) / 2)
    # a seed already measured is neither trained nor played again
    mtime = ckpt.stat().st_mtime_ns
    base_seeds.main(base_seeds.Args(run=run, iterations=(1,), train_seeds=(1,), workers=1, progress=False, out=out))
    assert ckpt.stat().st_mtime_ns == mtime and json.loads(out.read_text())[f"{run.name}/i1"]["seeds"]["1"] == e["seeds"]["1"]
