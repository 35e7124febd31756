"""The Ray backend of the executor on a real local cluster (`ray start --head` on 127.0.0.1): the same results as the
local process pool, in job order, and a worker killed in the middle of a job loses nothing and returns nothing twice."""

import os
import socket
import subprocess
import sys
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
    with open(Path(marker_dir) / "results.log", "a") as f:
        f.write(f"{job}\n")
    return job * 10


def test_ray_map_equals_the_local_pool_in_job_order(cluster):
    ray_out = list(ex.executor(2).map(_setup, (5,), _job, range(12)))
    local = list(ex.Executor(1).map(_setup, (5,), _job, range(12)))
    assert [r[0] for r in ray_out] == [r[0] for r in local]
    assert len({pid for _, pid in ray_out}) == 2  # two actors did the work
    assert os.getpid() not in {pid for _, pid in ray_out}


def test_a_worker_killed_mid_job_loses_nothing_and_writes_nothing_twice(cluster, tmp_path):
    out = list(ex.executor(2).map(_setup, (str(tmp_path),), _dies_once, range(8)))
    assert out == [j * 10 for j in range(8)]
    assert (tmp_path / "ran-3").exists()  # it did die once
    done = sorted(int(x) for x in (tmp_path / "results.log").read_text().split())
    assert done == list(range(8))  # every job finished exactly once


def test_aep_on_the_cluster_equals_the_local_run(cluster, tmp_path):
    from generators import augment, seed
    from dexenvs.trajectory import demo_names, open_dataset, read_episode

    src = seed.main(seed.Args(task="grasp", out=tmp_path / "seed.hdf5"))
    augment.generate("grasp", src, tmp_path / "ray.hdf5", 4, workers=2, progress=False)
    ex.use_local()
    try:
        augment.generate("grasp", src, tmp_path / "local.hdf5", 4, workers=2, progress=False)
    finally:
        ex.use_ray(cluster)

    def actions(path):
        with open_dataset(path) as f:
            return [(read_episode(f["data"][n]).scenario, read_episode(f["data"][n]).actions) for n in demo_names(f)]

    a, b = actions(tmp_path / "ray.hdf5"), actions(tmp_path / "local.hdf5")
    assert [s for s, _ in a] == [s for s, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
