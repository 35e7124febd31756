"""The one way the suite fans work out: A_EP attempts, policy rollouts and evaluation episodes all run through
`Executor.map`.

Each worker sets itself up (`setup(*setup_args)`: a sim env, a policy) and runs jobs on that state (`fn(state, job)`);
results come back in job order whatever the number of workers, so what a caller keeps is the same on one process or
many (an episode depends only on its own seeds, not on which worker played what before). The caller stops early by
leaving the loop: jobs not started are cancelled. Worker processes outlive a `map`: each keeps its last setup and makes
a new one only when asked for another, so a run's stages share one pool instead of starting processes (and importing
torch and SAPIEN) for every evaluation. ManiSkill's CPU backend runs one env per process, so on a CPU this is where the
cores are used; an executor for another engine (a Ray cluster) needs only the same `map`.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

import torch

from dexenvs.tasks import import_tasks, task_modules

_WORKER: dict[str, Any] = {}  # in a worker process: the key of its setup and the state it made


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core: intra-op threads would only contend


def _close(state) -> None:
    close = getattr(state, "close", None)
    if callable(close):
        close()


def _call(tasks: list[str], key: str, setup: Callable, setup_args: tuple, fn: Callable, job) -> Any:
    if _WORKER.get("key") != key:
        import_tasks(tasks)  # the parent's tasks, one defined outside dexenvs included
        if "state" in _WORKER:
            _close(_WORKER.pop("state"))
        _WORKER["state"], _WORKER["key"] = setup(*setup_args), key
    return fn(_WORKER["state"], job)


def _file_versions(args: tuple) -> list:
    """When the files the setup reads were last written: a checkpoint trained on in place is set up afresh."""
    out = []
    for a in args:
        if isinstance(a, (str, Path)) and len(str(a)) < 4096 and Path(a).exists():
            p = Path(a)
            out.append([f.stat().st_mtime_ns for f in ([p] + (sorted(p.iterdir()) if p.is_dir() else []))])
    return out


def _first_done(futures: list) -> list:
    return list(wait(futures, return_when=FIRST_COMPLETED)[0])


def in_order(submit: Callable, first_done: Callable, result: Callable, cancel: Callable, jobs: Iterator,
             in_flight: int) -> Iterator:
    """Keeps `in_flight` jobs submitted (`submit(n, job)` returns a handle), yields their results in job order as they
    finish, and cancels what has not started when the caller leaves early or a job fails."""
    pending: dict = {}  # handle -> job number
    ready: dict = {}
    submitted = want = 0

    def fill():
        nonlocal submitted
        for job in jobs:
            pending[submit(submitted, job)] = submitted
            submitted += 1
            if len(pending) >= in_flight:
                break
    try:
        fill()
        while pending:
            for h in first_done(list(pending)):
                ready[pending.pop(h)] = result(h)
            while want in ready:
                yield ready.pop(want)
                want += 1
            fill()
    finally:
        for h in pending:
            cancel(h)


class Executor:
    """Runs jobs on `workers` spawned processes (SAPIEN and torch do not survive fork), or in this process for 1."""

    def __init__(self, workers: int = 2, in_flight: int = 2):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers, self.in_flight = workers, in_flight
        self._pool: ProcessPoolExecutor | None = None

    def map(self, setup: Callable, setup_args: tuple, fn: Callable, jobs: Iterable) -> Iterator:
        """`fn(state, job)` for each job, yielded in job order, `state = setup(*setup_args)` made once per worker."""
        if self.workers == 1:
            state = setup(*setup_args)
            try:
                for job in jobs:
                    yield fn(state, job)
            finally:
                _close(state)
            return
        key = hashlib.sha1(pickle.dumps((setup, setup_args, _file_versions(setup_args)))).hexdigest()
        tasks = task_modules()
        yield from self._ordered(lambda job: (_call, tasks, key, setup, setup_args, fn, job), iter(jobs))

    def _pool_now(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                             initializer=_init_worker)
        return self._pool

    def _ordered(self, call, jobs) -> Iterator:
        pool = self._pool_now()
        try:
            yield from in_order(lambda n, job: pool.submit(*call(job)), _first_done, lambda fut: fut.result(),
                                lambda fut: fut.cancel(), jobs, self.in_flight * self.workers)
        except BrokenProcessPool:  # a worker died (killed, out of memory): the next map starts a fresh pool
            self.shutdown()
            raise

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _RayWorker:
    """One Ray actor: a worker process's `_call`, its setup kept in the actor."""

    def __init__(self):
        torch.set_num_threads(1)
        self.key, self.state = None, None

    def run(self, tasks: list[str], key: str, setup: Callable, setup_args: tuple, fn: Callable, job) -> Any:
        if self.key != key:
            import_tasks(tasks)
            if self.state is not None:
                _close(self.state)
            self.state, self.key = setup(*setup_args), key
        return fn(self.state, job)


class RayExecutor(Executor):
    """`Executor.map` on Ray actors (one CPU each). A dead actor is restarted and its unfinished jobs are retried on it
    (jobs are pure functions of their arguments, so a retry returns what the first try would have)."""

    def __init__(self, workers: int = 2, address: str | None = None, in_flight: int = 2):
        super().__init__(workers, in_flight)
        import ray

        if not ray.is_initialized():
            # workers import what this process imports: the repository and the current directory go on their path
            path = os.pathsep.join(dict.fromkeys([os.getcwd(), str(Path(__file__).resolve().parents[1])] +
                                                 [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
        self.ray = ray
        self._actors: list | None = None

    def _actors_now(self) -> list:
        if self._actors is None:
            cls = self.ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(_RayWorker)
            self._actors = [cls.remote() for _ in range(self.workers)]
        return self._actors

    def map(self, setup: Callable, setup_args: tuple, fn: Callable, jobs: Iterable) -> Iterator:
        key = hashlib.sha1(pickle.dumps((setup, setup_args, _file_versions(setup_args)))).hexdigest()
        tasks = task_modules()
        actors = self._actors_now()
        yield from in_order(lambda n, job: actors[n % len(actors)].run.remote(tasks, key, setup, setup_args, fn, job),
                            lambda refs: self.ray.wait(refs, num_returns=1)[0], self.ray.get, self.ray.cancel,
                            iter(jobs), self.in_flight * self.workers)

    def shutdown(self) -> None:
        for a in self._actors or []:
            self.ray.kill(a)
        self._actors = None


_SHARED: dict[int, Executor] = {}
_RAY: dict[str, Any] = {}


def use_ray(address: str | None = None) -> None:
    """From now on `executor()` hands out Ray executors: on a local Ray started here (`address` None) or on the cluster
    at `address` ("host:port", as `ray start --head` prints)."""
    for ex in _SHARED.values():
        ex.shutdown()
    _SHARED.clear()
    _RAY["address"] = address


def use_local() -> None:
    for ex in _SHARED.values():
        ex.shutdown()
    _SHARED.clear()
    _RAY.clear()


def executor(workers: int) -> Executor:
    """The process's executor with `workers` workers, shared by every caller, so its processes are started once."""
    if workers not in _SHARED:
        _SHARED[workers] = RayExecutor(workers, _RAY["address"]) if _RAY else Executor(workers)
    return _SHARED[workers]


def configure(ray: bool = False, ray_address: str | None = None) -> None:
    """What a command's `--ray` / `--ray-address` ask for."""
    if ray or ray_address:
        use_ray(ray_address)
