"""Training: losses, prompt sampling, the clip unroll and its extra-loss hooks, resumable checkpoints,
the folder dataset, ``finetune`` and its CLI (real engine, no mocks). Models come from the micro
recipe's initialisation (``recipes/``); the recipe's own commands are tested in test_recipes.py."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sam2_plugins import load_model, parse_config
from sam2_plugins.config import official_config
from sam2_plugins.engine import Sam2
from sam2_plugins.train import (
    ClipLoss,
    ClipPlan,
    ClipSettings,
    FolderDataset,
    PromptSettings,
    SyntheticCells,
    Trainer,
    TrainSettings,
    batch_clips,
    draw_clip,
    official_layout,
    sample_clip,
    step_loss,
    unroll_clip,
)
from sam2_plugins.train.prompts import click_in, corrective_click, noisy_box

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import micro_synthetic as ms  # noqa: E402
from instance_aux import InstanceGroupingLoss  # noqa: E402
from micro_synthetic import init_model, micro_config  # noqa: E402

DATA = Path(__file__).parent / "data"
MICRO_WEIGHTS = DATA / "micro_reference.safetensors"
MICRO_CONFIG = DATA / "sam2.1_hiera_micro.config.json"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_official_layout_round_trips():
    for cfg in (official_config("sam2.1-hiera-tiny"), official_config("sam2-hiera-large"), micro_config(),
                parse_config(MICRO_CONFIG)):
        assert parse_config({"model": official_layout(cfg)}) == cfg


def test_losses_pick_best_mask_and_ignore_absent_objects():
    target = torch.zeros(2, 1, 16, 16)
    target[0, 0, 4:12, 4:12] = 1  # object 1 present, object 2 absent
    good = target[:, 0] * 40 - 20
    masks = torch.stack([-good, good, torch.zeros_like(good)], 1)  # (2, 3, 16, 16): the 2nd is right
    ious = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    scores = torch.tensor([[10.0], [-10.0]])
    loss = step_loss(masks, ious, scores, target, num_objects=2)
    assert float(loss.focal) < 1e-6 and float(loss.dice) < 1e-3  # best of 3 is exact
    assert float(loss.presence) < 1e-3
    wrong_scores = step_loss(masks, ious, -scores, target, num_objects=2)
    assert float(wrong_scores.presence) > 5


def test_absent_weight_and_object_weight_scale_the_right_terms():
    target = torch.zeros(2, 1, 16, 16)
    target[0, 0, 4:12, 4:12] = 1  # object 1 present, object 2 absent
    masks = torch.where(target > 0, 5.0, -5.0)
    masks[0, 0, 4:6] = -5.0  # object 1's mask misses two rows: its mask terms are not zero
    ious, scores = torch.ones(2, 1), torch.zeros(2, 1)  # presence undecided for both

    def terms(**kw):
        return step_loss(masks, ious, scores, target, num_objects=2, **kw)

    base, heavy = terms(), terms(absent_weight=4.0)
    # the absent object's presence error counts 4x, the present one's stays: (1 + 4) / (1 + 1)
    assert float(heavy.presence) == pytest.approx(float(base.presence) * 2.5)
    assert float(heavy.focal) == float(base.focal) and float(heavy.dice) == float(base.dice)
    # weight 0 leaves an object out entirely: here object 1, so only object 2's presence remains
    out = terms(object_weight=torch.tensor([[0.0], [1.0]]))
    assert float(out.focal) == 0 and float(out.dice) == 0 and float(out.iou) == 0
    assert float(out.presence) == pytest.approx(float(base.presence) / 2)


def test_frames_after_a_division_are_left_out_but_exits_are_not():
    from sam2_plugins.synthetic import make_timelapse
    from sam2_plugins.train.events import continued_by_new_labels

    lab = np.zeros((4, 20, 40), np.int64)
    lab[:2, 2:10, 2:10] = 1  # cell 1 divides on frame 2 into cells 7 and 8, in its place
    lab[2:, 2:10, 2:6], lab[2:, 2:10, 6:10] = 7, 8
    lab[:3, 12:18, 30:38] = 2  # cell 2 leaves after frame 2 ...
    lab[3:, 12:18, 2:8] = 9  # ... while a cell enters elsewhere
    lab[:, 12:18, 14:20] = 3  # cell 3 stays
    assert continued_by_new_labels(lab, [1, 2, 3]).T.tolist() == [
        [False, False, True, True], [False] * 4, [False] * 4]
    # the synthetic time-lapses: exactly the frames of each mother after her division
    tl = make_timelapse(3, num_frames=30)
    ids = [int(i) for i in np.unique(tl.labels[0]) if i]
    mothers = {p for p in tl.lineage.values() if p}
    assert mothers & set(ids)
    left_out = continued_by_new_labels(tl.labels, ids)
    for j, i in enumerate(ids):
        gone = ~(tl.labels == i).reshape(len(tl.labels), -1).any(1)
        assert left_out[:, j].tolist() == (np.cumsum(gone) > 0 if i in mothers else np.zeros_like(gone)).tolist()


def test_prompt_sampling_from_masks():
    gen = torch.Generator().manual_seed(0)
    gt = torch.zeros(3, 1, 32, 32, dtype=torch.bool)
    gt[0, 0, 5:10, 20:30] = True
    gt[1, 0, 0:32, 0:16] = True  # object 3 is empty
    xy, lab = click_in(gt, gen)
    for b in range(2):
        x, y = xy[b, 0].long().tolist()
        assert gt[b, 0, y, x] and lab[b, 0] == 1
    assert lab[2, 0] == 0
    box, box_lab = noisy_box(gt, gen, noise=0.0)
    assert box[0].tolist() == [[20.0, 5.0], [29.0, 9.0]] and box_lab[0].tolist() == [2, 3]
    pred = gt.clone()
    pred[0, 0, 5:10, 25:30] = False  # a false negative on object 1
    pred[1, 0, 20:25, 20:25] = True  # a false positive on object 2
    xy, lab = corrective_click(gt, pred, gen)
    x, y = xy[0, 0].long().tolist()
    assert lab[0, 0] == 1 and gt[0, 0, y, x] and not pred[0, 0, y, x]
    x, y = xy[1, 0].long().tolist()
    assert lab[1, 0] == 0 and pred[1, 0, y, x] and not gt[1, 0, y, x]


def _tiny_clip():
    cells = SyntheticCells(num_videos=4, num_frames=3, size=(64, 64))
    frames, labels = cells[0]
    clip = sample_clip(frames, labels, 256, ClipSettings(clip_len=3, max_objects=2, augment=False),
                       np.random.default_rng(0))
    assert clip is not None and clip.pixels.shape == (3, 3, 256, 256) and clip.gt.shape[:3] == (3, 2, 1)
    return clip


def test_a_few_steps_lower_the_loss_on_a_fixed_clip():
    model = init_model(micro_config(), seed=0).train()
    clip = _tiny_clip()
    plan = ClipPlan([0], {0: "click"}, correct=[0], num_corrections=1)
    settings = PromptSettings(prob_correct_from_gt=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        gen = torch.Generator().manual_seed(123)  # the same clicks every step
        res = unroll_clip(model, clip.pixels, clip.gt, plan, settings, gen, np.random.default_rng(0), ptr_frames=16)
        assert torch.isfinite(res.loss.total)
        losses.append(float(res.loss.total.detach()))
        opt.zero_grad()
        res.loss.total.backward()
        opt.step()
    assert losses[-1] < 0.7 * losses[0], losses
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_clips_of_two_videos_train_as_one_batch_with_the_same_results():
    """A batch of clips from different videos gives each object what its own clip would."""
    model = init_model(micro_config(), seed=0).eval()  # no dropout: runs are comparable
    cells = SyntheticCells(num_videos=4, num_frames=3, size=(64, 64))
    settings = ClipSettings(clip_len=3, max_objects=2, augment=False)
    clips = [sample_clip(*cells[i], 256, settings, np.random.default_rng(i)) for i in (0, 1)]
    batch = batch_clips(clips)
    assert batch.pixels.shape[0] == 6 and batch.object_clip == [0] * len(clips[0].object_ids) + [1] * len(
        clips[1].object_ids)
    images = draw_clip(cells, 256, replace(settings, image_prob=1.0, images_per_step=2), np.random.default_rng(0))
    assert images.gt.shape[0] == 1 and images.pixels.shape[0] == 2 and set(images.object_clip) == {0, 1}
    plan = ClipPlan([0], {0: "mask"})  # GT-mask prompts: nothing random, so the runs can be compared

    def run(clip):
        return unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(), torch.Generator().manual_seed(0),
                           np.random.default_rng(0), ptr_frames=16, object_clip=clip.object_clip)

    with torch.no_grad():
        together = run(batch)
        alone = [run(c) for c in clips]
    for t in range(3):
        separate = torch.cat([r.masks[t] for r in alone])
        assert torch.allclose(together.masks[t], separate, atol=1e-3)
        # objects of the other video would be segmented if features were mixed up
        assert not torch.allclose(separate, torch.cat([alone[0].masks[t][:1]] * separate.shape[0]), atol=1e-3)


def test_clips_carry_every_instance_of_each_frame_row_by_row():
    """The full label map (for the instance-grouping loss) matches the objects' targets, clip by clip."""
    cells = SyntheticCells(num_videos=4, num_frames=3, size=(64, 64))
    settings = ClipSettings(clip_len=3, max_objects=2)
    clips = [sample_clip(*cells[i], 256, settings, np.random.default_rng(i)) for i in (0, 1)]
    batch = batch_clips(clips)
    assert batch.labels.shape == (6, 256, 256) and batch.labels.dtype == torch.int64
    for k, clip in enumerate(clips):
        for j, oid in enumerate(clip.object_ids):
            for t in range(3):
                ours = batch.labels[k * 3 + t] == oid
                target = clip.gt[t, j, 0]
                assert (ours & target).sum() / (ours | target).sum() > 0.8
        # other cells of the frame are there too, not only the chosen objects
        assert set(clip.labels[0].unique().tolist()) - {0} >= set(clip.object_ids)


def test_neighbour_weight_makes_spilling_into_a_touching_cell_cost_more_than_into_background():
    from sam2_plugins.train.losses import step_loss

    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 2:8] = 1  # object A; its neighbour B is columns 8-13
    others = torch.zeros_like(target)
    others[..., 4:12, 8:14] = 1
    into_neighbour = torch.full_like(target, -8.0)
    into_neighbour[..., 4:12, 2:10] = 8.0  # A plus two columns of B
    into_background = torch.full_like(target, -8.0)
    into_background[..., 4:12, 0:8] = 8.0  # A plus two columns of background
    scores, ious = torch.ones(1, 1), torch.ones(1, 1)

    def focal(logits, weight):
        return float(step_loss(logits, ious, scores, target, 1, pixel_weight=weight).focal)

    assert focal(into_neighbour, None) == pytest.approx(focal(into_background, None))
    weight = 1.0 + 4.0 * others
    assert focal(into_neighbour, weight) > 3 * focal(into_background, weight)


def test_clip_losses_weight_other_instances_pixels_only_when_asked():
    model = init_model(micro_config(), seed=0).eval()
    cells = SyntheticCells(num_videos=4, num_frames=3, size=(64, 64))
    clip = sample_clip(*cells[0], 256, ClipSettings(clip_len=2, max_objects=3, augment=False),
                       np.random.default_rng(0))
    assert len(clip.object_ids) > 1
    plan = ClipPlan([0], {0: "click"})

    def focal(weight):
        with torch.no_grad():
            res = unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(), torch.Generator().manual_seed(0),
                              np.random.default_rng(0), ptr_frames=16, loss_size=64, labels=clip.labels,
                              neighbour_weight=weight)
        return float(res.loss.focal)

    assert focal(4.0) > focal(0.0)
    settings = replace(_small_settings(2), neighbour_weight=4.0)
    trainer = Trainer(init_model(micro_config(), seed=0), cells, settings)
    assert trainer.run() and all(np.isfinite(m["loss"]) for m in trainer.history)


def test_a_mothers_frames_after_her_division_leave_the_losses_when_asked():
    from sam2_plugins.synthetic import make_timelapse

    tl = make_timelapse(3, num_frames=30)
    mother = min(p for p in tl.lineage.values() if p and (tl.labels[0] == p).any())
    end = int(np.nonzero(~(tl.labels == mother).reshape(30, -1).any(1))[0][0])  # her first frame gone
    frames, labels = tl.frames[end - 2 : end + 2], tl.labels[end - 2 : end + 2]
    settings = ClipSettings(clip_len=4, max_objects=20, augment=False, skip_divided=True)
    clip = sample_clip(frames, labels, 256, settings, np.random.default_rng(0))
    j = clip.object_ids.index(mother)
    assert clip.unscored[:, j].tolist() == [False, False, True, True]
    assert sample_clip(frames, labels, 256, replace(settings, skip_divided=False), np.random.default_rng(0)).unscored \
        is None
    model = init_model(micro_config(), seed=0).eval()
    plan = ClipPlan([0], {0: "mask"})

    def presence(unscored):
        with torch.no_grad():
            res = unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(), torch.Generator().manual_seed(0),
                              np.random.default_rng(0), ptr_frames=16, unscored=unscored)
        return float(res.loss.presence)

    assert presence(clip.unscored) < presence(None)
    cells = SyntheticCells(num_videos=4, num_frames=6, size=(64, 64))
    trainer = Trainer(init_model(micro_config(), seed=0), cells,
                      replace(_small_settings(2), absent_weight=4.0,
                              clip=replace(_small_settings(2).clip, skip_divided=True, image_prob=0.0)))
    assert trainer.run() and all(np.isfinite(m["loss"]) for m in trainer.history)


def test_training_steps_with_the_instance_loss_run_and_report_it():
    hooks = {"instance": InstanceGroupingLoss()}
    settings = replace(_small_settings(2), extra_losses=(("instance", 1.0, 0),))
    trainer = Trainer(init_model(micro_config(), seed=0), SyntheticCells(num_videos=3, num_frames=2, size=(64, 64)),
                      settings, extra_losses=hooks)
    assert trainer.run()
    assert all(np.isfinite(m["instance"]) and m["instance"] > 0 for m in trainer.history)
    # a warm-up-only instance loss: gone from the second step on
    settings = replace(_small_settings(3), extra_losses=(("instance", 1.0, 1),))
    trainer = Trainer(init_model(micro_config(), seed=0), SyntheticCells(num_videos=3, num_frames=2, size=(64, 64)),
                      settings, extra_losses=hooks)
    assert trainer.run()
    assert trainer.history[0]["instance"] > 0 and [m["instance"] for m in trainer.history[1:]] == [0.0, 0.0]


class _Counting(ClipLoss):
    """Counts the hook calls of each clip and returns a loss at each: the click target's mean."""

    uses_labels = True

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.labels_seen: list[bool] = []

    def begin(self, model) -> None:
        self.calls.append("begin")

    def features(self, feats, labels):
        self.calls.append("features")
        self.labels_seen.append(labels is not None)
        return feats.embed.float().mean() * 0

    def before_prompt(self, kind) -> None:
        self.calls.append(f"before {kind}")

    def after_prompt(self, kind, target):
        self.calls.append(f"after {kind}")
        return target.float().mean() if kind == "click" else None

    def end(self) -> None:
        self.calls.append("end")


def test_extra_losses_are_called_around_each_prompt_and_weighted_by_the_settings():
    model = init_model(micro_config(), seed=0).eval()
    clip = _tiny_clip()
    plan = ClipPlan([0, 2], {0: "click", 2: "box"}, correct=[0], num_corrections=2)
    hook = _Counting()
    with torch.no_grad():
        res = unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(prob_correct_from_gt=0.0),
                          torch.Generator().manual_seed(0), np.random.default_rng(0), ptr_frames=16,
                          labels=clip.labels, extra_losses={"count": hook})
        plain = unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(prob_correct_from_gt=0.0),
                            torch.Generator().manual_seed(0), np.random.default_rng(0), ptr_frames=16)
    # prompted frames first; a tracked frame's decoder call is wrapped too (kind None); corrections are not
    assert hook.calls == ["begin", "features", "before click", "after click", "before box", "after box",
                          "before None", "after None", "end"]
    assert hook.labels_seen == [True]
    assert float(res.extra["count"]) == pytest.approx(float(clip.gt[0].float().mean()))  # the click frame only
    assert float(res.loss.total) == float(plain.loss.total) and plain.extra == {}  # hooks only observe

    # the trainer weighs the loss as the settings say, decaying to 0, and reports it by name
    data = SyntheticCells(num_videos=3, num_frames=2, size=(64, 64))
    settings = replace(_small_settings(3), extra_losses=(("count", 2.0, 2),))
    with pytest.raises(ValueError, match="extra losses that were not given: count"):
        Trainer(init_model(micro_config(), seed=0), data, settings)
    hook = _Counting()
    trainer = Trainer(init_model(micro_config(), seed=0), data, settings, extra_losses={"count": hook})
    assert trainer.run()
    assert hook.calls.count("begin") == 2 and hook.calls[-1] == "end"  # not computed at weight 0 (step 2)
    assert trainer.history[2]["count"] == 0.0
    from sam2_plugins.train.loop import extra_loss_weight

    assert [extra_loss_weight(t, 2.0, 2) for t in range(3)] == [2.0, 1.0, 0.0]
    assert [extra_loss_weight(t, 2.0, 0) for t in range(3)] == [2.0, 2.0, 2.0]


def test_settings_recorded_with_flat_warm_up_loss_fields_read_as_extra_losses():
    """Records and checkpoints of the micro recipe's runs name its two warm-up losses' weights as
    four flat fields; they read back as the same run."""
    flat = {k: v for k, v in ms.micro_settings(5, 0, warmup=2).to_dict().items() if k != "extra_losses"}
    flat.update(attn_aux_weight=1.0, attn_aux_steps=2, instance_aux_weight=1.0, instance_aux_steps=2)
    assert TrainSettings.from_dict(flat) == ms.micro_settings(5, 0, warmup=2)
    flat.update(attn_aux_weight=1.0, attn_aux_steps=0, instance_aux_weight=1.0, instance_aux_steps=0)
    assert TrainSettings.from_dict(flat).extra_losses == (("instance", 1.0, 0),)  # attention: off; instance: constant
    flat.update(attn_aux_weight=0.0, instance_aux_weight=0.0)
    assert TrainSettings.from_dict(flat).extra_losses == ()


def test_pan_augmentation_slides_the_crop_window_across_the_clip():
    frames = np.zeros((6, 200, 200, 3), np.float32)
    labels = np.zeros((6, 200, 200), np.int32)
    labels[:, 90:110, 90:110] = 1  # a static square in a static video
    frames[labels > 0] = 1.0
    settings = ClipSettings(clip_len=6, max_objects=1, max_zoom=1.6)

    def steps(pan: float) -> list[float]:
        out = []
        for seed in range(12):
            clip = sample_clip(frames, labels, 128, replace(settings, pan_prob=pan), np.random.default_rng(seed))
            ys, xs = zip(*(np.argwhere(m[0, 0].numpy()).mean(0) for m in clip.gt))
            out.append(float(np.hypot(np.diff(ys), np.diff(xs)).max()))
        return out

    assert max(steps(0.0)) < 0.5  # without pan the square stays put
    panned = steps(1.0)
    assert max(panned) > 3.0 and sum(v > 1.0 for v in panned) >= 3, panned


def test_frame_strides_speed_up_motion_and_fit_the_video():
    # a square moving 2 px per frame: a clip with stride k sees it move 2k px per frame
    frames = np.zeros((20, 64, 96, 3), np.float32)
    labels = np.zeros((20, 64, 96), np.int32)
    for t in range(20):
        labels[t, 20:30, 10 + 2 * t : 20 + 2 * t] = 1
    frames[labels > 0] = 1.0
    settings = ClipSettings(clip_len=6, max_objects=1, augment=False)

    def speeds(max_stride: int, total: int = 20) -> set[float]:
        out = set()
        for seed in range(30):
            clip = sample_clip(frames[:total], labels[:total], 96, replace(settings, max_stride=max_stride),
                               np.random.default_rng(seed))
            assert clip.gt.shape[0] == 6
            xs = [float(np.argwhere(m[0, 0].numpy())[:, 1].mean()) for m in clip.gt]
            out.add(round(float(np.diff(xs).mean()) / 2.0))  # px per frame / 2 px -> stride
        return out

    assert speeds(1) == {1}
    assert speeds(3) == {1, 2, 3}
    assert speeds(3, total=11) == {1, 2}  # a stride of 3 needs 16 frames: only 1 and 2 fit


def test_training_after_tracking_with_the_same_model():
    """Fine-tuning a model that already tracked a video (inference-mode caches) trains normally."""
    model = init_model(micro_config(), seed=0)
    clip = _tiny_clip()
    frames = (clip.pixels.permute(0, 2, 3, 1).numpy() * 0.2 + 0.5).clip(0, 1)
    with Sam2(model).open_video(frames) as session:
        session.add_points(0, 1, [[128, 128]], [1])
        assert len(list(session.propagate())) == 3
    model.train()
    plan = ClipPlan([0], {0: "click"}, correct=[], num_corrections=0)
    res = unroll_clip(model, clip.pixels, clip.gt, plan, PromptSettings(), torch.Generator().manual_seed(1),
                      np.random.default_rng(0), ptr_frames=16)
    res.loss.total.backward()
    grads = [p.grad for p in model.memory_attention.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def _small_settings(steps: int) -> TrainSettings:
    return TrainSettings(
        steps=steps, lr=1e-3, warmup_steps=1, grad_clip=1.0, autocast=False, checkpoint_every=2, seed=7,
        clip=ClipSettings(clip_len=3, max_objects=2, image_prob=0.3, image_max_objects=2),
        prompts=PromptSettings(num_correction_points=1, max_corrected_frames=2),
    )


def test_steps_whose_frames_all_get_their_gt_mask_do_not_stop_training():
    # GT-mask prompts on every frame of a 2-frame clip leave nothing to learn; the run goes on
    settings = replace(_small_settings(8), clip=ClipSettings(clip_len=2, max_objects=1),
                       prompts=PromptSettings(prob_points=0.0, max_init_cond_frames=2))
    trainer = Trainer(init_model(micro_config(), seed=0), SyntheticCells(num_videos=3, num_frames=2, size=(64, 64)),
                      settings)
    assert trainer.run()
    assert trainer.step == 8 and all(np.isfinite(m["loss"]) for m in trainer.history)


def test_resume_continues_at_the_same_step_with_the_same_loss(tmp_path):
    data = SyntheticCells(num_videos=50, num_frames=4, size=(64, 96))
    ckpt = tmp_path / "run.ckpt"
    first = Trainer(init_model(micro_config(), seed=0), data, _small_settings(4), checkpoint=ckpt)
    assert first.run(cancel=lambda: first.step >= 2) is False  # cancelled after 2 steps: checkpoint saved
    assert first.step == 2 and ckpt.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["run.ckpt"]  # atomic write left no temporary file
    expected = first.train_step()["loss"]

    resumed = Trainer(init_model(micro_config(), seed=1), data, _small_settings(4), checkpoint=ckpt)
    resumed.load_checkpoint()
    assert resumed.step == 2
    assert resumed.train_step()["loss"] == expected
    assert resumed.step == 3
    with pytest.raises(ValueError, match="different model config"):
        other = Trainer(load_model(MICRO_WEIGHTS, config=MICRO_CONFIG, device="cpu").network, data, _small_settings(4),
                        checkpoint=ckpt)
        other.load_checkpoint()


def test_the_trainers_optimiser_gives_the_weights_of_adamws_per_parameter_loop():
    """The shipped weights reproduce only while the optimiser rounds as the recipe's run did (AdamW's
    per-parameter loop); the trainer's faster foreach update must compute the same floats."""
    from sam2_plugins.train.loop import _param_groups

    data = SyntheticCells(num_videos=20, num_frames=4, size=(64, 96))
    settings = replace(_small_settings(3), weight_decay=0.1)
    runs = []
    for foreach in (None, False):  # None: the trainer's own optimiser
        trainer = Trainer(init_model(micro_config(), seed=0), data, settings)
        if foreach is False:
            trainer.optimizer = torch.optim.AdamW(_param_groups(trainer.model, settings), lr=settings.lr,
                                                  betas=(0.9, 0.999), foreach=False)
        for _ in range(3):
            trainer.train_step()
        runs.append(trainer.model.state_dict())
    ours, loop = runs
    start = init_model(micro_config(), seed=0).state_dict()
    changed = [k for k in ours if not torch.equal(ours[k], start[k])]
    assert len(changed) > 100  # the steps trained most tensors
    assert all(torch.equal(ours[k], loop[k]) for k in ours)


def test_a_checkpoint_records_its_data_and_refuses_other_data(tmp_path):
    """A run resumed on other data (here: movies with handoffs) would give weights of no recipe."""
    from sam2_plugins.train.loop import checkpoint_record

    note = ms.polish_data_note(1.0)
    data = ms.micro_dataset(note["handoff_movies"])
    ckpt = tmp_path / "run.ckpt"
    first = Trainer(init_model(micro_config(), seed=0), data, _small_settings(1), checkpoint=ckpt, data_note=note)
    assert first.run() and checkpoint_record(ckpt) == (_small_settings(1), note)
    Trainer(init_model(micro_config(), seed=0), data, _small_settings(1), checkpoint=ckpt,
            data_note=dict(note)).load_checkpoint()  # the same note resumes
    for other in (None, ms.polish_data_note(0.5)):
        with pytest.raises(ValueError, match="trained on other data"):
            Trainer(init_model(micro_config(), seed=0), data, _small_settings(1), checkpoint=ckpt,
                    data_note=other).load_checkpoint()
        with pytest.raises(ms.RecipeError, match="--handoff-movies"):  # the recipe says so before it starts
            ms.check_resumable(ckpt, _small_settings(1), other)
    with pytest.raises(ms.RecipeError, match="share of the polish's cell movies"):
        ms.polish_data_note(1.5)


def _weights(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_clips_drawn_by_data_processes_train_the_same_model_and_resume_exactly(tmp_path):
    # per-step clips: each clip has its own seed, so drawing them ahead in 0, 1 or 2 background
    # processes gives the same run, and a resumed run draws the clips an uninterrupted one would
    data = SyntheticCells(num_videos=50, num_frames=4, size=(64, 96))
    settings = replace(_small_settings(4), per_step_clips=True)
    runs = {}
    for workers in (0, 1, 2):
        trainer = Trainer(init_model(micro_config(), seed=0), data, settings, data_workers=workers)
        assert trainer.run()
        runs[workers] = _weights(trainer)
        assert not multiprocessing.active_children()  # the data processes stopped with the run
    for workers in (1, 2):
        assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[workers])), workers
    other_seed = Trainer(init_model(micro_config(), seed=0), data, replace(settings, seed=8), data_workers=1)
    other_seed.run()
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], _weights(other_seed)))  # the clips do change

    ckpt = tmp_path / "run.ckpt"
    first = Trainer(init_model(micro_config(), seed=0), data, settings, checkpoint=ckpt, data_workers=1)
    assert first.run(cancel=lambda: first.step >= 2) is False
    resumed = Trainer(init_model(micro_config(), seed=1), data, settings, checkpoint=ckpt, data_workers=2)
    resumed.load_checkpoint()
    assert resumed.run()
    assert all(torch.equal(a, b) for a, b in zip(runs[0], _weights(resumed)))


def test_data_processes_report_a_clip_that_cannot_be_drawn_and_need_per_step_clips():
    data = SyntheticCells(num_videos=3, num_frames=2, size=(64, 64))
    with pytest.raises(ValueError, match="per_step_clips"):
        Trainer(init_model(micro_config(), seed=0), data, _small_settings(2), data_workers=1)
    # no object is ever big enough: the data process fails, and the trainer says why
    settings = replace(_small_settings(2), per_step_clips=True, clip=ClipSettings(min_object_pixels=10**9))
    trainer = Trainer(init_model(micro_config(), seed=0), data, settings, data_workers=1)
    with pytest.raises(RuntimeError, match="(?s)in a data process.*no clip with a visible object"):
        trainer.run()
    assert trainer.step == 0 and not multiprocessing.active_children()


def _data_parallel_worker(rank: int, world_size: int, out: Path, steps: int, mode: str = "full") -> None:
    """Trains in a process group ("full", "cancel" after 2 steps, or "resume" from out/run.ckpt);
    writes this rank's weights and per-step losses to out/rank{rank}.pt."""
    data = SyntheticCells(num_videos=50, num_frames=4, size=(64, 96))
    trainer = Trainer(init_model(micro_config(), seed=rank), data, _small_settings(steps),  # ranks differ at init
                      checkpoint=out / "run.ckpt")
    if mode == "resume":
        trainer.load_checkpoint()
    trainer.run(cancel=(lambda: trainer.step >= 2) if mode == "cancel" else None)
    torch.save({"model": trainer.model.state_dict(), "losses": [h["loss"] for h in trainer.history]},
               out / f"rank{rank}.pt")


def test_two_worker_processes_train_one_model_on_both_workers_clips(tmp_path):
    from sam2_plugins.train.parallel import run_workers

    runs = {name: tmp_path / name for name in ("two", "one", "cancelled")}
    for folder in runs.values():
        folder.mkdir()
    run_workers(2, _data_parallel_worker, runs["two"], 3)
    r0, r1 = (torch.load(runs["two"] / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])  # one model on both
    assert r0["losses"][0] != r1["losses"][0]  # ... trained on different clips
    run_workers(1, _data_parallel_worker, runs["one"], 3)
    alone = torch.load(runs["one"] / "rank0.pt", weights_only=True)
    assert alone["losses"][0] == r0["losses"][0]  # rank 0 draws the single-process clips ...
    assert not all(torch.equal(alone["model"][k], r0["model"][k]) for k in r0["model"])  # ... rank 1's count too

    run_workers(2, _data_parallel_worker, runs["cancelled"], 3, "cancel")  # stops after 2 steps, checkpointed
    run_workers(2, _data_parallel_worker, runs["cancelled"], 3, "resume")
    for rank in (0, 1):  # the resumed step is the uninterrupted run's third step, on both ranks
        resumed = torch.load(runs["cancelled"] / f"rank{rank}.pt", weights_only=True)
        full = torch.load(runs["two"] / f"rank{rank}.pt", weights_only=True)
        assert resumed["losses"] == full["losses"][2:]
        assert all(torch.equal(resumed["model"][k], full["model"][k]) for k in full["model"])
    single = Trainer(init_model(micro_config(), seed=0), SyntheticCells(num_videos=50, num_frames=4, size=(64, 96)),
                     _small_settings(4), checkpoint=runs["cancelled"] / "run.ckpt")
    with pytest.raises(ValueError, match="written by 2 training process"):
        single.load_checkpoint()


def _write_layouts(root: Path, frames: np.ndarray, labels: np.ndarray) -> None:
    import tifffile
    from PIL import Image

    per_frame = root / "movie_a"
    (per_frame / "images").mkdir(parents=True)
    (per_frame / "labels").mkdir()
    for t in range(len(frames)):  # t2 sorts before t10: natural order
        Image.fromarray(frames[t]).save(per_frame / "images" / f"t{t}.png")
        tifffile.imwrite(per_frame / "labels" / f"t{t}.tif", labels[t].astype(np.uint16))
    stack = root / "movie_b"
    stack.mkdir()
    tifffile.imwrite(stack / "images.tif", frames.astype(np.uint16) * 200, photometric="minisblack")  # 16-bit
    tifffile.imwrite(stack / "labels.tif", labels.astype(np.uint16), photometric="minisblack")


def test_folder_dataset_reads_both_layouts(tmp_path):
    from sam2_plugins.synthetic import make_timelapse

    tl = make_timelapse(5, num_frames=12, height=48, width=64, num_cells=3)
    _write_layouts(tmp_path, tl.frames, tl.labels)
    ds = FolderDataset(tmp_path)
    assert len(ds) == 2
    for i in range(2):
        frames, labels = ds[i]
        assert len(frames) == len(labels) == 12
        got = frames[[0, 11]]
        assert got.shape == (2, 48, 64, 3) and got.dtype == np.float32 and 0 <= got.min() and got.max() <= 1
        np.testing.assert_array_equal(labels[[0, 11]], tl.labels[[0, 11]])
    np.testing.assert_allclose(ds[0][0][[10]][0, ..., 0], tl.frames[10] / 255.0, atol=1e-6)
    clip = sample_clip(*ds[1], 256, ClipSettings(clip_len=4), np.random.default_rng(0))
    assert clip is not None and clip.pixels.shape == (4, 3, 256, 256)
    (tmp_path / "movie_a" / "labels" / "t11.tif").unlink()
    with pytest.raises(ValueError, match="12 image frames but 11 label frames"):
        FolderDataset(tmp_path)
    with pytest.raises(ValueError, match="no annotated video"):
        FolderDataset(tmp_path / "movie_a" / "labels")


def test_finetune_cli_writes_a_loadable_model_and_resumes(tmp_path):
    from sam2_plugins.synthetic import make_timelapse
    from sam2_plugins.train import cli

    tl = make_timelapse(6, num_frames=4, height=64, width=64, num_cells=3)
    _write_layouts(tmp_path / "data", tl.frames, tl.labels)
    parser = cli.add_finetune_arguments(argparse.ArgumentParser())
    out = tmp_path / "tuned.safetensors"
    base = ["--data", str(tmp_path / "data"), "--init", str(MICRO_WEIGHTS), "--init-config", str(MICRO_CONFIG),
            "--out", str(out), "--steps", "2", "--skip-divided", "--exit-clips", "0.5",
            "--clip-len", "2", "--max-objects", "1", "--batch", "2",
            "--max-stride", "2", "--correction-points", "1", "--device", "cpu", "--no-autocast"]
    assert cli.run_finetune(parser.parse_args(base)) == 0
    cfg_path = tmp_path / "tuned.config.json"
    assert out.is_file() and cfg_path.is_file()
    assert json.loads(cfg_path.read_text())["training"]["steps"] == 2
    clip_record = json.loads(cfg_path.read_text())["training"]["settings"]["clip"]
    assert clip_record["videos_per_step"] == 2 and clip_record["max_stride"] == 2 and clip_record["skip_divided"]
    assert clip_record["exit_prob"] == 0.5
    model = load_model(out, config=cfg_path, device="cpu")
    assert model.config == parse_config(MICRO_CONFIG)
    assert (tmp_path / "tuned.ckpt").is_file()
    assert cli.run_finetune(parser.parse_args(base[:-13] + ["--steps", "3", "--resume", "--clip-len", "2",
                                                           "--max-objects", "1", "--correction-points", "1",
                                                           "--device", "cpu", "--no-autocast",
                                                           "--data-workers", "1"])) == 0  # files read in a child
    assert json.loads(cfg_path.read_text())["training"]["steps"] == 3
    assert cli.run_finetune(parser.parse_args(["--data", str(tmp_path / "missing"), "--out", str(out)])) == 2


def test_finetune_uses_bf16_autocast_only_where_the_cpu_runs_it_faster(tmp_path, monkeypatch):
    from sam2_plugins import api
    from sam2_plugins.synthetic import make_timelapse
    from sam2_plugins.train.finetune import finetune

    tl = make_timelapse(7, num_frames=3, height=64, width=64, num_cells=2)
    _write_layouts(tmp_path / "data", tl.frames, tl.labels)
    for prefers in (False, True):
        monkeypatch.setattr(api, "cpu_prefers_bf16", lambda prefers=prefers: prefers)
        out = tmp_path / f"tuned-{prefers}.safetensors"
        finetune(tmp_path / "data", MICRO_WEIGHTS, out, 1, init_config=MICRO_CONFIG, clip_len=2, max_objects=1,
                 correction_points=1, device="cpu")
        record = json.loads(out.with_name(f"tuned-{prefers}.config.json").read_text())["training"]
        assert record["settings"]["autocast"] is prefers


def test_learning_rate_schedule_starts_again_at_each_restart():
    from sam2_plugins.train import lr_at

    plain = TrainSettings(steps=100, lr=1.0, warmup_steps=5, min_lr_ratio=0.1)
    again = replace(plain, lr_restarts=(60,))
    assert [lr_at(t, again) for t in range(60)] == [lr_at(t, replace(plain, steps=60)) for t in range(60)]
    assert lr_at(59, again) < 0.11 < lr_at(60, plain) < 0.5  # decayed by the restart; the plain one is not
    assert lr_at(60, again) == pytest.approx(0.2) and lr_at(64, again) == pytest.approx(1.0)  # its warm-up
    assert lr_at(99, again) < 0.11 and lr_at(99, plain) < 0.11
    assert TrainSettings.from_dict(json.loads(json.dumps(again.to_dict()))) == again
