"""``sam2-plugins finetune``: argparse wiring for :func:`sam2_plugins.train.finetune`.

    sam2-plugins finetune --data DIR --init sam2.1-hiera-tiny --out model.safetensors [--steps N] [--resume]

Ctrl-C stops after the current step and saves the checkpoint (exit code 130); ``--resume``
continues from it. Exit codes: 0 done, 2 bad input (missing data, unknown model ...), 130 cancelled.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def add_finetune_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="annotated videos: DIR/<video>/images/ + labels/, or images.tif + labels.tif "
                             "(see sam2_plugins.train.folder)")
    parser.add_argument("--init", default="sam2.1-hiera-tiny", metavar="NAME|PATH",
                        help="model to start from: an official name, a bundled name or a weights file "
                             "(default: %(default)s)")
    parser.add_argument("--init-config", default=None, metavar="PATH",
                        help="config of a --init weights file that is not an official architecture")
    parser.add_argument("--out", default="model.safetensors", metavar="PATH",
                        help="output weights (.safetensors); a .config.json is written next to it")
    parser.add_argument("--steps", type=int, default=1000, help="optimizer steps (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=2e-5, help="peak learning rate (default: %(default)s)")
    parser.add_argument("--clip-len", type=int, default=8, help="frames per training clip (default: %(default)s)")
    parser.add_argument("--max-objects", type=int, default=3, help="objects per clip (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=1, metavar="CLIPS",
                        help="clips of different videos per step, run as one batch; pays off on a GPU "
                             "(default: %(default)s)")
    parser.add_argument("--max-stride", type=int, default=1, metavar="K",
                        help="clips take every k-th frame, k random in 1..K: learns faster motion than "
                             "the data shows (default: %(default)s)")
    parser.add_argument("--correction-points", type=int, default=7,
                        help="corrective clicks per corrected frame (default: %(default)s)")
    parser.add_argument("--freeze-image-encoder", action="store_true", help="train only the rest of the model")
    parser.add_argument("--mix-synthetic", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of synthetic cell movies mixed into the data (default: 0)")
    parser.add_argument("--skip-divided", action="store_true",
                        help="after a cell divides (its label ends where new labels appear), leave its later "
                             "frames out of the losses rather than train it as absent")
    parser.add_argument("--exit-clips", type=float, default=0.0, metavar="FRACTION",
                        help="fraction of clips that end just after a tracked object leaves the view for good, "
                             "so tracks learn to end there (default: 0)")
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="resumable training state (default: OUT with .ckpt)")
    parser.add_argument("--checkpoint-every", type=int, default=100, metavar="N",
                        help="save the training state every N steps (default: %(default)s)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--data-workers", type=int, default=0, metavar="N",
                        help="background processes that prepare the next clips while a step runs; the "
                             "result does not depend on N (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    parser.add_argument("--no-autocast", action="store_true", help="train in float32 (default: bfloat16 autocast on CUDA and on "
                        "CPUs where it is faster: AMX, or AVX512-BF16 on AMD)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def run_finetune(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from ..checkpoints import CheckpointError
    from .finetune import finetune

    if args.threads:
        torch.set_num_threads(args.threads)
    cancel = threading.Event()
    bar = tqdm(total=args.steps, desc="finetune", unit="step", dynamic_ncols=True)

    def progress(step: int, total: int, metrics: dict) -> None:
        if bar.n == 0 and step > 1:
            bar.update(step - 1)  # resumed run
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{metrics['loss']:.3f}", lr=f"{metrics['lr']:.1e}")

    def on_sigint(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        tqdm.write("stopping after this step (Ctrl-C again to abort without saving) ...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    try:
        path = finetune(
            args.data, init=args.init, out=args.out, steps=args.steps, init_config=args.init_config, lr=args.lr,
            clip_len=args.clip_len, max_objects=args.max_objects, batch=args.batch,
            max_stride=args.max_stride,
            correction_points=args.correction_points,
            freeze_image_encoder=args.freeze_image_encoder, mix_synthetic=args.mix_synthetic,
            skip_divided=args.skip_divided, exit_clips=args.exit_clips,
            checkpoint=args.checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume,
            data_workers=args.data_workers,
            device=args.device, autocast=False if args.no_autocast else None, seed=args.seed,
            progress=progress, cancel=cancel,
        )
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        bar.close()
        print("aborted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    bar.close()
    if path is None:
        from .finetune import checkpoint_path_for

        ckpt = args.checkpoint or checkpoint_path_for(args.out)
        print(f"cancelled; progress saved in {ckpt} (continue with --resume)", file=sys.stderr)
        return 130
    print(f"wrote {path} and {path.name[: -len('.safetensors')]}.config.json", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2-plugins finetune", description=__doc__.split("\n\n")[0])
    add_finetune_arguments(parser)
    return run_finetune(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
