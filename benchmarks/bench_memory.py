"""Peak RAM against video length: 100 vs 2,000 frames of 1080p, read lazily from a synthetic source.

Each length runs in a fresh process (peak RSS is per process). Frames are generated on the fly
(a textured moving disc), so the source itself holds no frames.

    python benchmarks/bench_memory.py --lengths 100 2000 --model sam2.1-hiera-tiny
    python benchmarks/bench_memory.py --lengths 100 2000 --model micro   # minutes, not hours, on a CPU
    python benchmarks/bench_memory.py --lengths 100 2000 --image-size 512 --threads 1  # tiny, lower resolution
    python benchmarks/bench_memory.py --lengths 400 --marks 100 200 300  # one run, peak RSS read on the way

``--marks`` reads the peak RSS of the same process after those frames too: one long run then
shows the curve (a 100-frame run's peak is the 100-frame mark of a longer run: the session's
work per frame does not depend on the video's length).
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sam2_plugins.video import VideoSession

HERE = Path(__file__).parent


class SyntheticHD:
    """A lazy (T, 1080, 1920, 3) uint8 video: frames are drawn when read."""

    def __init__(self, num_frames: int, height: int = 1080, width: int = 1920) -> None:
        self.shape = (num_frames, height, width, 3)
        self.dtype = np.dtype(np.uint8)
        self.ndim = 4
        rng = np.random.default_rng(0)
        self._texture = rng.integers(0, 60, (height, width), dtype=np.uint8)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        frame = self._draw(int(key))
        return frame[rest] if rest else frame

    def _draw(self, t: int) -> np.ndarray:
        h, w = self.shape[1:3]
        frame = np.empty((h, w, 3), np.uint8)
        frame[...] = self._texture[..., None]
        cy, cx = h // 2 + int(100 * np.sin(t / 20)), w // 3 + (t * 3) % (w // 3)
        yy, xx = np.ogrid[:h, :w]
        frame[(yy - cy) ** 2 + (xx - cx) ** 2 < 150**2] = (220, 180, 60)
        return frame


def run_one(length: int, model_name: str, cache_mb: float, memory_mb: float, image_size: int | None,
            threads: int | None, marks: list[int] | None = None) -> dict:
    import resource

    import torch

    torch.set_flush_denormal(True)
    if threads:
        torch.set_num_threads(threads)
    sys.path.insert(0, str(HERE))
    if model_name == "micro":
        from sam2_plugins import load_model

        root = HERE.parent / "tests" / "data"
        model = load_model(root / "micro_reference.safetensors", config=root / "sam2.1_hiera_micro.config.json", device="cpu")
    else:
        from common import seeded_model

        model = seeded_model(model_name, dtype="auto", image_size=image_size)
    session = model.open_video(SyntheticHD(length), feature_cache_mb=cache_mb, memory_mb=memory_mb)
    session.add_points(0, 1, [[1920 // 3, 540]], [1])
    start = time.perf_counter()

    def state(frames: int) -> dict:
        return {"frames": frames, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "seconds": time.perf_counter() - start, "spilled": session.pool.spilled,
                "memory_pool_mb": session.pool.nbytes / 2**20, "results_mb": session.results.nbytes / 2**20}

    for done, _ in enumerate(session.propagate(), start=1):
        if done in (marks or ()):
            print(json.dumps({"mark": state(done)}), flush=True)  # reported as it happens: a long run may be stopped
    return {**state(length), "feature_cache_mb": session.feature_cache.nbytes / 2**20}


def _describe(row: dict, what: str) -> str:
    return (f"{row['frames']:5d} frames {what}: peak RSS {row['peak_rss_mb']:.0f} MB, {row['seconds']:.0f} s, "
            f"memories {row['memory_pool_mb']:.0f} MB in RAM, {row['spilled']} spilled to disk, "
            f"stored results {row['results_mb']:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--model", default="sam2.1-hiera-tiny", help="an official name (seeded weights) or 'micro'")
    budgets = inspect.signature(VideoSession).parameters
    parser.add_argument("--feature-cache-mb", type=float, default=budgets["feature_cache_mb"].default,
                        help="session budget (default: the session's, %(default)g)")
    parser.add_argument("--memory-mb", type=float, default=budgets["memory_mb"].default,
                        help="session budget (default: the session's, %(default)g)")
    parser.add_argument("--image-size", type=int, default=None, help="working resolution (default: the model's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--marks", type=int, nargs="*", default=[],
                        help="also report the peak RSS after these frames of each run")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.model, args.feature_cache_mb, args.memory_mb, args.image_size,
                                 args.threads, args.marks)))
        return
    from common import machine

    size = f" at {args.image_size}" if args.image_size else ""
    print(f"machine: {machine()}; model: {args.model}{size}; budgets: feature cache {args.feature_cache_mb:g} MB, "
          f"memories {args.memory_mb:g} MB")
    extra = [a for flag, v in (("--image-size", args.image_size), ("--threads", args.threads)) if v
             for a in (flag, str(v))] + ["--marks", *map(str, args.marks)]
    rows = []
    for length in args.lengths:
        child = subprocess.Popen([sys.executable, __file__, "--one", str(length), "--model", args.model,
                                  "--feature-cache-mb", str(args.feature_cache_mb), "--memory-mb", str(args.memory_mb),
                                  *extra], stdout=subprocess.PIPE, text=True)
        row = None
        for line in child.stdout:
            if not line.startswith("{"):
                continue
            row = json.loads(line)
            if "mark" in row:
                rows.append(row["mark"])
                print(_describe(row["mark"], f"(mark in the {length}-frame run)"), flush=True)
        if child.wait() != 0 or row is None or "mark" in row:
            raise SystemExit(f"the {length}-frame run failed (exit status {child.returncode})")
        rows.append(row)
        print(_describe(row, "of 1080p") + f" (feature cache {row['feature_cache_mb']:.0f} MB)", flush=True)
    if len(rows) > 1:
        # the goal's baseline is 100 frames: a run or a mark of that length, else the shortest
        base = next((r for r in rows if r["frames"] == 100), min(rows, key=lambda r: r["frames"]))
        longest = max(rows, key=lambda r: r["frames"])
        print(f"peak RSS ratio {longest['frames']} / {base['frames']} frames: "
              f"{longest['peak_rss_mb'] / base['peak_rss_mb']:.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
