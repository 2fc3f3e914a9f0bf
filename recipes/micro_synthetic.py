"""The bundled ``micro-synthetic`` model: a small SAM 2.1 trained from scratch on synthetic videos.

One command reproduces it (same seed, same steps -> same weights on the same software stack)::

    python recipes/micro_synthetic.py --out src/sam2_plugins/weights/

It writes ``micro-synthetic.safetensors`` (Meta's key layout) and ``micro-synthetic.config.json``
(official config layout plus a ``training`` record), and keeps a resumable checkpoint (``--resume``
continues an interrupted run). The recipe is a long image-only warm-up (the decoder learns to
segment from clicks) followed by a mixed phase of video clips that trains the memory. The
warm-up adds two losses of its own to SAM 2's (:mod:`attn_aux`, :mod:`instance_aux`, given to the
trainer as extra losses) and starts from :func:`scratch_init.scratch_init`. The
learning-rate schedule starts again when the clips join: at full height for the memory's parts,
which the warm-up never trained, and at ``--restart-lr-scale`` of it for the rest. A short polish
(``--polish-steps``) then continues the mixed steps from a fresh optimiser at a lower peak; it
starts from the main stage's weights, saved beside the checkpoint, so ``--resume`` can polish them
alone. Half the video clips are placed where an object passes behind another and comes back
(``--occlusion-clips``); half the polish's end just after a tracked object leaves the view for good
(``--exit-clips``), and its cell movies have a newcomer enter beside each cell that leaves
(``--handoff-movies``); and the trainer moves from one torch thread to two when clips join (the
thread count is recorded: it changes the float rounding). Each clip is seeded on its own, so
``--data-workers N`` (default 1: the second core) draws the next clips in background processes
without changing the weights; ``--data-workers 0`` gives the same weights on one core, more slowly.
``--workers 2`` trains data-parallel in two processes of one thread each: every step averages the
gradients of two clips. The number of workers is part of the recipe (another number gives other
weights); the shipped weights come from one worker.
``--warmup-steps N``, ``--no-restart-lr``, ``--restart-lr-scale S``, ``--video-image-share P``,
``--clip-len N``, ``--polish-clip-len N``,
``--occlusion-clips P``, ``--absent-weight W``, ``--[no-]skip-divided``, ``--polish-steps N``,
``--exit-clips P`` and ``--handoff-movies P`` change the recipe and are recorded with the weights.

The recipe lives outside the installed package: run it from a checkout of the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

from attn_aux import ClickAttentionLoss
from instance_aux import InstanceGroupingLoss
from scratch_init import scratch_init

from sam2_plugins.checkpoints import config_path_for, load_weights, read_state_dict, save_model
from sam2_plugins.config import Sam2Config
from sam2_plugins.model.sam2 import Sam2Model
from sam2_plugins.train.data import ClipSettings, MixedDataset, SyntheticCells, SyntheticScenes
from sam2_plugins.train.loop import Trainer, TrainSettings, checkpoint_record, threads_at
from sam2_plugins.train.parallel import run_workers
from sam2_plugins.train.unroll import ClipLoss, PromptSettings

NAME = "micro-synthetic"


def micro_config() -> Sam2Config:
    """SAM 2.1's architecture at reduced width and a 256-pixel input, single-mask decoding."""
    return replace(
        Sam2Config(),  # SAM 2.1 defaults (tracking rules, heads, memory encoder)
        embed_dim=16, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
        window_pos_embed_bkg_spatial_size=(8, 8), window_spec=(8, 4, 16, 8),
        d_model=64, backbone_channel_list=(128, 64, 32, 16),
        mem_attn_layers=2, mem_attn_dim_feedforward=256, mem_attn_dropout=0.0,
        mem_dim=32, image_size=256,
        # one mask per prompt: synthetic cells and shapes are not ambiguous, and a from-scratch
        # model learns a single output much faster than the best-of-three assignment
        multimask_output_in_sam=False, dynamic_multimask_via_stability=False,
        # touching cells: each pixel goes to one object's memory (SAM 2's option, off in its
        # configs). Tracking only: training does not use it
        non_overlap_masks_for_mem_enc=True,
        name=NAME,
    )


# image-only steps first: the decoder learns to use clicks. A single-frame step costs about a
# seventh of a video step, and the clicked frame kept improving up to 20,000 of them. The video
# phase restarts the learning-rate schedule, at a third of the peak for the parts the warm-up
# trained: at the full peak the clicked frame fell from 0.78 to 0.6 mIoU and had not recovered
# 2,000 steps later, while the memory learned more slowly. Cells need single frames throughout
# (their masks are the decoder's), scenes need video steps; the split serves both
WARMUP_IMAGE_STEPS = 12000
TOTAL_STEPS = 14000
VIDEO_PHASE_IMAGE_SHARE = 0.3  # single-frame steps among the steps after the warm-up
RESTART_LR_SCALE = 0.3
WORKERS = 1  # data-parallel processes, one clip each per step (the shipped weights: 1)
DATA_WORKERS = 1  # background processes drawing clips (any number gives the same weights)
# the trainer's torch threads: one while single frames train (the data process needs the other
# core), two once video clips join (their steps run 1.34x faster on two)
IMAGE_THREADS, VIDEO_THREADS = 1, 2
CLIP_LEN = 8  # frames of a video clip
MIN_CLIP_LEN = 4  # a departure clip ends 2-3 frames after the object's last visible one
OCCLUSION_CLIPS = 0.5  # share of video clips placed where an object becomes mostly hidden
# presence-loss weight of absent objects, and whether a mother's frames after her division leave the
# losses: four in five absent targets of the video clips are such frames, where the daughters lie
# in her place, and with them in the losses the presence head learned only the base rate
ABSENT_WEIGHT = 4.0
SKIP_DIVIDED = True
# the polish: mixed steps after the schedule ends, from a fresh optimiser at a lower peak. Without
# it the cells' masks drift into touching neighbours over a movie (J by frame 0.83 -> 0.73);
# with it 0.83 -> 0.79, and cells J 0.79 -> 0.81
POLISH_STEPS = 800
POLISH_LR = 3e-4
POLISH_SEED_OFFSET = 100  # the polish draws its clips from other seeds than the main run
# share of the polish's video clips that end 2-3 frames after a tracked object leaves the view for
# good. The training movies rarely show it (an 8-frame clip of a 12-frame movie), and without such
# clips tracks moved onto cells entering where another had left
EXIT_CLIPS = 0.5
# share of the polish's cell movies in which a cell enters beside each one that leaves, as it goes:
# the tracks that still switched after departure clips moved onto such a newcomer; with every polish
# movie so, switches over 24 evaluation movies fell from 5 to 1
HANDOFF_MOVIES = 1.0


def extra_losses() -> dict[str, ClipLoss]:
    """The warm-up's own losses, by the names its settings weigh them under."""
    return {"attn_aux": ClickAttentionLoss(), "instance": InstanceGroupingLoss()}


class RecipeError(ValueError):
    """Options that give no valid run of the recipe (reported before training starts)."""


def micro_settings(steps: int = TOTAL_STEPS, seed: int = 0, warmup: int | None = None,
                   restart_lr: bool = True, occlusion_clips: float = OCCLUSION_CLIPS,
                   absent_weight: float = ABSENT_WEIGHT, skip_divided: bool = SKIP_DIVIDED,
                   restart_lr_scale: float = RESTART_LR_SCALE,
                   video_image_share: float = VIDEO_PHASE_IMAGE_SHARE, workers: int = WORKERS,
                   clip_len: int = CLIP_LEN) -> TrainSettings:
    """The recipe's settings; ``warmup`` image-only steps (default: the recipe's share of ``steps``);
    ``restart_lr`` starts the learning-rate schedule again when video clips join, at
    ``restart_lr_scale`` of the peak for the parts the warm-up trained; ``video_image_share`` of the
    later steps are single frames; ``occlusion_clips`` of the video clips are placed where an
    object becomes mostly hidden; ``absent_weight`` weighs the presence loss of absent objects;
    ``skip_divided`` leaves a mother's frames after her division out of the losses; ``workers``
    data-parallel processes share the two cores' threads of the video phase (one each for two);
    video clips have ``clip_len`` frames (the polish's too, unless it is given its own).

    Everything before the warm-up's end depends on ``warmup`` and ``seed`` only, so runs that
    differ in the other options share their first ``warmup`` steps."""
    if warmup is not None and not 0 <= warmup < steps:
        raise RecipeError(f"the image-only warm-up ({warmup} steps) must be shorter than the run ({steps} steps)")
    if not 0.0 <= occlusion_clips <= 1.0:
        raise RecipeError(f"--occlusion-clips is a share of the video clips, from 0 to 1: got {occlusion_clips}")
    if absent_weight <= 0:
        raise RecipeError(f"--absent-weight must be above 0, got {absent_weight}")
    if not 0.0 < restart_lr_scale <= 1.0:
        raise RecipeError(f"--restart-lr-scale is a share of the peak learning rate, above 0 and at most 1: "
                          f"got {restart_lr_scale}")
    if not 0.0 <= video_image_share < 1.0:
        raise RecipeError(f"--video-image-share is a share of the steps after the warm-up, from 0 to below 1: "
                          f"got {video_image_share}")
    if workers < 1:
        raise RecipeError(f"--workers must be 1 or more, got {workers}")
    _check_clip_len(clip_len, "--clip-len")
    warm = WARMUP_IMAGE_STEPS * steps // TOTAL_STEPS if warmup is None else warmup
    video_threads = max(1, VIDEO_THREADS // workers)  # two processes with two threads each ran 4 on 2 cores
    return TrainSettings(
        steps=steps, lr=1e-3, image_encoder_lr_scale=1.0, min_lr_ratio=0.05, warmup_steps=30,
        weight_decay=0.05, grad_clip=1.0, ptr_frames=16, autocast=False, loss_size=128, checkpoint_every=50,
        seed=seed, per_step_clips=True, lr_restarts=(warm,) if restart_lr else (),
        restart_lr_scale=restart_lr_scale if restart_lr else 1.0,
        image_prob_schedule=((0, 1.0), (warm, 1.0), (warm + 1, video_image_share), (steps, video_image_share)),
        # the click-attention loss and the instance-grouping loss, each decaying to 0 over the
        # warm-up. Without the instance loss the warm-up can stall on its plateau (seed 1 never left
        # it); kept on, it competes with the tracking losses. Without a warm-up the attention loss
        # is off and the instance loss constant (a decay over 0 steps means no decay)
        extra_losses=((("attn_aux", 1.0, warm),) if warm else ()) + (("instance", 1.0, warm),),
        focal_alpha_start=0.98, focal_alpha_steps=warm, absent_weight=absent_weight,
        thread_schedule=((0, IMAGE_THREADS), (warm, video_threads)),
        # up to 8 objects per video clip (more tracks and distractors per encoded clip), and half the
        # zoomed clips pan the crop window: every object moves, so memory must follow content
        clip=ClipSettings(clip_len=clip_len, max_objects=8, image_max_objects=12, pan_prob=0.5,
                          occlusion_prob=occlusion_clips, skip_divided=skip_divided),
        prompts=PromptSettings(prob_points=0.9, prob_box=0.25, max_init_cond_frames=2, max_corrected_frames=2,
                               num_correction_points=1, prob_correct_from_gt=0.1),
    )


def _check_clip_len(clip_len: int, option: str) -> None:
    if clip_len < MIN_CLIP_LEN:
        raise RecipeError(f"{option} must be {MIN_CLIP_LEN} frames or more, got {clip_len}")


def polish_settings(main: TrainSettings, steps: int = POLISH_STEPS, exit_clips: float = EXIT_CLIPS,
                    clip_len: int | None = None) -> TrainSettings:
    """The polish stage after ``main``: ``steps`` steps with ``main``'s last share of single frames,
    one cosine schedule peaking at ``POLISH_LR``, no warm-up losses, on ``main``'s last thread count; ``exit_clips``
    of its video clips show a tracked object leave the view; its clips have ``clip_len`` frames
    (default: ``main``'s)."""
    if steps < 0:
        raise RecipeError(f"--polish-steps must be 0 or more, got {steps}")
    if clip_len is not None:
        _check_clip_len(clip_len, "--polish-clip-len")
    if not 0.0 <= exit_clips <= 1.0:
        raise RecipeError(f"--exit-clips is a share of the polish's video clips, from 0 to 1: got {exit_clips}")
    share = main.image_prob_schedule[-1][1] if main.image_prob_schedule else main.clip.image_prob
    return replace(
        main, steps=steps, lr=POLISH_LR, lr_restarts=(), warmup_steps=30, seed=main.seed + POLISH_SEED_OFFSET,
        image_prob_schedule=((0, share), (steps, share)), extra_losses=(), focal_alpha_start=None,
        focal_alpha_steps=0,
        thread_schedule=((0, threads_at(main.steps, main) or VIDEO_THREADS),),
        clip=replace(main.clip, exit_prob=exit_clips, clip_len=clip_len or main.clip.clip_len),
    )


def polish_data_note(handoff_movies: float) -> dict:
    """What the polish's dataset adds to the recipe's (recorded with its checkpoint and weights)."""
    if not 0.0 <= handoff_movies <= 1.0:
        raise RecipeError(f"--handoff-movies is a share of the polish's cell movies, from 0 to 1: got {handoff_movies}")
    return {"handoff_movies": handoff_movies}


def micro_dataset(handoff_movies: float = 0.0) -> MixedDataset:
    """The recipe's mix of cell movies and scene videos; ``handoff_movies`` of the cell movies have
    a cell enter beside each one that leaves."""
    # scene videos of 16-40 frames: objects move at 0.6-1.5x the speed of the 24-frame evaluation videos
    return MixedDataset([(SyntheticCells(handoff_share=handoff_movies), 0.6),
                         (SyntheticScenes(num_frames=(16, 40)), 0.4)], seed=0)


def init_model(cfg: Sam2Config, seed: int) -> Sam2Model:
    """Seeded default initialisation plus :func:`scratch_init.scratch_init`."""
    torch.manual_seed(seed)
    return scratch_init(Sam2Model(cfg))


def train_micro(out_dir: str | Path, *, steps: int = TOTAL_STEPS, seed: int = 0, resume: bool = False,
                workers: int = WORKERS, warmup: int | None = None, data_workers: int = DATA_WORKERS,
                polish_steps: int | None = None, exit_clips: float = EXIT_CLIPS,
                handoff_movies: float = HANDOFF_MOVIES, polish_clip_len: int | None = None, log=print,
                **options) -> Path:
    """Train the recipe into ``out_dir``; returns the weights file. ``polish_steps`` defaults to the
    recipe's share of ``steps`` (0: no polish); ``exit_clips`` is the polish's share of departure
    clips, ``handoff_movies`` its share of cell movies with handoffs, ``polish_clip_len`` the frames
    of its clips (default: the main stage's); ``options`` are those of
    :func:`micro_settings` (restart_lr, occlusion_clips, ...)."""
    out_dir = Path(out_dir)
    if data_workers < 0:
        raise RecipeError(f"--data-workers must be 0 or more, got {data_workers}")
    # a bad option fails here, before any process starts
    settings = micro_settings(steps, seed, warmup, workers=workers, **options)
    polish = polish_settings(settings, POLISH_STEPS * steps // TOTAL_STEPS if polish_steps is None else polish_steps,
                             exit_clips, polish_clip_len)
    note = polish_data_note(handoff_movies)
    if resume:
        check_resumable(out_dir / f"{NAME}.ckpt", settings)
        check_resumable(out_dir / f"{NAME}.polish.ckpt", polish, note)
        check_main_stage(out_dir / f"{NAME}.main.safetensors", settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_workers(workers, _train_worker, out_dir, settings, polish, note, resume, data_workers, log)
    return out_dir / f"{NAME}.safetensors"


def check_main_stage(weights: Path, settings: TrainSettings) -> None:
    """Refuse to polish the main stage's weights of another recipe."""
    if not weights.is_file():
        return
    recorded = _training_record(weights).get("settings")
    if recorded is None or TrainSettings.from_dict(recorded) != settings:
        raise RecipeError(f"{weights} comes from a run with other settings: resume with the options of that run, "
                          "or train into another --out")


def _training_record(weights: Path) -> dict:
    """The ``training`` record saved beside a weights file of this recipe."""
    return json.loads(config_path_for(weights).read_text()).get("training", {})


def check_resumable(ckpt: Path, settings: TrainSettings, data_note: dict | None = None) -> None:
    """Refuse to continue a checkpoint with other settings or data: the weights would match no recipe."""
    if not ckpt.is_file():
        return
    saved, saved_note = checkpoint_record(ckpt)
    if saved_note != data_note:
        raise RecipeError(f"{ckpt} was trained on other data ({saved_note}): resume it with the "
                          "options of that run (--handoff-movies), or train into another --out")
    if saved != settings:
        changed = ", ".join(f.name for f in fields(settings) if getattr(saved, f.name) != getattr(settings, f.name))
        raise RecipeError(f"{ckpt} was trained with other settings ({changed} differ): resume it with the "
                         "options of that run (--steps, --warmup-steps, --seed, --no-restart-lr, "
                         "--occlusion-clips, --absent-weight, --skip-divided, --restart-lr-scale, "
                         "--video-image-share, --clip-len, --polish-clip-len, --polish-steps, --exit-clips, "
                         "--handoff-movies), "
                         "or train into another --out")


def _train_worker(rank: int, workers: int, out_dir: Path, settings: TrainSettings, polish: TrainSettings,
                  polish_note: dict, resume: bool, data_workers: int, log) -> None:
    if rank != 0:
        log = _silent
    model = init_model(micro_config(), settings.seed)
    main_weights = out_dir / f"{NAME}.main.safetensors"  # the main stage's result, kept until the polish ends
    if polish.steps and resume and main_weights.is_file():
        log(f"the main stage is done ({main_weights}): polishing")
        if rank == 0:  # the other ranks get rank 0's weights when the polish's trainer starts
            load_weights(model, read_state_dict(main_weights), main_weights)
        main_seconds = float(_training_record(main_weights)["train_seconds"])
    else:
        main_seconds = _run_stage(model, settings, out_dir / f"{NAME}.ckpt", resume, data_workers, log)
        if polish.steps and rank == 0:
            save_model(model, main_weights, info=_record(settings, workers, main_seconds))
    seconds = main_seconds
    if polish.steps:
        seconds += _run_stage(model, polish, out_dir / f"{NAME}.polish.ckpt", resume, data_workers, log,
                              polish_note)
    if rank == 0:
        info = _record(settings, workers, seconds)
        if polish.steps:
            info["polish"] = {"steps": polish.steps, "settings": polish.to_dict(), "data": polish_note,
                              "train_seconds": round(seconds - main_seconds, 1)}
        save_model(model, out_dir / f"{NAME}.safetensors", info=info)
        # kept only while the run is unfinished (for --resume)
        for path in (out_dir / f"{NAME}.ckpt", out_dir / f"{NAME}.polish.ckpt", main_weights,
                     config_path_for(main_weights)):
            path.unlink(missing_ok=True)


def _run_stage(model: Sam2Model, settings: TrainSettings, ckpt: Path, resume: bool, data_workers: int, log,
               data_note: dict | None = None) -> float:
    """Train one stage (resuming its checkpoint if asked) on the recipe's data with the options of
    ``data_note`` (see :func:`polish_data_note`); returns its training seconds."""
    dataset = micro_dataset((data_note or {}).get("handoff_movies", 0.0))
    trainer = Trainer(model, dataset, settings, checkpoint=ckpt, data_workers=data_workers, data_note=data_note,
                      extra_losses=extra_losses())
    if resume and ckpt.is_file():
        trainer.load_checkpoint()
        log(f"resumed from {ckpt} at step {trainer.step}")
    t0 = time.perf_counter()
    window: list[dict] = []

    def progress(step: int, total: int, m: dict) -> None:
        window.append(m)
        if step % 25 == 0 or step == total:
            avg = {k: sum(w[k] for w in window) / len(window) for k in ("loss", "focal", "dice", "iou", "presence")}
            video = [w["miou"] for w in window if w["frames"] > 1 and w["miou"] == w["miou"]]
            image = [w["miou"] for w in window if w["frames"] == 1 and w["miou"] == w["miou"]]
            miou = " ".join(f"{name} {sum(v) / len(v):.3f}" for name, v in (("video", video), ("image", image)) if v)
            log(f"step {step}/{total}  loss {avg['loss']:.3f} (focal {avg['focal']:.4f} dice {avg['dice']:.3f} "
                f"iou {avg['iou']:.3f} presence {avg['presence']:.3f})  mIoU {miou}  lr {m['lr']:.2e}  "
                f"{time.perf_counter() - t0:.0f}s")
            window.clear()

    trainer.run(progress)
    return trainer.seconds


def _record(settings: TrainSettings, workers: int, seconds: float) -> dict:
    return {"recipe": "recipes/micro_synthetic.py", "steps": settings.steps, "seed": settings.seed,
            "workers": workers, "settings": settings.to_dict(), "torch": torch.__version__,
            "train_seconds": round(seconds, 1)}


def _silent(*_args) -> None:
    pass


def _print_flush(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the bundled micro-synthetic SAM 2.1 model.")
    parser.add_argument("--out", default="src/sam2_plugins/weights/", help="output folder")
    parser.add_argument("--steps", type=int, default=TOTAL_STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=WORKERS,
                        help="data-parallel training processes (part of the recipe: changes the weights)")
    parser.add_argument("--warmup-steps", type=int, default=None,
                        help=f"image-only steps before video clips join (default: {WARMUP_IMAGE_STEPS} of "
                             f"{TOTAL_STEPS}, the same share of another --steps; part of the recipe)")
    parser.add_argument("--data-workers", type=int, default=DATA_WORKERS, metavar="N",
                        help=f"background processes that draw the next clips while a step runs (default "
                             f"{DATA_WORKERS}; any N, 0 included, gives the same weights)")
    parser.add_argument("--restart-lr", action=argparse.BooleanOptionalAction, default=True,
                        help="start the learning-rate schedule again when video clips join (default: on; "
                             "part of the recipe)")
    parser.add_argument("--occlusion-clips", type=float, default=OCCLUSION_CLIPS, metavar="P",
                        help=f"share of video clips placed where an object becomes mostly hidden (default "
                             f"{OCCLUSION_CLIPS}; part of the recipe)")
    parser.add_argument("--absent-weight", type=float, default=ABSENT_WEIGHT, metavar="W",
                        help=f"presence-loss weight of absent objects (default {ABSENT_WEIGHT}; part of the recipe)")
    parser.add_argument("--skip-divided", action=argparse.BooleanOptionalAction, default=SKIP_DIVIDED,
                        help="leave a mother's frames after her division out of the losses (part of the recipe)")
    parser.add_argument("--restart-lr-scale", type=float, default=RESTART_LR_SCALE, metavar="S",
                        help=f"peak of the restarted schedule for the parts the warm-up trained, as a share of "
                             f"the first peak (default {RESTART_LR_SCALE}; part of the recipe)")
    parser.add_argument("--video-image-share", type=float, default=VIDEO_PHASE_IMAGE_SHARE, metavar="P",
                        help=f"share of single-frame steps after the warm-up (default {VIDEO_PHASE_IMAGE_SHARE}; "
                             "part of the recipe)")
    parser.add_argument("--clip-len", type=int, default=CLIP_LEN, metavar="N",
                        help=f"frames of a video clip, the polish's too (default {CLIP_LEN}; part of the recipe)")
    parser.add_argument("--polish-clip-len", type=int, default=None, metavar="N",
                        help="frames of the polish's video clips (default: --clip-len; part of the recipe)")
    parser.add_argument("--polish-steps", type=int, default=None, metavar="N",
                        help=f"mixed steps from a fresh optimiser after the schedule ends (default: {POLISH_STEPS} "
                             f"of {TOTAL_STEPS}, the same share of another --steps; 0: none; part of the recipe)")
    parser.add_argument("--exit-clips", type=float, default=EXIT_CLIPS, metavar="P",
                        help=f"share of the polish's video clips that show a tracked object leave the view for good "
                             f"(default {EXIT_CLIPS}; part of the recipe)")
    parser.add_argument("--handoff-movies", type=float, default=HANDOFF_MOVIES, metavar="P",
                        help=f"share of the polish's cell movies in which a cell enters beside each one that leaves "
                             f"(default {HANDOFF_MOVIES}; part of the recipe)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    args = parser.parse_args(argv)
    try:
        path = train_micro(args.out, steps=args.steps, seed=args.seed, resume=args.resume, workers=args.workers,
                           warmup=args.warmup_steps, data_workers=args.data_workers, restart_lr=args.restart_lr,
                           occlusion_clips=args.occlusion_clips, absent_weight=args.absent_weight,
                           skip_divided=args.skip_divided, restart_lr_scale=args.restart_lr_scale,
                           video_image_share=args.video_image_share, clip_len=args.clip_len,
                           polish_steps=args.polish_steps, exit_clips=args.exit_clips,
                           handoff_movies=args.handoff_movies, polish_clip_len=args.polish_clip_len,
                           log=_print_flush)
    except RecipeError as err:
        parser.error(str(err))
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
