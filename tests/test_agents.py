"""Agents at tiny sizes on a small real dataset (the grasp seed carried by A_EP): training lowers the loss, checkpoints
round-trip exactly, DDPM and DDIM give finite in-bounds actions, the Policy interface queues chunks, the evaluation
CLI writes its JSON, image policies run, bad input is named."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import dexenvs  # noqa: F401
from agents import evaluate, train
from dexenvs.cli import DexError, UsageError
from agents.checkpoint import load_model, load_policy, read_checkpoint, save_checkpoint
from agents.policy import Policy
from generators import augment, seed

TINY = dict(down_dims=(16, 32), hidden_dims=(64, 64), batch_size=64, warmup_steps=10, eval_every=0, progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("agents")
    src = seed.main(seed.Args(task="grasp", out=root / "seed.hdf5"))
    state = root / "state.hdf5"
    augment.generate("grasp", src, state, 6, workers=1, progress=False)
    return root, state


@pytest.fixture(scope="module")
def trained(data):
    root, state = data
    out = {}
    for algo in ("diffusion", "bc"):
        # the U-Net learns slower than the MLP: a little wider and longer, still ~15 s
        size = dict(TINY, down_dims=(32, 64), lr=2e-3, steps=400) if algo == "diffusion" else dict(TINY, lr=1e-3, steps=300)
        summary = train.main(train.Args(algo=algo, dataset=state, out=root / algo, **size))
        out[algo] = (root / algo / "checkpoint.pt", summary)
    return out


@pytest.mark.parametrize("algo", ["diffusion", "bc"])
def test_training_lowers_loss(trained, algo):
    ckpt, s = trained[algo]
    n = 400 if algo == "diffusion" else 300
    assert s["step"] == n
    assert s["final_loss"] < 0.6 * s["first_loss"], s
    assert (ckpt.parent / "loss.png").stat().st_size > 10_000
    metrics = [json.loads(line) for line in (ckpt.parent / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 1 and metrics[-1]["step"] == n


@pytest.mark.parametrize("algo", ["diffusion", "bc"])
def test_checkpoint_round_trip_gives_identical_actions(trained, data, algo):
    ckpt, _ = trained[algo]
    env = gym.make("DexGrasp-v0", obs_mode="state_dict")
    obs, _ = env.reset(seed=3)
    runs = []
    for _ in range(2):
        policy = load_policy(ckpt)
        policy.reset(seed=7)
        runs.append(np.stack([policy.act(obs) for _ in range(10)]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == (10, 15)
    # the normalizer travels in the checkpoint
    cfg = read_checkpoint(ckpt)["config"]
    m = load_model(ckpt)
    np.testing.assert_allclose(m.normalizer.unnormalize("actions", torch.full((15,), -1.0)).numpy(),
                               cfg["stats"]["actions"]["min"], atol=1e-5)


def test_ddpm_and_ddim_actions_are_finite_and_in_bounds(trained):
    ckpt, _ = trained["diffusion"]
    model = load_model(ckpt)
    lo = np.array(model.cfg["stats"]["actions"]["min"])
    hi = np.array(model.cfg["stats"]["actions"]["max"])
    h = {k: torch.randn(3, 2, n) for k, n in model.cfg["low_dim"].items()}
    for sampler, steps in (("ddpm", None), ("ddim", 4), ("ddim", 16)):
        a = model.sample(h, torch.Generator().manual_seed(0), steps=steps, sampler=sampler).numpy()
        assert a.shape == (3, 16, 15) and np.isfinite(a).all()
        assert (a >= lo - 1e-4).all() and (a <= hi + 1e-4).all(), sampler
    # the traced U-Net the Policy samples with matches the eager one
    jit = Policy(model, jit=True).predict_chunk(h)
    p = Policy(model, jit=False)
    p.reset(seed=0)
    torch.testing.assert_close(jit, p.predict_chunk(h), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="valid: \\['ddim', 'ddpm'\\]"):
        model.sample(h, sampler="euler")


def test_policy_queues_chunks_and_batches(trained):
    model = load_model(trained["bc"][0])
    calls = []
    sample = model.sample
    model.sample = lambda *a, **k: calls.append(1) or sample(*a, **k)
    policy = Policy(model)
    obs = {k: torch.randn(4, n) for k, n in model.cfg["low_dim"].items()}  # 4 envs, flat keys
    actions = torch.stack([policy.act(obs) for _ in range(16)])
    assert actions.shape == (16, 4, 15) and len(calls) == 2  # 8 actions executed per chunk
    policy.reset(env_idx=[1])
    policy.act(obs)
    assert len(calls) == 3  # env 1 replans
    with pytest.raises(KeyError, match="extra_obj_pose"):
        policy.act({k: v for k, v in obs.items() if k != "extra_obj_pose"})
    with pytest.raises(ValueError, match="action_steps must be in 1..16"):
        Policy(model, action_steps=20)


def test_evaluate_cli_writes_json_and_video(trained, tmp_path):
    ckpt, _ = trained["bc"]
    out = tmp_path / "eval.json"
    s = evaluate.main(evaluate.Args(ckpt=ckpt, split="test_oep", episodes=2, seeds=2, workers=1, out=out, video=True,
                                    videos_per_seed=1))
    back = json.loads(out.read_text())
    assert back["episodes"] == 4 and len(back["results"]) == 4 and set(back["per_seed"]) == {"0", "1"}
    assert 0.0 <= back["success_mean"] <= 1.0 and back["success_std"] >= 0.0
    lo, hi = back["interval"]  # the 95% interval around successes / episodes
    assert 0.0 <= lo <= back["successes"] / 4 <= hi <= 1.0 and hi - lo > 0.3
    assert sum(v["episodes"] for v in back["per_scenario"].values()) == 4
    assert s["split"] == "test_oep"
    assert len(list((ckpt.parent / "videos" / "DexGrasp-v0_test_oep").glob("*.mp4"))) == 2
    with pytest.raises(ValueError, match="--env DexNope-v0: unknown env"):
        evaluate.main(evaluate.Args(ckpt=ckpt, env="DexNope-v0", episodes=1, seeds=1, workers=1))


def test_resume_continues_training(data, tmp_path, monkeypatch):
    _, state = data
    out = tmp_path / "run"
    train.main(train.Args(algo="bc", dataset=state, out=out, steps=40, ckpt_every=20, **TINY))
    with pytest.raises(UsageError, match="--resume"):
        train.main(train.Args(algo="bc", dataset=state, out=out, steps=60, **TINY))
    s = train.main(train.Args(algo="bc", dataset=state, out=out, steps=60, resume=True, **TINY))
    assert s["step"] == 60 and read_checkpoint(out / "checkpoint.pt")["step"] == 60
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and len(steps) == len(set(steps))
    # 40 -> 60 moved the schedule's end: steps 40-60 got their own warm-up and cosine (lr back at 0 when they end)
    ck = read_checkpoint(out / "checkpoint.pt")
    assert ck["schedule_start"] == 40 and ck["lr_scheduler"]["last_epoch"] == 20
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.0
    lrs = {m["step"]: m["lr"] for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}
    assert lrs[40] == 0.0 and lrs[60] == 0.0
    # a run interrupted at step 70 of 60-80 resumes along that schedule, not a new one from 70
    saved = {}

    def keep_step_70(path, **state):
        save_checkpoint(path, **state)
        if state["step"] == 70:
            saved.update(state)
    monkeypatch.setattr(train, "save_checkpoint", keep_step_70)
    train.main(train.Args(algo="bc", dataset=state, out=out, steps=80, resume=True, ckpt_every=10, **TINY))
    assert read_checkpoint(out / "checkpoint.pt")["schedule_start"] == 60
    save_checkpoint(out / "checkpoint.pt", **saved)
    train.main(train.Args(algo="bc", dataset=state, out=out, steps=80, resume=True, **TINY))
    ck = read_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 80 and ck["schedule_start"] == 60 and ck["lr_scheduler"]["last_epoch"] == 20


def test_unet_width_follows_the_action_size_and_resume_keeps_it(data, tmp_path):
    assert train.default_down_dims(15) == (64, 128) and train.default_down_dims(30) == (128, 256)
    _, state = data
    tiny = {k: v for k, v in TINY.items() if k != "down_dims"}
    train.main(train.Args(algo="diffusion", dataset=state, out=tmp_path / "a", steps=2, **tiny))
    assert read_checkpoint(tmp_path / "a" / "checkpoint.pt")["config"]["down_dims"] == [64, 128]  # grasp: 15-D
    # a run started with other widths resumes with them when none are given (not with the default's)
    train.main(train.Args(algo="diffusion", dataset=state, out=tmp_path / "b", steps=2, ckpt_every=1, **TINY))
    s = train.main(train.Args(algo="diffusion", dataset=state, out=tmp_path / "b", steps=4, resume=True, **tiny))
    ck = read_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert s["step"] == 4 and ck["config"]["down_dims"] == [16, 32]


def test_rgb_policy_trains_and_acts(data, tmp_path):
    root, state = data
    with pytest.raises(DexError, match="has no camera images"):
        train.main(train.Args(algo="diffusion", dataset=state, obs="rgb", out=tmp_path / "x", steps=1, **TINY))
    rgb = tmp_path / "rgb.hdf5"
    augment.generate("grasp", root / "seed.hdf5", rgb, 1, augment.AugmentConfig(obs_mode="rgb"), workers=1,
                     progress=False)
    s = train.main(train.Args(algo="diffusion", dataset=rgb, obs="rgb", out=tmp_path / "rgb", steps=5, **TINY))
    assert np.isfinite(s["final_loss"])
    policy = load_policy(tmp_path / "rgb" / "checkpoint.pt")
    assert "head_rgb" in policy.model.obs_keys and "extra_obj_pose" not in policy.model.obs_keys
    env = gym.make("DexGrasp-v0", obs_mode="rgb")
    obs, _ = env.reset(seed=0)
    a = policy.act(obs)
    assert a.shape == (15,) and np.isfinite(a).all()
    env.step(a)


def test_a_policy_is_evaluated_on_the_handover_giver_its_data_shows(tmp_path):
    from dexenvs.tasks import get_task

    # expert runs alternate the giving hand; a policy gets only the givers of its training demos, in turn
    handover, grasp = get_task("handover"), get_task("grasp")
    assert [handover.episode_options(s)["giver"] for s in (0, 1)] == ["right", "left"]
    assert [handover.episode_options(s, [{"giver": "right"}])["giver"] for s in (0, 1)] == ["right", "right"]
    assert grasp.episode_options(3, [{}]) == {} and grasp.episode_options(3) == {}
    src = seed.main(seed.Args(task="handover", out=tmp_path / "seed.hdf5"))  # seed 0: the right hand gives
    train.main(train.Args(algo="bc", dataset=src, out=tmp_path / "bc", steps=2, **TINY))
    model = load_model(tmp_path / "bc" / "checkpoint.pt")
    assert model.cfg["reset_options"] == [{"giver": "right"}]
    env = evaluate.make_eval_env(model.cfg)
    for reset_seed in (0, 1):
        evaluate.run_episode(env, Policy(model), reset_seed, max_steps=1)
        u = env.unwrapped
        assert u._hands[u.giver].hand_side == "right"
    env.close()


def test_training_device_is_checked_and_cpu_training_matches_auto_here(data, tmp_path):
    _, state = data
    with pytest.raises(ValueError, match="valid: auto, cpu, cuda"):
        train.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA device"):
            train.main(train.Args(algo="bc", dataset=state, out=tmp_path / "c", steps=2, device="cuda", **TINY))
        # auto is the CPU here: bit-for-bit the same weights as asking for it
        for d in ("auto", "cpu"):
            train.main(train.Args(algo="bc", dataset=state, out=tmp_path / d, steps=5, device=d, **TINY))
        a, c = (read_checkpoint(tmp_path / d / "checkpoint.pt")["model"] for d in ("auto", "cpu"))
        assert all(torch.equal(a[k], c[k]) for k in a)


def test_bf16_training_autocasts_the_unet_and_keeps_fp32_weights(data, tmp_path, capsys):
    _, state = data
    size = dict(TINY, down_dims=(32, 64), lr=2e-3, steps=200)
    runs = {p: train.main(train.Args(algo="diffusion", dataset=state, out=tmp_path / p, precision=p, **size))
            for p in ("fp32", "bf16")}
    first = {p: json.loads((tmp_path / p / "metrics.jsonl").read_text().splitlines()[0])["loss"] for p in runs}
    # the same seed, weights and batch: bf16's rounding is the only difference at step 1, and it is there
    assert first["bf16"] != first["fp32"] and first["bf16"] == pytest.approx(first["fp32"], rel=0.05), first
    # and it learns as fp32 does (200 steps: 1.167 -> 0.776 in fp32, 0.778 in bf16)
    assert runs["bf16"]["final_loss"] < 0.8 * runs["bf16"]["first_loss"], runs["bf16"]
    assert runs["bf16"]["final_loss"] == pytest.approx(runs["fp32"]["final_loss"], rel=0.05)
    emulated = not train.native_bf16(torch.device("cpu"))
    assert ("no bf16 arithmetic" in capsys.readouterr().out) == emulated
    ck = read_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    assert ck["config"]["train_config"]["precision"] == "bf16"
    assert {v.dtype for v in ck["model"].values() if v.is_floating_point()} == {torch.float32}
    assert {v.dtype for v in ck["ema_model"].values() if v.is_floating_point()} == {torch.float32}


def test_object_size_is_seen_where_the_data_varies_it_and_left_out_where_it_is_constant(data, tmp_path):
    root, state = data
    train.main(train.Args(algo="bc", dataset=state, out=tmp_path / "many", steps=2, **TINY))
    train.main(train.Args(algo="bc", dataset=root / "seed.hdf5", out=tmp_path / "one", steps=2, **TINY))
    many_keys = read_checkpoint(tmp_path / "many" / "checkpoint.pt")["config"]["low_dim"]
    one_keys = read_checkpoint(tmp_path / "one" / "checkpoint.pt")["config"]["low_dim"]
    # A_EP carried the seed onto several boxes: their sizes differ, so the policy sees them (3 numbers)
    assert many_keys["extra_obj_extents"] == 3
    # the seed is one box: its size never changes there, so the policy does not take it (another object's size
    # would be thousands of normalized units outside anything it trained on)
    assert "extra_obj_extents" not in one_keys and "extra_obj_pose" in one_keys


def test_base_width_reads_width_x_batch_and_names_the_format():
    from benchmarks.studies.base_width import parse_config

    assert parse_config("128x256") == (128, 256) and parse_config("96x128") == (96, 128)
    for bad in ("128", "128x", "wide"):
        with pytest.raises(ValueError, match=r"expected WIDTHxBATCH, e.g. 128x256"):
            parse_config(bad)
