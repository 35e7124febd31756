"""A_EP augmentation: one seed demo becomes successful demos on new scenarios, for a one-hand and a two-hand task;
the report, the segmentation, resume after a kill, and clear errors."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import dexenvs  # noqa: F401
from dexenvs.cli import DexError, UsageError
from dexenvs.scenarios import Scenario
from dexenvs.tasks import get_task
from dexenvs.trajectory import demo_names, make_env, open_dataset, read_episode
from generators import augment, seed
from generators.augment import attempt_scenario, segment_source, symmetric_match
from generators.augment.__main__ import Args, main
from generators.replay import replay_by_state


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    return {t: seed.main(seed.Args(task=t, out=root / f"{t}.hdf5")) for t in ("grasp", "handover")}


@pytest.mark.parametrize("task", ["grasp", "handover"])
def test_augment_yields_successes_on_new_poses(task, seeds, tmp_path):
    out = tmp_path / "aep.hdf5"
    summary = main(Args(task=task, num=4, max_attempts=8, source=seeds[task], out=out, workers=1,
                                progress=False))
    assert summary["successes"] == 4 and 4 <= summary["attempts"] <= 8
    assert summary["success_rate"] == pytest.approx(4 / summary["attempts"], abs=1e-3)
    assert summary["demos_per_hour"] > 0 and summary["coverage_successes"]["scenarios"] == 4
    with open_dataset(seeds[task]) as f:
        src = read_episode(f["data/demo_0"])
    src_pose = Scenario.parse(src.scenario).pose_id
    report = json.loads(out.with_suffix(".json").read_text())
    assert report.pop("provenance")["settings"]["num"] == 4 and report == summary
    with open_dataset(out) as f:
        assert json.loads(f["data"].attrs["generation"]) == summary
        eps = [read_episode(f["data"][n]) for n in demo_names(f)]
        env_args = json.loads(f["data"].attrs["env_args"])
    assert all(ep.success for ep in eps)
    assert any(Scenario.parse(ep.scenario).pose_id != src_pose for ep in eps)
    assert len({ep.scenario for ep in eps}) == 4
    for ep in eps:
        assert ep.provenance["generator"] == "a_ep" and ep.provenance["source"].endswith(":demo_0")
        assert ep.reset_options == src.reset_options  # the handover keeps the seed's giver
        assert ep.datagen_info["phase"].shape == (len(ep), src.datagen_info["phase"].shape[1])
        assert set(ep.phase_names) == set(src.phase_names)
    # the generated demos are real episodes: setting their recorded states reproduces their success
    env = make_env(env_args)
    assert replay_by_state(env, eps[0])[0]
    # per-object report adds up
    per = summary["per_object"]
    assert sum(v["attempts"] for v in per.values()) == summary["attempts"]


def test_segments_follow_labels_and_references(seeds):
    with open_dataset(seeds["handover"]) as f:
        ep = read_episode(f["data/demo_0"])
        robots = json.loads(f["data"].attrs["env_args"])["robot"]
    segs = segment_source(ep, "handover", robots)
    giver = [i for i, r in enumerate(robots) if ep.reset_options["giver"] in r][0]
    assert {s.reference for s in segs[giver]} == {"start"}  # the giver moves relative to where it started
    assert {s.reference for s in segs[1 - giver]} == {"object"}
    for hand in segs:  # each hand's segments tile the demo, one label each
        assert hand[0].start == 0 and hand[-1].end == len(ep)
        assert all(a.end == b.start and a.phase != b.phase for a, b in zip(hand, hand[1:]))
    assert [s.phase for s in segs[1 - giver]][:2] == ["approach", "grasp"]
    # pour's carry and pour are relative to the bowl
    assert get_task("pour").references["pour"] == "target"


def test_symmetric_match():
    def yaw(a):
        m = np.eye(4)
        m[:3, :3] = Rotation.from_euler("z", a).as_matrix()
        return m

    src = yaw(0.3)
    np.testing.assert_allclose(symmetric_match(yaw(2.0), src, 0)[:3, :3], src[:3, :3], atol=1e-9)  # round: any angle
    np.testing.assert_allclose(symmetric_match(yaw(0.3 + np.pi + 0.1), src, 2)[:3, :3], yaw(0.4)[:3, :3], atol=1e-9)
    np.testing.assert_allclose(symmetric_match(yaw(2.0), src, 1), yaw(2.0))  # no symmetry: unchanged


def test_resume_after_kill_adds_no_duplicates(seeds, tmp_path):
    out = tmp_path / "aep.hdf5"
    log = out.with_name(out.name + ".attempts.jsonl")
    cmd = [sys.executable, "-m", "generators.augment", "--task", "grasp", "--num", "8", "--source", str(seeds["grasp"]),
           "--out", str(out), "--workers", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    deadline = time.time() + 240
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole job, workers too, as a crash would
    proc.wait()
    done_before = len(log.read_text().splitlines())
    assert 3 <= done_before < 8, "the run should have been killed part-way"
    with open_dataset(out) as f:  # the killed run's file opens with what it had finished
        assert len(demo_names(f)) >= 3

    summary = main(Args(task="grasp", num=8, source=seeds["grasp"], out=out, workers=1, resume=True,
                                progress=False))
    records = [json.loads(line) for line in log.read_text().splitlines()]
    attempts = [r["attempt"] for r in records]
    assert attempts == list(range(len(attempts)))  # each attempt once, in order
    with open_dataset(out) as f:
        eps = [read_episode(f["data"][n]) for n in demo_names(f)]
    assert len(eps) == 8 == summary["successes"]
    assert len({e.provenance["attempt"] for e in eps}) == 8 and len({(e.scenario, e.seed) for e in eps}) == 8
    # every demo is the scenario its attempt number draws, whichever run and worker made it
    space = make_env(json.loads(open_dataset(out)["data"].attrs["env_args"])).space
    objects = augment.object_pool(space, "train", "category", [Scenario.parse(eps[0].scenario).object_id])
    for e in eps:
        s, reset_seed, _ = attempt_scenario(space, "train", objects, 0, e.provenance["attempt"])
        assert (str(s), reset_seed) == (e.scenario, e.seed)
    assert not out.with_name(out.name + ".episodes").exists()  # consolidated when complete
    with pytest.raises(DexError, match="seed was 0, now 1"):  # other settings would make attempts mean other scenarios
        main(Args(task="grasp", num=9, seed=1, source=seeds["grasp"], out=out, resume=True, progress=False))


def test_envs_and_poses_narrow_the_draw(seeds):
    with open_dataset(seeds["grasp"]) as f:
        src = Scenario.parse(read_episode(f["data/demo_0"]).scenario)
        space = make_env(json.loads(f["data"].attrs["env_args"])).space
    envs, poses = space.around(src, 2, 3)
    drawn = [attempt_scenario(space, "train", [src.object_id], 0, a, None, envs, poses)[0] for a in range(60)]
    assert {s.env_id for s in drawn} == set(envs) and {s.pose_id for s in drawn} == set(poses)
    everything = [attempt_scenario(space, "train", [src.object_id], 0, a)[0] for a in range(60)]
    assert len({s.pose_id for s in everything}) > 3
    # many sources: each is drawn once per round of attempts, so none is left out, in an order that varies by round
    sources = ["box_00", "box_01", "can_00", "box_00", "cup_00", "bottle_00", "box_02"]
    rounds = [[attempt_scenario(space, "train", [], 3, a, sources)[2] for a in range(r * 7, r * 7 + 7)] for r in range(3)]
    assert all(sorted(r) == list(range(7)) for r in rounds) and rounds[0] != rounds[1]
    drawn = [attempt_scenario(space, "train", [], 3, a, sources) for a in range(7)]
    assert all(s.object_id == sources[k] for s, _, k in drawn)
    assert drawn == [attempt_scenario(space, "train", [], 3, a, sources) for a in range(7)]


def test_bad_input_is_named(seeds, tmp_path):
    with pytest.raises(DexError, match="DexGrasp-v0 demos, not DexHandover-v0"):
        main(Args(task="handover", num=1, source=seeds["grasp"], out=tmp_path / "x.hdf5", progress=False))
    with pytest.raises(ValueError, match="use --objects category or all"):
        main(Args(task="grasp", num=1, source=seeds["grasp"], out=tmp_path / "y.hdf5", split="test_oep",
                          objects="seed", progress=False))
    with pytest.raises(ValueError, match="narrow the train split"):
        main(Args(task="grasp", num=1, source=seeds["grasp"], out=tmp_path / "z.hdf5", split="test_oep",
                          objects="all", poses=3, progress=False))
    with pytest.raises(UsageError, match="--demo demo_7: .* has no such demo"):
        main(Args(task="grasp", num=1, source=seeds["grasp"], demo="demo_7", out=tmp_path / "z.hdf5",
                          progress=False))
    (tmp_path / "w.hdf5").write_bytes(b"")
    with pytest.raises(UsageError, match="--resume"):
        main(Args(task="grasp", num=1, source=seeds["grasp"], out=tmp_path / "w.hdf5", progress=False))


def test_rollout_quality_reads_each_tasks_slip_limit(seeds, tmp_path):
    from benchmarks.studies import rollout_quality

    out = tmp_path / "quality.json"
    rows = rollout_quality.main(rollout_quality.Args(datasets=[seeds["grasp"], seeds["handover"]], out=out))
    grasp, handover = rows[str(seeds["grasp"])], rows[str(seeds["handover"])]
    assert grasp["task"] == "grasp" and grasp["demos"] == 1 and grasp["max_slip_mm"] == 10.0
    assert grasp["slip_measured"] == 1 and grasp["within_max_slip"] == 1.0  # the scripted seed holds its box still
    assert grasp["wrist_jerk_mm"] < 2.0  # seed-smooth: rollouts measure 5-20 mm
    assert handover["slip_measured"] == 0 and "within_max_slip" not in handover
    assert json.loads(out.read_text())["table"].count("\n") == 3


def test_several_seeds_each_carried_onto_its_own_category(tmp_path):
    # the lift's trays need a seed of their own: a wide box's carried lift never lifts one
    scenarios = ("wide_box_02|studio-white-blue|p25", "tray_00|studio-white-blue|p25")
    path = seed.main(seed.Args(task="lift", scenarios=scenarios, out=tmp_path / "seeds.hdf5"))
    with open_dataset(path) as f:
        demos = [f["data"][n] for n in demo_names(f)]
        assert [d.attrs["scenario"] for d in demos] == list(scenarios) and all(bool(d.attrs["success"]) for d in demos)
    with pytest.raises(ValueError, match="valid ids for lift"):
        seed.main(seed.Args(task="lift", scenarios=("tray_99|studio-white-blue|p25",), out=tmp_path / "x.hdf5"))

    from assets import objects as obj_lib
    from generators.flywheel.stages import iteration_objects

    space = get_task("lift").scenario_space()
    seeds_ = ["wide_box_02", "tray_00"]
    cats = augment.object_pool(space, "train", "category", seeds_)
    assert augment.object_pool(space, "train", "seed", seeds_) == iteration_objects(space, seeds_, 1) == seeds_
    assert cats == iteration_objects(space, seeds_, 2) == [
        o for o in space.train_objects if obj_lib.get_spec(o).category in ("wide_box", "tray")]
    assert {obj_lib.get_spec(o).category for o in cats} == {"wide_box", "tray"}
    assert [augment.source_for(o, seeds_, 3) for o in ("wide_box_02", "wide_box_00", "tray_01")] == [0, 0, 1]
    assert {augment.source_for("pot_00", seeds_, a) for a in range(4)} == {0, 1}  # no pot seed: both in turn

    out = tmp_path / "aep.hdf5"
    summary = main(Args(task="lift", source=path, objects="category", num=4, max_attempts=8, out=out,
                                workers=1, progress=False))
    assert summary["successes"] == 4 and summary["sources"] == 2
    with open_dataset(out) as f:
        eps = [read_episode(f["data"][n]) for n in demo_names(f)]
    for ep in eps:  # each demo was carried from the seed of its object's category
        cat = obj_lib.get_spec(Scenario.parse(ep.scenario).object_id).category
        assert ep.provenance["source"].endswith("demo_0" if cat == "wide_box" else "demo_1")
