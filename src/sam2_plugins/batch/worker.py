"""The job a Dask worker runs for one movie: track it as ``sam2-plugins track`` would, write its result
folder atomically, and answer with its summary row. A failure is an answer too (status "failed" and the
reason), so one bad movie never stops the others. The model is loaded once per worker process."""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .movies import Movie
from .one_movie import DEFAULT_FORMATS, cell_events, export_session, new_cells_period, seed_session
from .results import completed_row, partial_folder, publish, remove_leftovers, write_marker

DEFAULT_MODEL = "micro-synthetic"
PROGRESS_EVERY_S = 0.5  # frame progress sent to the client at most this often per movie


@dataclass(frozen=True)
class TrackOptions:
    """How every movie of a batch is tracked and exported (the options of ``sam2-plugins track``)."""

    model: str = DEFAULT_MODEL
    config: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    image_size: int | None = None
    formats: tuple[str, ...] = tuple(DEFAULT_FORMATS.split(","))
    divisions: bool = True
    new_cells_every: int | None = None
    non_overlap: bool | None = None
    channels: tuple[int, ...] | None = None
    fps: float = 10.0
    feature_dir: str | None = None  # encoder features kept on disk: a movie tracked again is not encoded again
    torch_threads: int | None = None  # None: the worker's share of its machine's cores

    def model_key(self) -> tuple:
        return (self.model, self.config, self.device, self.dtype, self.image_size)


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def worker_model(options: TrackOptions):
    """This process's model for ``options``, loaded on first use and kept for every later movie."""
    from ..api import load_model

    key = options.model_key()
    with _models_lock:
        if key not in _models:
            _models[key] = load_model(options.model, config=options.config, device=_device(options.device),
                                      dtype=options.dtype, image_size=options.image_size)
        return _models[key]


def loaded_model_count() -> int:
    """How many models this process holds (one per distinct model setting)."""
    return len(_models)


def _device(device: str) -> str:
    """On a machine with several GPUs and one worker per GPU, worker ``i`` of a local cluster takes GPU ``i``."""
    if device != "auto":
        return device
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return device
    name = _worker_attr("name")
    return f"cuda:{int(name) % torch.cuda.device_count()}" if isinstance(name, int) else device


def _worker_attr(attr: str):
    try:
        from distributed import get_worker

        return getattr(get_worker(), attr)
    except (ImportError, ValueError):
        return None


def _set_threads(options: TrackOptions) -> None:
    import os

    import torch

    threads = options.torch_threads
    if threads is None:  # the movies this worker tracks at once share its cores
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        state = _worker_attr("state")
        at_once = getattr(state, "nthreads", 1)
        gpus = getattr(state, "total_resources", {}).get("GPU")
        if gpus:  # a GPU worker takes as many movies at once as it has GPUs (one, from us)
            at_once = min(at_once, int(gpus))
        threads = max(1, cores // max(1, at_once))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def track_movie(movie: Movie, options: TrackOptions, out: str, topic: str | None = None,
                redo: bool = False) -> dict:
    """Track one movie into ``out/<movie.name>/``; returns its summary row (also kept in the marker).
    ``topic``: the Dask event topic frame progress is sent on; ``redo``: track it even if it has a result."""
    final = Path(out) / movie.name
    done = None if redo else completed_row(final)
    if done is not None:
        return {**done, "status": "skipped", "seconds": 0.0}
    remove_leftovers(Path(out), movie.name)
    start = time.perf_counter()
    row = {"movie": movie.name, "frames": None, "objects": None, "divisions": None,
           "seconds": None, "status": "failed", "reason": "", "source": movie.path}
    report = _reporter(topic, movie.name)
    session = partial = None
    try:
        _set_threads(options)
        model = worker_model(options)
        session = model.open_video(movie.path, channels=options.channels, non_overlap_memory=options.non_overlap,
                                   feature_dir=options.feature_dir)
        row["frames"] = session.num_frames
        report(0, session.num_frames)
        seed_session(session, **_seed(movie))
        events = cell_events(session, divisions=options.divisions,
                             new_cells_every=new_cells_period(movie.seed if movie.seed != "prompts" else None,
                                                              options.new_cells_every))
        for _ in session.propagate_all(progress=report, events=events):
            pass
        partial = partial_folder(Path(out), movie.name)
        export_session(session, partial, list(options.formats), fps=options.fps)
        row.update(objects=len(session.object_ids), divisions=len(session.lineage.divisions()),
                   seconds=round(time.perf_counter() - start, 2), status="done")
        write_marker(partial, row)  # last: only now does the folder count as a result
        publish(partial, final)
    except Exception as err:  # noqa: BLE001 - one movie's failure is its row, the batch goes on
        row.update(seconds=round(time.perf_counter() - start, 2), reason=_reason(err))
        _keep_what_was_tracked(session, partial, Path(out), movie.name)
    finally:
        if session is not None:
            session.close()
    return row


def _seed(movie: Movie) -> dict:
    if movie.seed == "prompts":
        from ..prompts_file import read_prompts

        return {"prompts": read_prompts(movie.prompts)}
    if movie.seed == "labels":
        from ..prompts_file import read_label_image

        return {"seed_labels": read_label_image(movie.prompts), "seed_frame": movie.seed_frame}
    return {"seed": "auto", "seed_frame": movie.seed_frame}


def _keep_what_was_tracked(session, partial: Path | None, out: Path, name: str) -> None:
    """A movie that failed after tracking began: its tracked frames and session go to ``out/name/``
    without the marker (to look at, never taken for a result; the next run redoes the movie)."""
    import shutil

    if partial is not None:
        shutil.rmtree(partial, ignore_errors=True)
    if session is None or not session.object_ids or completed_row(out / name) is not None:
        return  # nothing tracked, or a whole result from before (a failed --redo): that one stays
    try:
        partial = partial_folder(out, name)
        export_session(session, partial, ["labels", "session"])
        publish(partial, out / name)
    except Exception:  # noqa: BLE001 - keeping is a courtesy; the failure's own reason is what is reported
        shutil.rmtree(partial, ignore_errors=True)


def _reason(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}"
    if isinstance(err, (MemoryError,)) or "out of memory" in str(err).lower():
        text = f"out of memory ({text})"
    where = traceback.extract_tb(err.__traceback__)[-1:] if not isinstance(err, (ValueError, OSError)) else []
    return text + (f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else "")


def _reporter(topic: str | None, name: str) -> Callable:
    """progress(done, total) that sends (movie, done, total) to the client, at most every
    PROGRESS_EVERY_S, and always the first and last."""
    worker = None
    if topic is not None:
        try:
            from distributed import get_worker

            worker = get_worker()
        except (ImportError, ValueError):
            worker = None
    last = [0.0]

    def report(done, total) -> None:
        now = time.monotonic()
        if worker is None or (done != 0 and done != total and now - last[0] < PROGRESS_EVERY_S):
            return
        last[0] = now
        worker.log_event(topic, {"movie": name, "done": done, "total": total})

    return report
