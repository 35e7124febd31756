"""The Ray backend of the executor on a real local cluster (`ray start --head` on 127.0.0.1): the same results as the
local process pool, in job order, and a worker killed in the middle of a job loses nothing and returns nothing twice."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dexenvs import executor as ex

ROOT = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    port = _free_port()
    # a throwaway cluster on the loopback interface: no token (a real cluster's token is the user's to configure)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
                    "--include-dashboard", "false", "--disable-usage-stats"], check=True, env=env,
                   capture_output=True, timeout=180)
    address = f"127.0.0.1:{port}"
    ex.use_ray(address)
    yield address
    ex.use_local()
    import ray

    ray.shutdown()
    subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


def _setup(offset):
    return offset


def _job(offset, job):
    return offset + job * job, os.getpid()


def _dies_once(marker_dir, job):
    """Job 3 kills its worker process the first time it runs (a crashed or killed worker), then succeeds."""
    marker = Path(marker_dir) / f"ran-{job}"
    if job == 3 and not marker.exists():
        marker.touch()
        os._exit(1)
    return job * 10


def test_ray_map_equals_the_local_pool_in_job_order(cluster):
    ray_out = list(ex.executor(2).map(_setup, (5,), _job, range(12)))
    local = list(ex.Executor(1).map(_setup, (5,), _job, range(12)))
    assert [r[0] for r in ray_out] == [r[0] for r in local]
    assert len({pid for _, pid in ray_out}) == 2  # two actors did the work
    assert os.getpid() not in {pid for _, pid in ray_out}


def test_a_worker_killed_mid_job_loses_nothing_and_returns_nothing_twice(cluster, tmp_path):
    # a job whose worker dies runs again (jobs are pure; the parent writes), and its result comes back once, in order
    out = list(ex.executor(2).map(_setup, (str(tmp_path),), _dies_once, range(8)))
    assert out == [j * 10 for j in range(8)]
    assert (tmp_path / "ran-3").exists()  # it did die once


def _kill_a_worker_once_writing_starts(parts: Path, killed: list) -> None:
    for _ in range(600):
        if parts.exists() and any(parts.glob("demo_*.h5")):
            pids = subprocess.run(["pgrep", "-f", "ray::_RayWorker"], capture_output=True, text=True).stdout.split()
            if pids:
                os.kill(int(pids[0]), 9)
                killed.append(int(pids[0]))
            return
        time.sleep(0.05)


def test_aep_on_the_cluster_equals_the_local_run_even_when_a_worker_is_killed(cluster, tmp_path):
    from generators import augment, seed
    from dexenvs.trajectory import demo_names, open_dataset, read_episode

    src = seed.main(seed.Args(task="grasp", out=tmp_path / "seed.hdf5"))
    ex.executor(2).shutdown()  # fresh actors, so the killer finds them working on this run
    killed: list = []
    killer = threading.Thread(target=_kill_a_worker_once_writing_starts,
                              args=(tmp_path / "ray.hdf5.episodes", killed))
    killer.start()
    augment.generate("grasp", src, tmp_path / "ray.hdf5", 8, workers=2, progress=False)
    killer.join()
    assert killed, "no worker was killed during the run"
    ex.use_local()
    try:
        augment.generate("grasp", src, tmp_path / "local.hdf5", 8, workers=2, progress=False)
    finally:
        ex.use_ray(cluster)

    def actions(path):
        with open_dataset(path) as f:
            return [(read_episode(f["data"][n]).scenario, read_episode(f["data"][n]).actions) for n in demo_names(f)]

    a, b = actions(tmp_path / "ray.hdf5"), actions(tmp_path / "local.hdf5")
    assert [s for s, _ in a] == [s for s, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))


def test_a_leaderboard_cell_through_the_cluster_equals_the_local_one(cluster, tmp_path):
    from benchmarks.leaderboard import run

    tiny = dict(agent="expert", tasks=("grasp",), splits=("test_oep",), seeds=1, episodes=2, workers=2, videos=False,
                progress=False)
    on_ray = run.main(run.Args(entries=tmp_path / "ray", ray_address=cluster, **tiny))
    ex.use_local()
    try:
        local = run.main(run.Args(entries=tmp_path / "local", **tiny))
    finally:
        ex.use_ray(cluster)
    assert on_ray["cells"]["grasp/test_oep"]["results"] == local["cells"]["grasp/test_oep"]["results"]
