"""The command contract (dexenvs.cli): bad arguments exit 2 with one line and write nothing, expected failures exit 1
with one line, outputs are not overwritten, logs survive a kill, vector envs do not hang, rates carry intervals."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dexenvs.cli import DexError, UsageError, options, run_cli
from dexenvs.rates import format_rate, wilson_interval
from dexenvs.results import append_jsonl, read_jsonl
from dexenvs.tasks import get_task
from dexenvs.trajectory import DatasetWriter, Episode

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SPACE = get_task("grasp").scenario_space()
TEST_ENV = f"{SPACE.train_objects[0]}|{SPACE.test_envs[0]}|p0"
TEST_POSE = f"{SPACE.train_objects[0]}|{SPACE.train_envs[0]}|p{SPACE.test_poses[0]}"
TEST_OBJECT = f"{SPACE.test_objects[0]}|{SPACE.train_envs[0]}|p0"
ENV_ARGS = dict(env_name="DexGrasp-v0", env_type="dexsuite", env_kwargs={})

TRAIN = ["--dataset", "data.hdf5", "--out", "new_run"]
EVAL = ["--ckpt", "ckpt.pt"]
# (command, arguments, the option the one-line error must name)
BAD = [
    ("agents.train", TRAIN + ["--obs-horizon", "0"], "--obs-horizon 0"),
    ("agents.train", TRAIN + ["--action-horizon", "0"], "--action-horizon 0"),
    ("agents.train", TRAIN + ["--action-steps", "17"], "--action-steps 17"),
    ("agents.train", TRAIN + ["--steps", "0"], "--steps 0"),
    ("agents.train", TRAIN + ["--batch-size", "0"], "--batch-size 0"),
    ("agents.train", TRAIN + ["--ckpt-every", "0"], "--ckpt-every 0"),
    ("agents.train", TRAIN + ["--lr", "0"], "--lr 0"),
    ("agents.train", TRAIN + ["--lr", "nan"], "--lr nan"),
    ("agents.train", TRAIN + ["--weight-decay", "-1"], "--weight-decay -1"),
    ("agents.train", TRAIN + ["--warmup-steps", "-1"], "--warmup-steps -1"),
    ("agents.train", TRAIN + ["--ddim-steps", "0"], "--ddim-steps 0"),
    ("agents.train", TRAIN + ["--down-dims", "64", "0"], "--down-dims 64 0"),
    ("agents.train", TRAIN + ["--hidden-dims", "0"], "--hidden-dims 0"),
    ("agents.train", TRAIN + ["--minutes", "0"], "--minutes 0"),
    ("agents.train", TRAIN + ["--eval-every", "-1"], "--eval-every -1"),
    ("agents.train", TRAIN + ["--seed", "-1"], "--seed -1"),
    ("agents.train", TRAIN + ["--device", "tpu"], "--device tpu"),
    ("agents.train", ["--dataset", "missing.hdf5"], "--dataset missing.hdf5"),
    ("agents.train", ["--dataset", "data.hdf5", "--out", "trained"], "--out trained"),
    ("agents.evaluate", EVAL + ["--episodes", "0"], "--episodes 0"),
    ("agents.evaluate", EVAL + ["--episodes", "-2"], "--episodes -2"),
    ("agents.evaluate", EVAL + ["--seeds", "0"], "--seeds 0"),
    ("agents.evaluate", EVAL + ["--workers", "0"], "--workers 0"),
    ("agents.evaluate", EVAL + ["--videos-per-seed", "-1"], "--videos-per-seed -1"),
    ("agents.evaluate", EVAL + ["--ddim-steps", "0"], "--ddim-steps 0"),
    ("agents.evaluate", ["--ckpt", "missing.pt"], "--ckpt missing.pt"),
    ("agents.evaluate", EVAL + ["--residual", "missing"], "--residual missing"),
    ("agents.evaluate", EVAL + ["--env", "DexNope-v0"], "--env DexNope-v0"),
    ("agents.evaluate", EVAL + ["--env", "DexGrasp-v0", "--out", "exists.json"], "--out exists.json"),
    ("agents.residual", EVAL + ["--timesteps", "0"], "--timesteps 0"),
    ("agents.residual", EVAL + ["--alpha", "0"], "--alpha 0"),
    ("agents.residual", EVAL + ["--ramp", "1.5"], "--ramp 1.5"),
    ("agents.residual", EVAL + ["--val-episodes", "-1"], "--val-episodes -1"),
    ("agents.residual", EVAL + ["--val-alphas", "-1"], "--val-alphas -1"),
    ("agents.residual", EVAL + ["--workers", "0"], "--workers 0"),
    ("agents.residual", EVAL + ["--minutes", "-1"], "--minutes -1"),
    ("agents.residual", ["--ckpt", "missing.pt"], "--ckpt missing.pt"),
    ("generators.grasps", ["--num", "0"], "--num 0"),
    ("generators.grasps", ["--object", "box_00"], "--object box_00"),
    ("generators.grasps", ["--object", "nope"], "--object nope"),
    ("generators.seed", ["--max-tries", "0"], "--max-tries 0"),
    ("generators.seed", ["--seed", "-1"], "--seed -1"),
    ("generators.seed", ["--out", "exists.hdf5"], "--out exists.hdf5"),
    ("generators.seed", ["--scenarios", "nope_00|studio-white-blue|p0"], "--scenarios nope_00"),
    ("generators.augment", ["--source", "data.hdf5", "--max-attempts", "-1"], "--max-attempts -1"),
    ("generators.augment", ["--source", "data.hdf5", "--num", "0"], "--num 0"),
    ("generators.augment", ["--source", "data.hdf5", "--envs", "-1"], "--envs -1"),
    ("generators.augment", ["--source", "data.hdf5", "--poses", "-1"], "--poses -1"),
    ("generators.augment", ["--source", "data.hdf5", "--interp-steps", "0"], "--interp-steps 0"),
    ("generators.augment", ["--source", "data.hdf5", "--tail-steps", "-1"], "--tail-steps -1"),
    ("generators.augment", ["--source", "data.hdf5", "--workers", "0"], "--workers 0"),
    ("generators.augment", ["--source", "data.hdf5", "--split", "test_oep", "--envs", "3"], "--envs 3"),
    ("generators.augment", ["--source", "missing.hdf5"], "--source missing.hdf5"),
    ("generators.augment", ["--source", "data.hdf5", "--out", "exists.hdf5"], "--out exists.hdf5"),
    ("generators.replay", ["data.hdf5", "--max-demos", "-1"], "--max-demos -1"),
    ("generators.replay", ["data.hdf5", "--max-demos", "0"], "--max-demos 0"),
    ("generators.replay", ["missing.hdf5"], "PATH missing.hdf5"),
    ("generators.replay", ["data.hdf5", "--out", "exists.hdf5"], "--out exists.hdf5"),
    ("generators.flywheel", ["--task", "grasp", "--seed-scenarios", TEST_ENV], "--seed-scenarios " + TEST_ENV),
    ("generators.flywheel", ["--task", "grasp", "--seed-scenarios", TEST_POSE], "--seed-scenarios " + TEST_POSE),
    ("generators.flywheel", ["--task", "grasp", "--seed-scenarios", TEST_OBJECT], "--seed-scenarios " + TEST_OBJECT),
    ("generators.flywheel", ["--iters", "0"], "--iters 0"),
    ("generators.flywheel", ["--train-steps", "0"], "--train-steps 0"),
    ("generators.flywheel", ["--workers", "0"], "--workers 0"),
    ("generators.flywheel", ["--data.trajectories", "20", "0"], "--data.trajectories 20 0"),
    ("generators.flywheel", ["--data.envs", "-1"], "--data.envs -1"),
    ("generators.flywheel", ["--data.rollouts", "0"], "--data.rollouts 0"),
    ("generators.flywheel", ["--data.max-slip", "-1"], "--data.max-slip -1"),
    ("generators.flywheel", ["--eval.episodes", "0"], "--eval.episodes 0"),
    ("generators.flywheel", ["--eval.t-oep-rounds", "0"], "--eval.t-oep-rounds 0"),
    ("generators.flywheel", ["--base.obs-horizon", "0"], "--base.obs-horizon 0"),
    ("generators.flywheel", ["--base.action-steps", "99"], "--base.action-steps 99"),
    ("generators.flywheel", ["--residual.ramp", "2"], "--residual.ramp 2"),
    ("dexenvs.experts", ["--episodes", "0"], "--episodes 0"),
    ("dexenvs.experts", ["--seed", "-1"], "--seed -1"),
    ("benchmarks.expert_success", ["--episodes", "0"], "--episodes 0"),
    ("benchmarks.generation", ["--attempts", "0"], "--attempts 0"),
    ("benchmarks.policy_latency", ["--repeats", "0"], "--repeats 0"),
    ("benchmarks.policy_quality", ["--minutes", "0"], "--minutes 0"),
    ("benchmarks.reader", ["--dataset", "missing.hdf5"], "--dataset missing.hdf5"),
    ("benchmarks.reader", ["--seconds", "0"], "--seconds 0"),
    ("benchmarks.throughput", ["--steps", "0"], "--steps 0"),
    ("benchmarks.train_throughput", ["--batch", "0"], "--batch 0"),
    ("benchmarks.flywheel", ["--iters", "0"], "--iters 0"),
    ("benchmarks.flywheel", ["--tasks", "nope"], "nope"),
    ("benchmarks.studies.base_seeds", ["missing_run"], "RUN missing_run"),
    ("benchmarks.studies.base_seeds", ["run", "--iterations", "0"], "--iterations 0"),
    ("benchmarks.studies.base_width", ["--dataset", "data.hdf5", "--configs", "12"], "--configs 12"),
    ("benchmarks.studies.flywheel_reeval", ["run", "--rounds", "0"], "--rounds 0"),
    ("benchmarks.studies.house", ["--top", "0"], "--top 0"),
    ("benchmarks.studies.house", ["--out", "exists.json"], "--out exists.json"),
    ("benchmarks.studies.residual_algo", EVAL + ["--timesteps", "0"], "--timesteps 0"),
    ("benchmarks.studies.ppo_exploration", ["--minutes", "0"], "--minutes 0"),
    ("benchmarks.studies.ppo_exploration", ["--log-stds"], "--log-stds"),
    ("benchmarks.studies.rollout_quality", ["--datasets", "missing.hdf5"], "--datasets missing.hdf5"),
    ("generators.transitions", ["--objects", "box_00"], "--objects box_00"),
    ("generators.transitions", ["--per-object", "0"], "--per-object 0"),
    ("generators.transitions", ["--min-dist", "5", "--max-dist", "2"], "--min-dist 5"),
    ("agents.dexgen.train", ["--dataset", "missing.hdf5"], "--dataset missing.hdf5"),
    ("agents.dexgen.train", ["--dataset", "data.hdf5", "--steps", "0"], "--steps 0"),
    ("agents.dexgen.train", ["--dataset", "data.hdf5", "--width", "0"], "--width 0"),
    ("agents.dexgen.train", ["--dataset", "data.hdf5", "--out", "trained"], "--out trained"),
    ("generators.free_motion", ["--episodes", "0"], "--episodes 0"),
    ("generators.free_motion", ["--reach", "0"], "--reach 0"),
    ("benchmarks.dexgen", ["--checkpoint", "missing.pt"], "--checkpoint missing.pt"),
    ("benchmarks.dexgen", ["--checkpoint", "ckpt.pt", "--episodes", "0"], "--episodes 0"),
    ("benchmarks.dexgen", ["--checkpoint", "ckpt.pt", "--noises", "add 9"], "--noises add 9"),
    ("benchmarks.dexgen", ["--checkpoint", "ckpt.pt", "--alphas", "-1"], "--alphas -1"),
    ("agents.ppo", ["--env", "Nope-v0"], "--env Nope-v0"),
    ("agents.ppo", ["--workers", "0"], "--workers 0"),
    ("agents.ppo", ["--env-kwargs", "[1]"], "--env-kwargs [1]"),
    ("benchmarks.regrasp", ["--episodes", "0"], "--episodes 0"),
    ("benchmarks.regrasp", ["--ppo", "missing.zip"], "--ppo missing.zip"),
    ("benchmarks.grasps", ["--objects", "box_00"], "box_00"),
    ("benchmarks.grasps", ["--num", "0"], "--num 0"),
    ("agents.deploy", ["--ckpt", "missing.pt"], "--ckpt missing.pt"),
    ("agents.deploy", EVAL + ["--episodes", "0"], "--episodes 0"),
    ("agents.deploy", EVAL + ["--task", "nope"], "--task nope"),
    ("agents.deploy", EVAL + ["--hardware", "robot"], "--hardware"),
    ("agents.deploy", EVAL + ["--drop", "2"], "--drop 2"),
    ("agents.deploy", EVAL + ["--noise", "-1"], "--noise -1"),
    ("agents.deploy", EVAL + ["--safety.max-step-rad", "0"], "--safety.max-step-rad 0"),
    ("benchmarks.hardware", ["--adversarial-steps", "0"], "--adversarial-steps 0"),
    ("benchmarks.hardware", ["--ckpt", "missing.pt"], "--ckpt missing.pt"),
    ("benchmarks.leaderboard.run", ["--agent", "missing.pt"], "--agent missing.pt"),
    ("benchmarks.leaderboard.run", ["--agent", "expert", "--tasks", "fly"], "--tasks fly"),
    ("benchmarks.leaderboard.run", ["--agent", "expert", "--seeds", "0"], "--seeds 0"),
    ("benchmarks.leaderboard.run", ["--agent", "expert", "--episodes", "30"], "--episodes 30"),
    ("benchmarks.leaderboard.run", ["--agent", "nomodule:make"], "--agent nomodule:make"),
    ("benchmarks.leaderboard.page", ["--scenarios", "missing.json"], "--scenarios missing.json"),
    ("agents.evaluate", EVAL + ["--workers", "0"], "--workers 0"),
    ("agents.train", TRAIN + ["--human", "missing.hdf5"], "--human missing.hdf5"),
    ("agents.train", TRAIN + ["--human", "data.hdf5"], "--human data.hdf5"),
    ("agents.train", TRAIN + ["--human-ratio", "-1"], "--human-ratio -1"),
    ("generators.human.to_robot", ["--data", "missing"], "--data missing"),
    ("generators.human.to_robot", ["--data", ".", "--like", "data.hdf5", "--hand", "shadow"], "--hand shadow"),
    ("generators.human.to_robot", ["--data", ".", "--like", "data.hdf5", "--scale", "0"], "--scale 0"),
    ("generators.human.to_robot", ["--data", ".", "--like", "data.hdf5", "--out", "exists.hdf5"], "--out exists.hdf5"),
    ("generators.human.regrasp", ["--episodes", "0"], "--episodes 0"),
    ("generators.human.regrasp", ["--noise", "-1"], "--noise -1"),
    ("benchmarks.cotrain", ["--robot", "data.hdf5", "--human", "missing"], "--human missing"),
    ("benchmarks.cotrain", ["--robot", "data.hdf5", "--human", ".", "--envs", "0"], "--envs 0"),
    ("benchmarks.human_regrasp", ["--checkpoint", "ckpt.pt", "--data", "missing"], "--data missing"),
    ("benchmarks.human_regrasp", ["--checkpoint", "ckpt.pt", "--data", ".", "--steps", "0"], "--steps 0"),
    ("benchmarks.step_profile", ["--tasks", "fly"], "--tasks"),
    ("benchmarks.step_profile", ["--steps", "0"], "--steps 0"),
    ("benchmarks.speed", ["--base", "nonsense"], "--base nonsense"),
    ("benchmarks.speed", ["--tasks", "regrasp"], "--tasks"),
]
COMMANDS = sorted({c for c, _, _ in BAD})


def cli_module(name: str):
    mod = importlib.import_module(name)
    if not hasattr(mod, "Args"):  # a package: its __main__ holds the command
        mod = importlib.import_module(name + ".__main__")
    return mod


def snapshot(*dirs: Path) -> dict:
    out = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


@pytest.fixture()
def workspace(tmp_path, monkeypatch):
    """A directory with an empty dataset, a file standing for a checkpoint, existing outputs and a finished run."""
    with DatasetWriter(tmp_path / "data.hdf5", ENV_ARGS):
        pass
    (tmp_path / "ckpt.pt").write_bytes(b"not read before the arguments pass")
    (tmp_path / "exists.json").write_text("{}")
    (tmp_path / "exists.hdf5").write_bytes(b"an earlier output")
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "checkpoint.pt").write_bytes(b"an earlier run")
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command,argv,named", BAD, ids=[f"{c} {' '.join(a[-2:])}" for c, a, _ in BAD])
def test_bad_argument_exits_2_with_one_line_and_writes_nothing(workspace, capsys, command, argv, named):
    mod = cli_module(command)
    before = snapshot(workspace, ROOT / "benchmarks" / "results")
    with pytest.raises(SystemExit) as e:
        run_cli(mod.main, mod.Args, argv, prog=command)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2, err
    assert len(err) == 1 and err[0].startswith(f"{command}: error: ") and named in err[0], err
    assert snapshot(workspace, ROOT / "benchmarks" / "results") == before


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_runs_under_the_contract(command, tmp_path):
    """The real entry point (python -m ...) answers a bad value with status 2 and one line."""
    files = {"data.hdf5", "ckpt.pt", "exists.json", "exists.hdf5", "run", "trained"}
    cases = [(a, n) for c, a, n in BAD if c == command]
    argv, named = next(((a, n) for a, n in cases if not files & set(a)), cases[0])
    r = subprocess.run([PY, "-m", command, *argv], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore"), timeout=120)
    err = [ln for ln in r.stderr.splitlines() if "libvulkan" not in ln and "Warning" not in ln]
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith(f"{command}: error: "), r.stderr
    assert not list(tmp_path.iterdir())


def test_expected_failures_are_one_line_with_exit_1_and_debug_shows_the_traceback(workspace, capsys):
    train, replay = cli_module("agents.train"), cli_module("generators.replay")
    for mod, argv in ((train, ["--dataset", "data.hdf5", "--out", "new_run"]), (replay, ["data.hdf5"])):
        with pytest.raises(SystemExit) as e:
            run_cli(mod.main, mod.Args, argv, prog="cmd")
        err = capsys.readouterr().err.strip().splitlines()
        assert e.value.code == 1 and len(err) == 1 and "holds no demos" in err[0], err
    assert not (workspace / "new_run").exists()  # refused before anything was written
    with pytest.raises(DexError, match="holds no demos"):
        run_cli(replay.main, replay.Args, ["data.hdf5", "--debug"], prog="cmd")


def test_option_inventory_counts_checked_options():
    train = dict(options(cli_module("agents.train").Args))
    assert train["steps"] == train["obs_horizon"] == train["dataset"] == "checked"
    assert train["algo"] == train["resume"] == "choice"
    fly = dict(options(cli_module("generators.flywheel").Args))
    assert fly["base.obs_horizon"] == fly["eval.episodes"] == fly["data.trajectories"] == "checked"


def test_usage_error_names_nested_options():
    from generators.flywheel import FlywheelConfig
    from generators.flywheel.config import resolve

    with pytest.raises(UsageError, match=r"^--base\.action-steps 40: must be <= --action-horizon"):
        resolve(FlywheelConfig(task="grasp", base=__import__("agents.train").train.TrainConfig(action_steps=40)))


# ---- rates ---------------------------------------------------------------------------------------------------------


def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 4) == pytest.approx((0.0, 0.4899), abs=1e-4)
    assert wilson_interval(4, 4) == pytest.approx((0.5101, 1.0), abs=1e-4)
    assert wilson_interval(60, 120) == pytest.approx((0.4119, 0.5881), abs=1e-4)
    assert format_rate(60, 120) == "50.0% [41.2, 58.8] (n=120)"


# ---- logs and outputs survive a kill -------------------------------------------------------------------------------


def test_torn_last_line_is_skipped_with_a_warning(tmp_path, capsys):
    log = tmp_path / "metrics.jsonl"
    for k in range(3):
        append_jsonl(log, dict(step=k))
    with log.open("a") as fh:
        fh.write('{"step": 3, "lo')  # killed mid-line
    assert [m["step"] for m in read_jsonl(log)] == [0, 1, 2]
    assert "torn last line" in capsys.readouterr().out
    log.write_text('{"step": 0}\n{"st\n{"step": 2}\n')
    with pytest.raises(json.JSONDecodeError):  # damage inside the log is not papered over
        read_jsonl(log)


def _synthetic_dataset(path: Path, demos: int = 6, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, ENV_ARGS) as w:
        for i in range(demos):
            w.add(Episode(actions=rng.normal(size=(n, 15)).astype(np.float32),
                          obs=dict(agent_qpos=rng.normal(size=(n, 20)).astype(np.float32)),
                          rewards=np.zeros(n, np.float32), dones=np.zeros(n, bool), states=rng.normal(size=(n + 1, 9)),
                          datagen_info=dict(phase=np.zeros((n, 1), np.int8)), scenario=f"can_00|studio-wood-grey|p{i}",
                          seed=i, success=True, phase_names=["approach"], provenance=dict(generator="test")))
    return path


def _run_and_kill(cmd: list[str], cwd: Path, after: float, once: Path | None = None) -> None:
    """SIGKILLs `cmd` `after` seconds after it starts (or after `once` appears)."""
    p = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    t0 = time.monotonic()
    while once is not None and not once.exists() and p.poll() is None and time.monotonic() - t0 < 300:
        time.sleep(0.1)
    time.sleep(after)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()


def test_killed_training_keeps_its_checkpoint_and_resumes_through_a_torn_log(tmp_path):
    from agents.checkpoint import read_checkpoint

    data = _synthetic_dataset(tmp_path / "data.hdf5")
    cmd = [PY, "-m", "agents.train", "--algo", "bc", "--dataset", str(data), "--out", "run", "--steps", "300",
           "--ckpt-every", "20", "--eval-every", "0", "--batch-size", "32", "--hidden-dims", "64", "--no-progress"]
    ckpt = tmp_path / "run" / "checkpoint.pt"
    _run_and_kill(cmd, tmp_path, random.Random(0).uniform(0, 5), once=ckpt)  # at a random point after a checkpoint
    assert ckpt.exists()
    step = read_checkpoint(ckpt)["step"]  # readable: written whole or not at all
    with (tmp_path / "run" / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 99999, "lo')
    r = subprocess.run(cmd + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert read_checkpoint(ckpt)["step"] == 300 and step <= 300
    steps = [m["step"] for m in read_jsonl(tmp_path / "run" / "metrics.jsonl")]
    assert steps == sorted(steps) and steps[-1] == 300 and 99999 not in steps


def test_killed_seed_recording_leaves_no_half_file_and_a_rerun_completes(tmp_path):
    from dexenvs.trajectory import demo_names, open_dataset

    out = tmp_path / "seed.hdf5"
    cmd = [PY, "-m", "generators.seed", "--task", "grasp", "--out", str(out)]
    _run_and_kill(cmd, tmp_path, random.Random(1).uniform(4, 9))
    assert not out.exists() or demo_names(open_dataset(out))  # never half a file
    r = subprocess.run(cmd + ["--overwrite"], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    with open_dataset(out) as f:
        assert len(demo_names(f)) == 1
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 2 and "--out" in r.stderr and "--overwrite" in r.stderr


# ---- vector envs ---------------------------------------------------------------------------------------------------

VEC = """
import gymnasium as gym, dexenvs
env = gym.make_vec("{env_id}", num_envs=2, vectorization_mode="{mode}")
env.reset(seed=0)
for _ in range(20):
    obs, *_ = env.step(env.action_space.sample())
assert obs.shape[0] == 2
env.close()
print("ok")
"""


@pytest.mark.parametrize("task", ["grasp", "pour", "lift", "handover"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_make_vec_with_gymnasium_defaults_does_not_hang(task, mode):
    env_id = get_task(task).env_id
    p = subprocess.Popen([PY, "-c", VEC.format(env_id=env_id, mode=mode)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        out, err = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"gym.make_vec({env_id!r}, 2, {mode!r}) hung")
    assert p.returncode == 0 and "ok" in out, err[-2000:]


def test_sb3_vec_envs_step():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    for cls in (DummyVecEnv, SubprocVecEnv):
        # "dexenvs:" imports the package in SubprocVecEnv's forkserver workers, which do not share the parent's imports
        venv = make_vec_env("dexenvs:DexGrasp-v0", n_envs=2, vec_env_cls=cls)
        venv.reset()
        for _ in range(5):
            obs, *_ = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert obs.shape[0] == 2
        venv.close()
