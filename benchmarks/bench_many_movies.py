"""Movies per hour: ``track-many`` on a local Dask cluster (1 worker, then 2) against the peer, ``sam2-plugins
track`` run on each movie in turn (a shell loop: one process per movie), in the same run, on the same movies.

Every contender writes the same exports of the same movies into its own folder; the wall time of each
includes everything a user waits for (process and cluster start, model loads, tracking, writing). Each
batch's label images are compared with the peer's, movie by movie.

    python benchmarks/bench_many_movies.py                      # 6 movies of 20 frames, 128 x 128
    python benchmarks/bench_many_movies.py --movies 12 --frames 40 --size 192 --seed auto
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from common import machine


def write_movies(folder: Path, count: int, frames: int, size: int, cells: int) -> list[Path]:
    from sam2_plugins.sample import clicks_for_labels
    from sam2_plugins.synthetic import make_timelapse

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        lapse = make_timelapse(1000 + i, num_frames=frames, height=size, width=size, num_cells=cells)
        path = folder / f"movie{i:02d}.tif"
        tifffile.imwrite(path, lapse.frames)
        (folder / f"movie{i:02d}.prompts.json").write_text(json.dumps({"objects": clicks_for_labels(lapse.labels)}))
        paths.append(path)
    return paths


def peer(movies: list[Path], out: Path, seed: str | None) -> float:
    """``sam2-plugins track`` on each movie in turn, one process each; returns seconds."""
    start = time.perf_counter()
    for movie in movies:
        how = ["--seed", seed] if seed else ["--prompts", str(movie.with_suffix(".prompts.json"))]
        subprocess.run([sys.executable, "-m", "sam2_plugins", "track", str(movie), *how,
                        "--out", str(out / movie.stem), "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def batch(folder: Path, out: Path, workers: int, threads: int, seed: str | None) -> tuple[float, dict, float]:
    """``track-many`` on a new local cluster, as the command runs it; returns (seconds, summary counts, the
    movies' own seconds summed: what the workers spent inside the jobs)."""
    from sam2_plugins import track_many

    start = time.perf_counter()
    summary = track_many(folder, out, workers=workers, threads_per_worker=threads, seed=seed or "auto",
                         progress=False)
    return time.perf_counter() - start, summary.counts, sum(r["seconds"] for r in summary.rows)


def same_results(a: Path, b: Path, movies: list[Path]) -> bool:
    return all(np.array_equal(tifffile.imread(a / m.stem / "labels.tif"), tifffile.imread(b / m.stem / "labels.tif"))
               for m in movies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--movies", type=int, default=6)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--seed", choices=["auto"], default=None,
                        help="find the cells with automatic masks (default: one click per cell, from a prompts file)")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"# {machine()}; {cores} usable cores; micro-synthetic model; load average at the start "
          f"{os.getloadavg()[0]:.1f}")
    print(f"# {args.movies} movies of {args.frames} frames, {args.size} x {args.size}, {args.cells} cells, "
          f"{'automatic masks' if args.seed else 'one click per cell'}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        movies = write_movies(tmp / "movies", args.movies, args.frames, args.size, args.cells)
        rows = [("track, each movie in turn (peer)", peer(movies, tmp / "peer", args.seed), "-", None)]
        for workers, threads in ((1, cores), (2, max(1, cores // 2))):
            out = tmp / f"batch{workers}"
            seconds, counts, in_jobs = batch(tmp / "movies", out, workers, threads, args.seed)
            if counts["done"] != args.movies:
                raise SystemExit(f"the batch with {workers} worker(s) did not finish every movie: {counts}")
            same = "yes" if same_results(tmp / "peer", out, movies) else "NO"
            rows.append((f"track-many, {workers} worker(s) x {threads} thread(s)", seconds, same, in_jobs))
    base = rows[0][1]
    print(f"# load average at the end (other processes on this machine share its cores): "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'contender':<44} {'seconds':>8} {'movies/hour':>12} {'vs peer':>8} {'s/movie in a job':>17}  "
          "same labels as the peer")
    for name, seconds, same, in_jobs in rows:
        per_movie = "-" if in_jobs is None else f"{in_jobs / args.movies:.1f}"
        print(f"{name:<44} {seconds:8.1f} {args.movies / seconds * 3600:12.0f} {base / seconds:7.2f}x "
              f"{per_movie:>17}  {same}")


if __name__ == "__main__":
    main()
