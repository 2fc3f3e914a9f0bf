"""The ``sam2-plugins`` command line: track a video from a prompts file and export the results."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from .batch.one_movie import (DEFAULT_FORMATS, FORMATS, SESSION_FILE, cell_events, check_writable,
                               export_session, new_cells_period, parse_formats, seed_session)
from .batch.movies import MANIFEST_HELP
from .prompts_file import PROMPTS_HELP

DEFAULT_MODEL = "micro-synthetic"


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    """How a movie is tracked and exported: the options 'track' and 'track-many' share."""
    parser.add_argument("--new-cells-every", type=int, metavar="N",
                        help="every N frames, cells that no track covers become new tracks (default: 5 with --seed, "
                             "else off)")
    parser.add_argument("--no-divisions", dest="divisions", action="store_false",
                        help="do not follow divisions (by default a track that splits into two cells divides)")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"model name (sam2.1-hiera-tiny, ...; default: {DEFAULT_MODEL}, offline) or checkpoint path")
    parser.add_argument("--config", help="official-style config (YAML/JSON) for a custom checkpoint")
    parser.add_argument("--format", default=DEFAULT_FORMATS,
                        help=f"comma-separated exports among {', '.join(FORMATS)} (default: {DEFAULT_FORMATS})")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="compute dtype (default auto: bfloat16 on CUDA and on CPUs where it is faster than "
                             "float32, i.e. with AMX or AMD's AVX512-BF16; float32 elsewhere)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="working resolution (multiple of 32; e.g. 512 for a 1024 model: tiny ran 7.3x faster "
                             "per frame, less accurate on small objects; see benchmarks/RESULTS.md)")
    overlap = parser.add_mutually_exclusive_group()
    overlap.add_argument("--non-overlap", dest="non_overlap", action="store_const", const=True, default=None,
                         help="each pixel belongs to at most one object in the tracker's memory: keeps touching "
                              "cells apart; objects that pass behind others may be lost more often (SAM 2's "
                              "non_overlap_masks_for_mem_enc; default: the model config's: on for micro-synthetic, "
                              "off for Meta's)")
    overlap.add_argument("--overlap", dest="non_overlap", action="store_const", const=False,
                         help="objects' memories may overlap (the default of Meta's models)")
    parser.add_argument("--channels", help="for multichannel data: up to three channel indices, e.g. 0,2")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate of the overlay video")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sam2-plugins",
        description="Segment and track objects in videos and time-lapses with SAM 2.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Prompts file (for 'track'):\n" + PROMPTS_HELP,
    )
    # The running package's own __version__, read from sys.modules (it is always there once this submodule is
    # imported), so no import statement: nothing that could form a cycle with the package __init__.
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {getattr(sys.modules.get(__package__), '__version__', 'unknown')}")
    sub = parser.add_subparsers(dest="command", required=True)
    track = sub.add_parser(
        "track",
        help="track the objects of a prompts file through a video and export the results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=PROMPTS_HELP,
    )
    track.add_argument("input", help="video file, TIFF stack, image folder, .npy array, or 'sample' (the shipped sample)")
    track.add_argument("--prompts", help="prompts JSON (see below); optional with 'sample' or --seed")
    track.add_argument("--seed", metavar="auto|LABELS",
                       help="start from automatic masks ('auto') or from a label image (TIFF/PNG, 0 = background) "
                            "of the first frame instead of clicks; new cells are then looked for as tracking goes")
    track.add_argument("--seed-frame", type=int, default=0, help="the frame --seed describes (default 0)")
    track.add_argument("--out", required=True, help="output folder")
    track.add_argument("--resume", metavar="SESSION",
                       help="go on with an interrupted run from its session file (OUT/session.sam2session): "
                            "its prompts and tracked frames are kept, the remaining frames are tracked")
    _add_tracking_arguments(track)
    track.add_argument("--feature-dir", help="keep encoder features here, so a movie tracked again is not encoded again")
    track.add_argument("--quiet", action="store_true", help="no progress bar")
    many = sub.add_parser(
        "track-many",
        help="track many movies on a Dask cluster (this machine, a scheduler, or SLURM/LSF/PBS jobs)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MANIFEST_HELP,
    )
    many.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="folders or globs of movies, movie files, or a manifest (CSV/JSON, see below)")
    many.add_argument("--out", required=True, help="output folder: one result folder per movie, summary.csv")
    many.add_argument("--seed", default="auto", metavar="auto|LABELS",
                      help="how the objects of movies without prompts are found (default: automatic masks)")
    many.add_argument("--redo", action="store_true", help="track movies again even when their results are complete")
    many.add_argument("--feature-dir", help="keep encoder features here, so a movie tracked again is not encoded again")
    _add_tracking_arguments(many)
    many.add_argument("--quiet", action="store_true", help="no progress bars")
    where = many.add_argument_group("where it runs (default: a local Dask cluster sized to this machine)")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask cluster's scheduler, tcp://HOST:PORT")
    where.add_argument("--cluster", choices=["slurm", "lsf", "pbs"],
                       help="start workers as HPC jobs through dask-jobqueue (pip install 'sam2-plugins[cluster]')")
    where.add_argument("--workers", type=int, help="local worker processes (default: one per GPU, else per core)")
    where.add_argument("--threads-per-worker", type=int, help="torch threads of each local worker (default 1 on CPUs)")
    where.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                       help="each movie needs a worker with a GPU (Dask resource GPU=1; default: when jobs have one)")
    jobs = many.add_argument_group("HPC jobs (with --cluster): one worker per job")
    jobs.add_argument("--queue", help="queue or partition")
    jobs.add_argument("--account", help="account or project charged")
    jobs.add_argument("--walltime", default="02:00:00", help="per job, HH:MM:SS (default 02:00:00)")
    jobs.add_argument("--memory", default="32GB", help="per job (default 32GB)")
    jobs.add_argument("--cores", type=int, default=8, help="CPU cores per job (default 8)")
    jobs.add_argument("--gpus-per-job", type=int, default=1, choices=[0, 1], help="0 or 1 (default 1)")
    jobs.add_argument("--max-jobs", type=int, default=4, help="adaptive scaling: at most this many jobs (default 4)")
    jobs.add_argument("--min-jobs", type=int, default=0, help="adaptive scaling: at least this many jobs (default 0)")
    jobs.add_argument("--job-extra", action="append", default=[], metavar="DIRECTIVE",
                      help="one more scheduler directive, e.g. --job-extra=--constraint=a100 (repeatable)")
    jobs.add_argument("--prologue", action="append", default=[], metavar="LINE",
                      help="a shell line run before the worker starts, e.g. 'module load cuda' (repeatable)")
    jobs.add_argument("--local-directory", help="node-local scratch folder for the workers")
    jobs.add_argument("--log-directory", help="folder for the jobs' logs")
    segment = sub.add_parser("segment", help="automatic masks ('segment everything') of an image or a video frame")
    segment.add_argument("input", help="image file, or a video / TIFF stack / folder with --frame, or 'sample'")
    segment.add_argument("--frame", type=int, default=0, help="the frame of a video to segment (default 0)")
    segment.add_argument("--out", required=True, help="output folder: labels.tif (one id per object, 0 = none)")
    segment.add_argument("--model", default=DEFAULT_MODEL, help="model name or checkpoint path")
    segment.add_argument("--config", help="official-style config (YAML/JSON) for a custom checkpoint")
    segment.add_argument("--preset", choices=["auto", "cells", "meta"], default="auto",
                         help="settings: 'meta' (Meta's automatic mask generator's), 'cells' (tuned for the "
                              "shipped micro model on cells); auto: cells for micro-synthetic, else meta")
    segment.add_argument("--points-per-side", type=int, help="grid of clicks per side (overrides the preset)")
    segment.add_argument("--crop-layers", type=int, help="crop layers (0: the whole image only)")
    segment.add_argument("--min-area", type=int, help="smallest mask kept, in pixels")
    segment.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    try:
        from .train.cli import add_finetune_arguments
    except ImportError:  # pragma: no cover - training extras missing
        add_finetune_arguments = None
    if add_finetune_arguments is not None:
        finetune = sub.add_parser("finetune", help="fine-tune a model on annotated time-lapses")
        add_finetune_arguments(finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "track":
            return run_track(args)
        if args.command == "segment":
            return run_segment(args)
        if args.command == "track-many":
            return run_track_many(args)
        if args.command == "finetune":
            from .train.cli import run_finetune

            return run_finetune(args)
    except KeyboardInterrupt:
        print("sam2-plugins: interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, IndexError, FileNotFoundError, RuntimeError, OSError, ImportError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sam2-plugins: error: {message}", file=sys.stderr)
        return 2
    return 1


def run_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import load_model
    from .prompts_file import read_label_image, read_prompts
    from .sample import sample_paths
    from .video import load_session

    formats = parse_formats(args.format)
    source, prompts_path = args.input, args.prompts
    if args.input == "sample":
        source, default_prompts = sample_paths()
        prompts_path = prompts_path or default_prompts
    if args.input == "sample" and args.seed is not None and args.prompts is None:
        prompts_path = None
    if args.resume is None and prompts_path is None and args.seed is None:
        raise ValueError("--prompts or --seed is required (see 'sam2-plugins track --help')")
    seed_labels = None if args.seed in (None, "auto") else read_label_image(args.seed)
    new_cells_every = new_cells_period(args.seed, args.new_cells_every)
    if args.resume is not None and not Path(args.resume).is_file():
        raise FileNotFoundError(f"session file to resume not found: {args.resume}")
    prompts = None if prompts_path is None else read_prompts(prompts_path)  # resuming: only its lineage
    channels = None if args.channels is None else [int(c) for c in args.channels.split(",")]
    out = Path(args.out)
    check_writable(out)
    model = load_model(args.model, config=args.config, device=args.device, dtype=args.dtype,
                       image_size=args.image_size)
    if args.resume is None:
        session = model.open_video(source, channels=channels, non_overlap_memory=args.non_overlap,
                                   feature_dir=args.feature_dir)
        seed_session(session, prompts=prompts, seed=args.seed, seed_labels=seed_labels, seed_frame=args.seed_frame)
    else:
        session = load_session(args.resume, model, source, non_overlap_memory=args.non_overlap,
                               feature_dir=args.feature_dir)
    cancel = threading.Event()
    events = cell_events(session, divisions=args.divisions, new_cells_every=new_cells_every)
    dtype = str(model.compute_dtype).removeprefix("torch.")
    done = 0
    try:
        with tqdm(total=None, desc=f"tracking ({model.device.type}, {dtype})", unit="frame",
                  disable=args.quiet) as bar:
            def progress(count: int, total: int) -> None:
                nonlocal done
                done = count
                bar.total = total
                bar.n = count
                bar.refresh()

            for _ in session.propagate_all(progress=progress, cancel=cancel, resume=args.resume is not None,
                                           events=events):
                pass
    except (KeyboardInterrupt, Exception) as err:
        written = export_session(session, out, [f for f in formats if f == "labels"] + ["session"])
        why = "interrupted" if isinstance(err, KeyboardInterrupt) else f"stopped by an error ({err})"
        print(f"sam2-plugins: {why} after {done} frames; what was tracked is in {', '.join(map(str, written))}. "
              f"Go on with: sam2-plugins track {args.input} --out {out} --resume {out / SESSION_FILE} "
              f"(and the same --model)", file=sys.stderr)
        raise
    written = export_session(session, out, formats, fps=args.fps, cancel=cancel)
    for path in written:
        print(path)
    return 0


def run_track_many(args: argparse.Namespace) -> int:
    """Many movies on Dask; prints the summary table, exits 1 when a movie failed."""
    from .batch import TrackOptions, track_many
    from .batch.cluster import JobqueueOptions

    options = TrackOptions(
        model=args.model, config=args.config, device=args.device, dtype=args.dtype, image_size=args.image_size,
        formats=tuple(parse_formats(args.format)), divisions=args.divisions, new_cells_every=args.new_cells_every,
        non_overlap=args.non_overlap, fps=args.fps, feature_dir=args.feature_dir,
        channels=None if args.channels is None else tuple(int(c) for c in args.channels.split(",")),
    )
    jobqueue = JobqueueOptions(
        queue=args.queue, account=args.account, walltime=args.walltime, memory=args.memory, cores=args.cores,
        gpus=args.gpus_per_job, max_jobs=args.max_jobs, min_jobs=args.min_jobs, job_extra=args.job_extra,
        prologue=args.prologue, local_directory=args.local_directory, log_directory=args.log_directory,
    )
    summary = track_many(args.inputs, args.out, options=options, seed=args.seed, scheduler=args.scheduler,
                         cluster=args.cluster, jobqueue=jobqueue, workers=args.workers,
                         threads_per_worker=args.threads_per_worker, gpu=args.gpu, redo=args.redo,
                         progress=not args.quiet)
    print(summary.table())
    print(summary.csv_path)
    return 1 if summary.failed else 0


def run_segment(args: argparse.Namespace) -> int:
    import dataclasses


    from . import load_model
    from .automask import AutoMaskSettings, masks_to_labels
    from .sample import sample_paths
    from .sources import open_source
    from .video.cells import frame_image

    out = Path(args.out)
    check_writable(out)
    path = sample_paths()[0] if args.input == "sample" else args.input
    source = open_source(path)
    if not 0 <= args.frame < source.num_frames:
        raise IndexError(f"frame {args.frame} is out of range for {source.description} ({source.num_frames} frames)")
    cells = args.preset == "cells" or (args.preset == "auto" and args.model == DEFAULT_MODEL)
    settings = AutoMaskSettings.for_cells() if cells else AutoMaskSettings()
    chosen = {"points_per_side": args.points_per_side, "crop_n_layers": args.crop_layers,
              "min_mask_region_area": args.min_area}
    settings = dataclasses.replace(settings, **{k: v for k, v in chosen.items() if v is not None})
    model = load_model(args.model, config=args.config, device=args.device)
    image = frame_image(source, args.frame)
    masks = model.generate_masks(image, settings)
    labels = masks_to_labels(masks, image.shape[:2])
    from .exports import write_label_stack

    written = write_label_stack(out / "labels.tif", labels[None], min_area=0)
    print(f"{len(masks)} objects -> {written}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
