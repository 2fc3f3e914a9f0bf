"""Training over time: clips placed around occlusions, the trainer's thread schedule, and runs of
the micro recipe that share their image-only warm-up (real engine, no mocks)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sam2_plugins.train import ClipSettings, SyntheticCells, Trainer, TrainSettings, sample_clip
from sam2_plugins.train.events import departures, hidings
from sam2_plugins.train.feed import draw_indexed_clip

sys.path.insert(0, str(Path(__file__).parents[1] / "recipes"))
import micro_synthetic as ms  # noqa: E402
from micro_synthetic import init_model, micro_config  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


def _passing_behind(hidden: range, total: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """A 16-px square (id 1) sliding 3 px a frame under a static bar (id 2) that hides more than
    half of it on the ``hidden`` frames only."""
    labels = np.zeros((total, 64, 128), np.int32)
    for t in range(total):
        labels[t, 24:40, 4 + 3 * t : 20 + 3 * t] = 1
    labels[:, 16:48, 10 + 3 * hidden[0] : 13 + 3 * hidden[-1]] = 2  # square visible: 9, 6 ... 7, 10 columns
    grey = np.where(labels == 2, 0.8, np.where(labels == 1, 0.4, 0.1)).astype(np.float32)
    return np.repeat(grey[..., None], 3, -1), labels


def _hidden_then_back(clip, full: float = 16 * 32) -> bool:
    """Whether the clip shows the square (``full`` pixels at 128 x 128) over half visible on its first
    frame, then less than half, then over half again."""
    if 1 not in clip.object_ids:  # hidden on the clip's first frame: not prompted
        return False
    shown = (clip.gt[:, clip.object_ids.index(1), 0].flatten(1).sum(-1) >= 0.5 * full).tolist()  # (T,)
    return shown[0] and False in shown and True in shown[shown.index(False):]


def test_hidings_find_when_an_object_goes_behind_another_and_comes_back():
    _, labels = _passing_behind(range(10, 15))
    assert hidings(labels) == [(10, 15, 1)]  # the bar never hides
    labels[25:] = np.where(labels[25:] == 1, 0, labels[25:])  # the square leaves at frame 25: no return
    assert hidings(labels) == [(10, 15, 1), (25, None, 1)]


@pytest.mark.parametrize("hidden", [range(10, 15), range(10, 18)])
def test_occlusion_clips_show_the_object_hide_and_come_back(hidden):
    """With ``occlusion_prob`` a clip shows the object before, behind and after the occluder, taking
    every k-th frame when the occlusion is longer than the clip; plain clips mostly miss it."""
    frames, labels = _passing_behind(hidden)
    settings = ClipSettings(clip_len=6, max_objects=2, augment=False)

    def shown(prob: float) -> int:
        return sum(_hidden_then_back(sample_clip(frames, labels, 128, replace(settings, occlusion_prob=prob),
                                                 np.random.default_rng(seed))) for seed in range(20))

    assert shown(1.0) == 20
    assert shown(0.0) == 0  # 6 consecutive frames cannot hold the square before, behind and after the bar
    # a video whose objects never hide gets ordinary clips
    still = np.repeat(labels[:1], 30, 0)
    clip = sample_clip(frames, still, 128, replace(settings, occlusion_prob=1.0), np.random.default_rng(0))
    assert clip is not None and clip.gt.shape[0] == 6


def _leaving(total: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """A 16-px square (id 1) sliding 8 px a frame out of the right edge (gone from frame 11), a
    square that stays (id 2), one that vanishes inside the frame (id 3, from frame 6) and one at
    the left edge that divides into ids 5 and 6 (id 4, from frame 9)."""
    labels = np.zeros((total, 64, 128), np.int32)
    for t in range(total):
        labels[t, 4:20, 40 + 8 * t : 56 + 8 * t] = 1
    labels[:, 40:56, 40:56] = 2
    labels[:6, 40:56, 80:96] = 3
    labels[:9, 30:46, 0:16] = 4
    labels[9:, 30:38, 0:16], labels[9:, 38:46, 0:16] = 5, 6
    grey = np.where(labels > 0, 0.3 + 0.1 * labels, 0.1).astype(np.float32)
    return np.repeat(grey[..., None], 3, -1), labels


def test_departures_are_objects_leaving_the_view_for_good_not_hidden_or_divided():
    _, labels = _leaving()
    assert departures(labels) == [(11, 1)]  # 40 + 8 * 11 = 128: gone from frame 11
    labels[15:] = np.where(labels[15:] == 2, 0, labels[15:])  # the still square vanishes inside the frame
    assert departures(labels) == [(11, 1)]


def test_departure_clips_track_the_object_that_leaves_until_it_is_gone():
    """With ``exit_prob`` a clip tracks the leaving object and ends 2-3 frames after it is gone; a
    video without a departure gives no such clip, and draws go on to the next video."""
    frames, labels = _leaving()
    settings = ClipSettings(clip_len=6, max_objects=1, augment=False)
    for seed in range(10):
        clip = sample_clip(frames, labels, 128, settings, np.random.default_rng(seed), departure=True)
        assert clip.object_ids == [1]  # the only object drawn, chosen out of four
        shown = (clip.gt[:, 0, 0].flatten(1).sum(-1) > 0).tolist()  # (T,)
        assert shown[0] and shown[-2:] == [False, False] and shown.count(False) in (2, 3)
        assert shown == sorted(shown, reverse=True)  # gone for good
    still = np.repeat(labels[:1], 20, 0)
    assert sample_clip(frames, still, 128, settings, np.random.default_rng(0), departure=True) is None
    plain = [sample_clip(frames, labels, 128, settings, np.random.default_rng(seed)) for seed in range(10)]
    assert any(c.object_ids != [1] for c in plain)


def test_thread_schedule_sets_the_trainer_threads_by_step_also_after_a_resume(tmp_path):
    """The recorded thread count of each step holds after a resume; the run's time is kept too."""
    settings = TrainSettings(steps=3, lr=1e-3, warmup_steps=1, autocast=False, checkpoint_every=1, seed=3,
                             thread_schedule=((0, 1), (2, 2)),
                             clip=ClipSettings(clip_len=1, max_objects=1, augment=False))
    data = SyntheticCells(num_videos=4, num_frames=2, size=(64, 64))
    seen: list[int] = []
    ckpt = tmp_path / "run.ckpt"
    trainer = Trainer(init_model(micro_config(), 0), data, settings, checkpoint=ckpt)  # one thread: the fixture
    assert trainer.run(lambda *_: seen.append(torch.get_num_threads()), cancel=lambda: trainer.step >= 2) is False
    assert seen == [1, 1] and torch.get_num_threads() == 1
    resumed = Trainer(init_model(micro_config(), 0), data, settings, checkpoint=ckpt)
    resumed.load_checkpoint()
    assert resumed.run(lambda *_: seen.append(torch.get_num_threads()))
    assert seen == [1, 1, 2]
    assert torch.get_num_threads() == 1  # the process's own setting is given back
    assert resumed.seconds > trainer.seconds > 0  # the run's time adds up over resumes
    assert TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings


def test_recipe_runs_that_differ_after_the_warm_up_share_it():
    """Options that act once video clips join (occlusion clips, trainer threads, the presence weight of
    absent objects, divided mothers left out, the restart's peak, the single-frame share, the clips'
    length) leave the image-only warm-up as it is: such runs can start from one warm-up's checkpoint."""
    runs = {0.0: ms.micro_settings(5, 0, warmup=2, occlusion_clips=0.0, absent_weight=1.0, skip_divided=False,
                                   restart_lr_scale=1.0, video_image_share=0.2),
            1.0: ms.micro_settings(5, 0, warmup=2, occlusion_clips=1.0, absent_weight=4.0, skip_divided=True,
                                   restart_lr_scale=0.3, video_image_share=0.5, clip_len=6)}
    assert runs[1.0].absent_weight == 4.0 and runs[1.0].clip.skip_divided and not runs[0.0].clip.skip_divided
    assert (runs[0.0].restart_lr_scale, runs[1.0].restart_lr_scale) == (1.0, 0.3)
    assert all(s.thread_schedule == ((0, 1), (2, 2)) for s in runs.values())
    weights = {}
    for p, settings in runs.items():
        trainer = Trainer(ms.init_model(ms.micro_config(), 0), ms.micro_dataset(), settings,
                          extra_losses=ms.extra_losses())
        for _ in range(2):
            trainer.train_step()
        weights[p] = [t.detach().clone() for t in trainer.model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights[0.0], weights[1.0]))
    later = [[draw_indexed_clip(ms.micro_dataset(), 64, s, 0, i).pixels for i in range(2, 12)] for s in runs.values()]
    assert any(not (a.shape == b.shape and torch.equal(a, b)) for a, b in zip(*later))
    # video clips, the polish's too, have the run's length
    assert [max(len(p) for p in clips) for clips in later] == [8, 6]
    assert ms.polish_settings(runs[1.0], 2).clip.clip_len == 6
    assert ms.polish_settings(runs[1.0], 2, clip_len=8).clip.clip_len == 8  # the polish's own length
    with pytest.raises(ms.RecipeError, match="occlusion-clips"):
        ms.micro_settings(5, 0, warmup=2, occlusion_clips=1.5)
    with pytest.raises(ms.RecipeError, match="absent-weight"):
        ms.micro_settings(5, 0, warmup=2, absent_weight=0.0)
    with pytest.raises(ms.RecipeError, match="restart-lr-scale"):
        ms.micro_settings(5, 0, warmup=2, restart_lr_scale=0.0)
    with pytest.raises(ms.RecipeError, match="video-image-share"):
        ms.micro_settings(5, 0, warmup=2, video_image_share=1.0)
    with pytest.raises(ms.RecipeError, match="clip-len"):
        ms.micro_settings(5, 0, warmup=2, clip_len=3)
    with pytest.raises(ms.RecipeError, match="polish-clip-len"):
        ms.polish_settings(runs[1.0], 2, clip_len=3)


def test_data_parallel_recipe_keeps_one_thread_a_core():
    """Two data-parallel processes on the recipe's two cores take one torch thread each, in the
    video phase and the polish too (two each would run four threads on two cores); one process
    keeps the shipped recipe's schedule."""
    one, two = ms.micro_settings(5, 0, warmup=2), ms.micro_settings(5, 0, warmup=2, workers=2)
    assert one.thread_schedule == ((0, 1), (2, 2)) and ms.polish_settings(one, 2).thread_schedule == ((0, 2),)
    assert two.thread_schedule == ((0, 1), (2, 1)) and ms.polish_settings(two, 2).thread_schedule == ((0, 1),)
    assert replace(two, thread_schedule=one.thread_schedule) == one  # nothing else differs
    with pytest.raises(ms.RecipeError, match="--workers"):
        ms.micro_settings(5, 0, warmup=2, workers=0)


def test_a_scaled_restart_lowers_only_the_parts_single_frames_trained(tmp_path):
    """With ``restart_lr_scale`` the restarted schedule peaks lower for the encoder, prompt encoder and
    decoder, while the memory (untouched by single frames) restarts at full height; runs without it
    keep the optimiser layout, and a resumed run keeps the scale."""
    settings = TrainSettings(steps=5, lr=1e-3, warmup_steps=1, lr_restarts=(2,), restart_lr_scale=0.25,
                             autocast=False, checkpoint_every=1, seed=3,
                             clip=ClipSettings(clip_len=1, max_objects=1, augment=False))
    data = SyntheticCells(num_videos=4, num_frames=2, size=(64, 64))
    ckpt = tmp_path / "run.ckpt"

    def lrs(trainer):  # the learning rate the decoder and the memory attention train with
        named = dict(trainer.model.named_parameters())
        out = []
        for name in ("sam_mask_decoder.iou_prediction_head.layers.0.weight",
                     "memory_attention.layers.0.self_attn.q_proj.weight"):
            out.append(next(g["lr"] for g in trainer.optimizer.param_groups
                            if any(p is named[name] for p in g["params"])))
        return out

    trainer = Trainer(init_model(micro_config(), 0), data, settings, checkpoint=ckpt)
    seen = []
    trainer.run(lambda *_: seen.append(lrs(trainer)), cancel=lambda: trainer.step >= 3)
    assert seen[0][0] == seen[0][1] and seen[1][0] == seen[1][1]  # before the restart: one schedule
    assert seen[2][0] == pytest.approx(0.25 * seen[2][1]) and seen[2][1] == pytest.approx(1e-3)
    resumed = Trainer(init_model(micro_config(), 0), data, settings, checkpoint=ckpt)
    resumed.load_checkpoint()
    resumed.run(lambda *_: seen.append(lrs(resumed)))
    assert all(dec == pytest.approx(0.25 * mem) for dec, mem in seen[3:]) and len(seen) == 5  # still scaled
    assert 0 < seen[4][1] < 1e-3  # and decaying
    plain = Trainer(init_model(micro_config(), 0), data, replace(settings, restart_lr_scale=1.0))
    assert len(plain.optimizer.param_groups) == 4  # (encoder or not) x (decayed or not), as before the option
    assert len(trainer.optimizer.param_groups) > 4
