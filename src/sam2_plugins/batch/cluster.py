"""Where a batch runs, all through Dask: a ``distributed.LocalCluster`` sized to this machine (the default),
an existing cluster by its scheduler address, or an HPC queue (SLURM, LSF, PBS) through dask-jobqueue with
adaptive scaling. GPU workers declare the resource ``GPU=1`` and every movie asks for one, so a GPU worker
tracks one movie at a time."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

JOBQUEUE_KINDS = ("slurm", "lsf", "pbs")
CONNECT_TIMEOUT_S = 5.0
MIN_WORKER_MEMORY = 2 * 1024**3  # below this a worker has no room for an official model and a movie's features
EXTRA_HINT = "pip install 'sam2-plugins[cluster]' (or: pip install dask-jobqueue)"


class MissingExtraError(ImportError, RuntimeError):
    """An optional dependency the chosen way of running needs is not installed."""


@dataclass(frozen=True)
class LocalLayout:
    """A local cluster's shape: worker processes, torch threads each, and the Dask resources each has."""

    workers: int
    torch_threads: int
    gpus: int = 0

    @property
    def resources(self) -> dict[str, int] | None:
        return {"GPU": 1} if self.gpus else None


def local_layout(movies: int, *, cores: int, gpus: int, memory_bytes: int,
                 workers: int | None = None, threads_per_worker: int | None = None) -> LocalLayout:
    """One worker per GPU; without GPUs, as many single-movie workers as the cores allow (``threads_per_worker``
    torch threads each, default 1: several movies at once use small cores better than one movie on many
    threads), no more than the movies nor than the memory holds."""
    if gpus:
        n = min(workers or gpus, gpus)
        return LocalLayout(max(1, min(n, movies)), threads_per_worker or max(1, cores // n), gpus=1)
    threads = max(1, threads_per_worker or 1)
    n = workers or max(1, cores // threads)
    n = min(n, max(1, memory_bytes // MIN_WORKER_MEMORY)) if workers is None else n
    return LocalLayout(max(1, min(n, movies)), threads)


def machine() -> dict[str, int]:
    """This machine's usable cores, GPUs and memory."""
    import psutil
    import torch
    from dask.system import CPU_COUNT

    return {"cores": int(CPU_COUNT), "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "memory_bytes": int(psutil.virtual_memory().total)}


@dataclass
class JobqueueOptions:
    """A batch job on an HPC queue: each job runs one Dask worker with ``gpus`` GPU (0 or 1) and ``cores``."""

    queue: str | None = None
    account: str | None = None
    walltime: str = "02:00:00"
    memory: str = "32GB"
    cores: int = 8
    gpus: int = 1
    max_jobs: int = 4
    min_jobs: int = 0
    job_extra: list[str] = field(default_factory=list)  # more scheduler directives, e.g. "--constraint=a100"
    prologue: list[str] = field(default_factory=list)  # shell lines before the worker starts (module load ...)
    local_directory: str | None = None  # node-local scratch for spilled data
    log_directory: str | None = None


def jobqueue_cluster(kind: str, options: JobqueueOptions):
    """A dask-jobqueue cluster for ``kind`` (slurm, lsf, pbs) that scales between ``min_jobs`` and ``max_jobs``
    with the work; one worker per job."""
    if kind not in JOBQUEUE_KINDS:
        raise ValueError(f"unknown cluster {kind!r}; choose among {', '.join(JOBQUEUE_KINDS)}")
    if options.gpus not in (0, 1):
        raise ValueError("one GPU per job (each job is one worker tracking one movie at a time): ask for more "
                         f"jobs with max_jobs instead of {options.gpus} GPUs per job")
    try:
        import dask_jobqueue
    except ImportError:
        raise MissingExtraError(f"--cluster {kind} needs dask-jobqueue, which is not installed: {EXTRA_HINT}") from None
    common: dict[str, Any] = dict(
        queue=options.queue, cores=options.cores, memory=options.memory, processes=1, walltime=options.walltime,
        job_name="sam2-plugins", job_script_prologue=list(options.prologue),
        local_directory=options.local_directory, log_directory=options.log_directory,
        worker_extra_args=["--resources", "GPU=1"] if options.gpus else [],
    )
    extra = list(options.job_extra)
    if kind == "slurm":
        if options.gpus:
            extra.insert(0, "--gres=gpu:1")
        cluster = dask_jobqueue.SLURMCluster(account=options.account, job_extra_directives=extra, **common)
    elif kind == "lsf":
        if options.gpus:
            extra.insert(0, '-gpu "num=1"')
        cluster = dask_jobqueue.LSFCluster(project=options.account, job_extra_directives=extra, use_stdin=True,
                                           **common)
    else:
        spec = f"select=1:ncpus={options.cores}:mem={options.memory}" + (":ngpus=1" if options.gpus else "")
        cluster = dask_jobqueue.PBSCluster(account=options.account, resource_spec=spec, job_extra_directives=extra,
                                           **common)
    cluster.adapt(minimum_jobs=options.min_jobs, maximum_jobs=options.max_jobs)
    return cluster


class BatchCluster:
    """The client a batch submits to, the cluster it made (closed with it), and how its movies are asked
    for: the resources each needs and the torch threads each uses."""

    def __init__(self, client, cluster=None, *, resources: dict | None = None, torch_threads: int | None = None,
                 where: str = "") -> None:
        self.client, self.cluster = client, cluster
        self.resources, self.torch_threads, self.where = resources, torch_threads, where

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, when one is served (it needs bokeh)."""
        try:
            import bokeh  # noqa: F401 - the dashboard is served only with it
        except ImportError:
            return None
        try:
            return self.client.dashboard_link
        except Exception:  # noqa: BLE001 - no dashboard is not an error
            return None

    def close(self) -> None:
        if self.cluster is not None:  # ours: the client goes with it
            self.client.close()
            self.cluster.close()

    def __enter__(self) -> "BatchCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise MissingExtraError("batch tracking runs on Dask, which is not installed: "
                                "pip install 'sam2-plugins[dask]'") from None
    return distributed


def connect(*, movies: int, client=None, scheduler: str | None = None, cluster: str | None = None,
            jobqueue: JobqueueOptions | None = None, workers: int | None = None,
            threads_per_worker: int | None = None, gpu: bool | None = None) -> BatchCluster:
    """The cluster a batch of ``movies`` runs on: ``client`` as given, the scheduler at ``scheduler``, a new
    ``cluster`` ("slurm", "lsf", "pbs" through dask-jobqueue), or a LocalCluster sized to this machine.
    ``gpu``: whether each movie asks for a GPU on a cluster this does not size (default: on a jobqueue
    cluster, when its jobs have a GPU; never on a given client or scheduler unless asked)."""
    distributed = _import_distributed()
    if client is not None:
        return BatchCluster(client, resources={"GPU": 1} if gpu else None, where=f"the given client ({client})")
    if scheduler is not None:
        return BatchCluster(_client_at(distributed, scheduler), resources={"GPU": 1} if gpu else None,
                            where=f"the Dask scheduler at {scheduler}")
    if cluster is not None:
        options = jobqueue or JobqueueOptions()
        jq = jobqueue_cluster(cluster, options)
        uses_gpu = options.gpus > 0 if gpu is None else gpu
        return BatchCluster(distributed.Client(jq), jq, resources={"GPU": 1} if uses_gpu else None,
                            where=f"{cluster.upper()} jobs (up to {options.max_jobs}, adaptive)")
    here = machine()
    layout = local_layout(movies, cores=here["cores"], gpus=here["gpus"] if gpu is not False else 0,
                          memory_bytes=here["memory_bytes"], workers=workers, threads_per_worker=threads_per_worker)
    local = distributed.LocalCluster(
        n_workers=layout.workers, threads_per_worker=1, processes=True, memory_limit="auto",
        resources=layout.resources, dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    what = f"{layout.workers} local worker process{'es' if layout.workers > 1 else ''}"
    what += f" ({'1 GPU' if layout.gpus else f'{layout.torch_threads} torch thread(s)'} each)"
    return BatchCluster(distributed.Client(local), local, resources=layout.resources,
                        torch_threads=None if layout.gpus else layout.torch_threads, where=what)


def _client_at(distributed, address: str):
    """A client of the scheduler at ``address``; an address nothing answers on fails within seconds."""
    if not address or address.startswith("-"):
        raise ValueError(f"{address!r} is not a scheduler address (e.g. tcp://10.0.0.5:8786)")
    try:
        return distributed.Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address} within {CONNECT_TIMEOUT_S:g} s "
                              f"({type(err).__name__}: {err})") from None

