"""``track_many``: many movies tracked on a Dask cluster, each into ``OUT/<movie name>/`` as ``sam2-plugins
track`` writes it, finished movies skipped, a failed movie reported while the others go on, progress over
movies and frames, and a summary table and CSV at the end."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Iterable

from .cluster import BatchCluster, JobqueueOptions, connect
from .movies import Movie, find_movies
from .one_movie import check_writable, parse_formats
from .results import completed_row, remove_leftovers
from .summary import SUMMARY_FILE, BatchSummary
from .worker import TrackOptions, track_movie


def track_many(inputs: "str | Path | Iterable[str | Path]", out: "str | Path", *,
               options: TrackOptions | None = None, seed: str = "auto", client=None, scheduler: str | None = None,
               cluster: str | None = None, jobqueue: JobqueueOptions | None = None, workers: int | None = None,
               threads_per_worker: int | None = None, gpu: bool | None = None, redo: bool = False,
               progress: bool = True, **track_options) -> BatchSummary:
    """Track every movie of ``inputs`` (folders, globs, movie files, CSV/JSON manifests; see
    :data:`~sam2_plugins.batch.movies.MANIFEST_HELP`) into ``out/<movie name>/``.

    Runs on ``client`` if given, else on the Dask scheduler at ``scheduler``, else on a new ``cluster``
    ("slurm", "lsf", "pbs" with ``jobqueue`` options), else on a LocalCluster sized to this machine
    (``workers``, ``threads_per_worker`` override the sizing). ``options`` (or keyword arguments of
    :class:`TrackOptions`: ``model=``, ``formats=``, ...) say how each movie is tracked; ``seed`` ("auto"
    or a label image) marks the objects of movies that come without prompts. Movies whose results are
    complete are skipped unless ``redo``. Returns the summary; its CSV is ``out/summary.csv``.
    """
    options = _options(options, track_options)
    movies = find_movies(inputs, default_seed=seed)
    out = Path(out)
    check_writable(out)
    local = client is None and scheduler is None and cluster is None
    _check_model(options, fetch=local)
    started = time.perf_counter()
    rows: dict[str, dict] = {}
    if not redo:
        for m in movies:
            done = completed_row(out / m.name)
            if done is not None:
                rows[m.name] = {**done, "status": "skipped", "seconds": 0.0}
                remove_leftovers(out, m.name)  # a killed earlier try of a finished movie: of no use
    todo = [m for m in movies if m.name not in rows]
    where = ""
    if todo:
        with connect(movies=len(todo), client=client, scheduler=scheduler, cluster=cluster, jobqueue=jobqueue,
                     workers=workers, threads_per_worker=threads_per_worker, gpu=gpu) as batch:
            where = batch.where
            _say(progress, f"tracking {len(todo)} movie(s) on {where}"
                           + (f"; {len(rows)} finished before, skipped" if rows else ""))
            if batch.dashboard_link:
                _say(progress, f"Dask dashboard: {batch.dashboard_link}")
            if options.torch_threads is None and batch.torch_threads is not None:
                options = dataclasses.replace(options, torch_threads=batch.torch_threads)
            try:
                _run(batch, todo, options, out, redo, rows, progress)
            except BaseException:  # stopped: the summary still says what was done
                _summary(movies, rows, out, time.perf_counter() - started, where)
                raise
    else:
        _say(progress, f"all {len(movies)} movie(s) have complete results in {out}; nothing to do")
    return _summary(movies, rows, out, time.perf_counter() - started, where)


def _options(options: TrackOptions | None, given: dict) -> TrackOptions:
    if options is not None and given:
        raise TypeError(f"give either options= or {', '.join(sorted(given))}, not both")
    if options is None:
        fields = {f.name for f in dataclasses.fields(TrackOptions)}
        unknown = sorted(set(given) - fields)
        if unknown:
            raise TypeError(f"track_many() got unknown options {', '.join(unknown)}; options: {', '.join(sorted(fields))}")
        options = TrackOptions(**given)
    formats = options.formats
    formats = parse_formats(formats if isinstance(formats, str) else ",".join(formats))
    channels = None if options.channels is None else tuple(int(c) for c in options.channels)
    if options.new_cells_every is not None and options.new_cells_every < 1:
        raise ValueError(f"new_cells_every must be >= 1, not {options.new_cells_every}")
    paths = {k: str(Path(v).absolute()) for k in ("model", "config", "feature_dir")
             if (v := getattr(options, k)) is not None and (k != "model" or Path(v).is_file())}
    return dataclasses.replace(options, formats=tuple(formats), channels=channels, **paths)


def _check_model(options: TrackOptions, *, fetch: bool) -> None:
    """A model that cannot be had is an error before any cluster starts; a named official model is fetched
    into the cache here, once, when the workers are on this machine."""
    from ..checkpoints.hub import OFFICIAL_MODEL_NAMES, bundled_names, resolve_checkpoint

    name = options.model
    if Path(name).is_file() or name in bundled_names():
        return
    if name in OFFICIAL_MODEL_NAMES:
        if fetch:
            resolve_checkpoint(name)
        return
    raise FileNotFoundError(f"no checkpoint file or model named {name!r} (names: "
                            f"{', '.join(bundled_names() + sorted(OFFICIAL_MODEL_NAMES))})")


def _run(batch: BatchCluster, todo: list[Movie], options: TrackOptions, out: Path, redo: bool,
         rows: dict[str, dict], progress: bool) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    client = batch.client
    topic = f"sam2-plugins-progress-{uuid.uuid4().hex}"
    movies_bar = tqdm(total=len(todo), desc="movies", unit="movie", disable=not progress, position=0)
    frames_bar = tqdm(total=0, desc="frames", unit="frame", disable=not progress, position=1)
    frames: dict[str, tuple[int, int]] = {}
    finished: set[str] = set()  # events may come after the movie's answer: those are ignored
    lock = threading.Lock()

    def show(movie: str, done: int | None, total: int | None = None) -> None:
        with lock:
            if total is None:  # the movie is over: all its frames count as done
                finished.add(movie)
                if movie not in frames:
                    return
                done = total = frames[movie][1]
            elif movie in finished:
                return
            frames[movie] = (int(done), int(total))
            frames_bar.total = sum(t for _, t in frames.values())
            frames_bar.n = sum(d for d, _ in frames.values())
            frames_bar.refresh()

    def on_progress(event) -> None:
        msg = event[1] if isinstance(event, tuple) else event
        if isinstance(msg, dict) and msg.get("total") is not None:
            show(msg["movie"], msg["done"], msg["total"])

    client.subscribe_topic(topic, on_progress)
    names = {}
    futures = []
    for m in todo:
        future = client.submit(track_movie, m, options, str(out.resolve()), topic, redo,
                               key=f"sam2-track-{m.name}-{uuid.uuid4().hex[:8]}", pure=False,
                               resources=batch.resources)
        names[future.key] = m.name
        futures.append(future)
    try:
        for future, result in as_completed(futures, with_results=True, raise_errors=False):
            name = names[future.key]
            if isinstance(result, BaseException):
                result = _lost_row(name, result)
            rows[name] = result
            show(name, None)
            movies_bar.update(1)
            if result["status"] == "failed":
                movies_bar.write(f"{name}: failed: {result['reason']}", file=sys.stderr)
    except BaseException:
        client.cancel(futures)
        for m in todo:
            rows.setdefault(m.name, _lost_row(m.name, None))
        raise
    finally:
        client.unsubscribe_topic(topic)
        movies_bar.close()
        frames_bar.close()


def _lost_row(name: str, err: BaseException | None) -> dict:
    """The row of a movie whose job never answered: its worker died (out of memory?) or the batch stopped."""
    if err is None:
        return {"movie": name, "status": "cancelled", "reason": "the batch was stopped before it finished"}
    reason = f"{type(err).__name__}: {err}"
    if type(err).__name__ == "KilledWorker":
        reason = f"its worker died, several times (out of memory?): {err}"
    return {"movie": name, "status": "failed", "reason": reason}


def _summary(movies: list[Movie], rows: dict[str, dict], out: Path, seconds: float, where: str) -> BatchSummary:
    summary = BatchSummary([rows[m.name] for m in movies if m.name in rows], seconds=seconds, where=where)
    summary.write_csv(out / SUMMARY_FILE)
    return summary


def _say(on: bool, text: str) -> None:
    if on:
        print(text, file=sys.stderr, flush=True)
