"""The ``sam2-plugins`` command line: track a video from a prompts file and export the results."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from .prompts_file import PROMPTS_HELP

DEFAULT_MODEL = "micro-synthetic"
FORMATS = ("labels", "masks", "overlay", "ctc", "tracks", "geff", "session")
DEFAULT_FORMATS = "labels,tracks,ctc,geff,session"


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
    track.add_argument("--new-cells-every", type=int, metavar="N",
                       help="every N frames, cells that no track covers become new tracks (default: 5 with --seed, "
                            "else off)")
    track.add_argument("--no-divisions", dest="divisions", action="store_false",
                       help="do not follow divisions (by default a track that splits into two cells divides)")
    track.add_argument("--out", required=True, help="output folder")
    track.add_argument("--resume", metavar="SESSION",
                       help="go on with an interrupted run from its session file (OUT/session.sam2session): "
                            "its prompts and tracked frames are kept, the remaining frames are tracked")
    track.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"model name (sam2.1-hiera-tiny, ...; default: {DEFAULT_MODEL}, offline) or checkpoint path")
    track.add_argument("--config", help="official-style config (YAML/JSON) for a custom checkpoint")
    track.add_argument("--format", default=DEFAULT_FORMATS,
                       help=f"comma-separated exports among {', '.join(FORMATS)} (default: {DEFAULT_FORMATS})")
    track.add_argument("--device", default="auto", help="auto, cpu, cuda, mps")
    track.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                       help="compute dtype (default auto: bfloat16 on CUDA and on CPUs where it is faster than "
                            "float32, i.e. with AMX or AMD's AVX512-BF16; float32 elsewhere)")
    track.add_argument("--image-size", type=int, default=None,
                       help="working resolution (multiple of 32; e.g. 512 for a 1024 model: tiny ran 7.3x faster "
                            "per frame, less accurate on small objects; see benchmarks/RESULTS.md)")
    overlap = track.add_mutually_exclusive_group()
    overlap.add_argument("--non-overlap", dest="non_overlap", action="store_const", const=True, default=None,
                         help="each pixel belongs to at most one object in the tracker's memory: keeps touching "
                              "cells apart; objects that pass behind others may be lost more often (SAM 2's "
                              "non_overlap_masks_for_mem_enc; default: the model config's: on for micro-synthetic, "
                              "off for Meta's)")
    overlap.add_argument("--overlap", dest="non_overlap", action="store_const", const=False,
                         help="objects' memories may overlap (the default of Meta's models)")
    track.add_argument("--channels", help="for multichannel data: up to three channel indices, e.g. 0,2")
    track.add_argument("--fps", type=float, default=10.0, help="frame rate of the overlay video")
    track.add_argument("--quiet", action="store_true", help="no progress bar")
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
        if args.command == "finetune":
            from .train.cli import run_finetune

            return run_finetune(args)
    except KeyboardInterrupt:
        print("sam2-plugins: interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, IndexError, FileNotFoundError, RuntimeError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"sam2-plugins: error: {message}", file=sys.stderr)
        return 2
    return 1


def run_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import load_model
    from .prompts_file import apply_prompts, read_label_image, read_prompts
    from .sample import sample_paths
    from .video import load_session
    from .video.cells import CellEvents, CellOptions

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {', '.join(unknown)}; choose among {', '.join(FORMATS)}")
    source, prompts_path = args.input, args.prompts
    if args.input == "sample":
        source, default_prompts = sample_paths()
        prompts_path = prompts_path or default_prompts
    if args.input == "sample" and args.seed is not None and args.prompts is None:
        prompts_path = None
    if args.resume is None and prompts_path is None and args.seed is None:
        raise ValueError("--prompts or --seed is required (see 'sam2-plugins track --help')")
    seed_labels = None if args.seed in (None, "auto") else read_label_image(args.seed)
    new_cells_every = args.new_cells_every if args.new_cells_every is not None else (5 if args.seed else None)
    if args.resume is not None and not Path(args.resume).is_file():
        raise FileNotFoundError(f"session file to resume not found: {args.resume}")
    prompts = None if prompts_path is None else read_prompts(prompts_path)  # resuming: only its lineage
    channels = None if args.channels is None else [int(c) for c in args.channels.split(",")]
    out = Path(args.out)
    check_writable(out)
    model = load_model(args.model, config=args.config, device=args.device, dtype=args.dtype,
                       image_size=args.image_size)
    if args.resume is None:
        session = model.open_video(source, channels=channels, non_overlap_memory=args.non_overlap)
        if prompts is not None:
            apply_prompts(session, prompts)
        if seed_labels is not None:
            session.add_label_image(args.seed_frame, seed_labels)
        elif args.seed == "auto":
            if not session.add_automatic_masks(args.seed_frame):
                raise ValueError(f"automatic masks found no object on frame {args.seed_frame}")
    else:
        session = load_session(args.resume, model, source, non_overlap_memory=args.non_overlap)
    cancel = threading.Event()
    events = None
    if args.divisions or new_cells_every:
        events = CellEvents(session, CellOptions(divisions=args.divisions, new_cells_every=new_cells_every))
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


SESSION_FILE = "session.sam2session"


def run_segment(args: argparse.Namespace) -> int:
    import dataclasses

    import tifffile

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


def check_writable(out: Path) -> None:
    """Fail now, not after tracking, when the output folder cannot be made or written to."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".sam2-plugins-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise OSError(f"cannot write to the output folder {out}: {err.strerror or err}") from None


def export_session(session, out: Path, formats: list[str], *, fps: float = 10.0,
                   progress=None, cancel=None) -> list[Path]:
    """Write the chosen exports of a tracked session into ``out``, with its lineage; returns what
    was written."""
    from . import exports
    from .video import save_session

    parents = session.lineage.parents
    labels = None
    if set(formats) - {"overlay", "session"}:  # specks go here, once: every export shows these pixels
        labels = exports.clean_labels(exports.session_labels(session))
    kept = {"min_area": 0}  # already cleaned
    written: list[Path] = []
    if "labels" in formats:
        written.append(exports.write_label_stack(out / "labels.tif", labels, **kept))
    if "masks" in formats:
        written.append(exports.write_object_masks(out / "masks", labels, object_ids=session.object_ids, **kept))
    if "ctc" in formats:
        exports.write_ctc(out / "ctc", labels, parents, **kept)
        written.append(out / "ctc")
    if "tracks" in formats:
        written.append(exports.write_tracks_csv(out / "tracks.csv", labels, parents, **kept))
    if "geff" in formats:
        linked = out / "labels.tif" if "labels" in formats else None
        written.append(exports.write_geff(out / "tracks.geff", labels, parents, labels_path=linked, **kept))
    if "overlay" in formats:
        video = exports.export_overlay_video_from_session(
            session, out / "overlay.mp4", fps=fps, progress=progress, cancel=cancel
        )
        if video is not None:
            written.append(video)
    if "session" in formats:
        written.append(save_session(session, out / SESSION_FILE))
    return [Path(p) for p in written]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
