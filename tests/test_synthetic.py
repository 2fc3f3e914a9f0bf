"""Tests for the seeded synthetic video generators (sam2_plugins.synthetic)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage as ndi

from sam2_plugins.synthetic import (
    SceneVideo,
    TimeLapse,
    make_scene_video,
    make_timelapse,
    make_timelapse_batch,
    percentile_stretch,
)

SEEDS = (0, 1, 2, 3)


@lru_cache(maxsize=None)
def timelapse(seed: int, style: str = "fluorescence", dtype: str = "uint8", **kw) -> TimeLapse:
    return make_timelapse(seed, style=style, dtype=dtype, **kw)


@lru_cache(maxsize=None)
def scene(seed: int) -> SceneVideo:
    return make_scene_video(seed)


def _touching_pairs(lab: np.ndarray) -> bool:
    """True if two different non-zero labels are 4-adjacent anywhere in (..., H, W)."""
    a, b = lab[..., :-1, :], lab[..., 1:, :]
    c, d = lab[..., :, :-1], lab[..., :, 1:]
    return bool(((a > 0) & (b > 0) & (a != b)).any() or ((c > 0) & (d > 0) & (c != d)).any())


def _on_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


# --------------------------------------------------------------------------- cells


def test_timelapse_shapes_and_dtypes():
    tl = timelapse(0)
    assert tl.frames.shape == (30, 256, 256) and tl.frames.dtype == np.uint8
    assert tl.labels.shape == tl.frames.shape and tl.labels.dtype == np.int32
    assert tl.num_frames == 30 and tl.style == "fluorescence" and tl.seed == 0
    assert set(tl.tracks) == set(tl.lineage) == set(np.unique(tl.labels)) - {0}
    assert sorted(tl.tracks) == list(range(1, len(tl.tracks) + 1))
    small = make_timelapse(4, num_frames=5, height=40, width=56, num_cells=3, style="phase")
    assert small.frames.shape == small.labels.shape == (5, 40, 56)


def test_timelapse_deterministic():
    a, b = make_timelapse(11, num_frames=12), make_timelapse(11, num_frames=12)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.lineage == b.lineage and a.tracks == b.tracks
    c = make_timelapse(12, num_frames=12)
    assert not np.array_equal(a.frames, c.frames)
    assert not np.array_equal(a.labels, c.labels)
    batch = make_timelapse_batch([11, 12], num_frames=12)
    np.testing.assert_array_equal(batch[0].frames, a.frames)
    np.testing.assert_array_equal(batch[1].labels, c.labels)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_fluorescence_labels_match_bright_cells(dtype):
    tl = timelapse(1, dtype=dtype)
    fg = tl.labels > 0
    inside = tl.frames[fg].astype(np.float64).mean()
    # compare with background away from the blurred cell edges
    far = ~ndi.binary_dilation(fg, iterations=3, structure=np.ones((1, 3, 3), bool))
    outside = tl.frames[far].astype(np.float64).mean()
    assert inside > 3.0 * outside
    # every cell of every frame is brighter than the local background around it
    for t in (0, 15, 29):
        for k in np.unique(tl.labels[t])[1:]:
            m = tl.labels[t] == k
            ring = ndi.binary_dilation(m, iterations=6) & ~ndi.binary_dilation(tl.labels[t] > 0, iterations=2)
            if ring.sum() > 20:
                assert tl.frames[t][m].mean() > 1.5 * tl.frames[t][ring].mean()


def test_uint16_realistic_range():
    tl = timelapse(1, dtype="uint16")
    assert tl.frames.dtype == np.uint16
    bg = np.median(tl.frames[tl.labels == 0])
    assert 300 < bg < 1000
    assert 10000 < tl.frames.max() < 40000
    shown = percentile_stretch(tl.frames)
    assert shown.dtype == np.uint8 and shown.max() == 255
    # same geometry as the uint8 rendering of the same seed
    np.testing.assert_array_equal(tl.labels, timelapse(1).labels)


def test_phase_cells_dark_with_bright_halo():
    tl = timelapse(2, style="phase")
    fg = tl.labels > 0
    f = tl.frames.astype(np.float64)
    halo = ndi.binary_dilation(fg, iterations=2, structure=np.ones((1, 3, 3), bool)) & ~fg
    far = ~ndi.binary_dilation(fg, iterations=8, structure=np.ones((1, 3, 3), bool))
    assert f[fg].mean() < 0.9 * f[far].mean()
    assert f[halo].mean() > 1.1 * f[far].mean()
    assert 60 < np.median(f[far]) < 200


@pytest.mark.parametrize("seed", SEEDS)
def test_tracks_are_contiguous_and_area_is_smooth(seed):
    tl = timelapse(seed, style="phase" if seed % 2 else "fluorescence")
    areas = np.stack([np.bincount(l.ravel(), minlength=len(tl.tracks) + 1) for l in tl.labels])
    for k, tr in tl.tracks.items():
        present = np.nonzero(areas[:, k])[0]
        assert present[0] == tr.first and present[-1] == tr.last
        assert len(present) == tr.last - tr.first + 1, f"track {k} has a gap"
        a = areas[tr.first : tr.last + 1, k].astype(float)
        both = (a[:-1] > 150) & (a[1:] > 150)
        ratio = a[1:][both] / a[:-1][both]
        assert ((ratio > 0.5) & (ratio < 2.0)).all(), (k, a)


@pytest.mark.parametrize("seed", SEEDS)
def test_divisions_and_lineage(seed):
    tl = timelapse(seed, style="phase" if seed % 2 else "fluorescence")
    children = tl.children()
    assert children, "expected at least one division"
    pts = tl.track_points()
    for mother, kids in children.items():
        assert len(kids) == 2
        mtr = tl.tracks[mother]
        for kid in kids:
            assert tl.lineage[kid] == mother and tl.tracks[kid].parent == mother
            assert tl.tracks[kid].first == mtr.last + 1
            assert not (tl.labels[: mtr.last + 1] == kid).any()
        assert not (tl.labels[mtr.last + 1 :] == mother).any()
        # daughters appear where the mother was
        m_xy = pts[(pts[:, 0] == mother) & (pts[:, 1] == mtr.last), 2:]
        for kid in kids:
            k_xy = pts[(pts[:, 0] == kid) & (pts[:, 1] == mtr.last + 1), 2:]
            assert np.hypot(*(k_xy - m_xy)[0]) < 40
    assert tl.napari_graph() == {k: [p] for k, p in tl.lineage.items() if p}
    lines = tl.ctc_man_track().splitlines()
    assert len(lines) == len(tl.tracks)
    assert all(len(line.split()) == 4 for line in lines)


@pytest.mark.parametrize("seed", SEEDS)
def test_some_cells_touch(seed):
    tl = timelapse(seed, style="phase" if seed % 2 else "fluorescence")
    assert _touching_pairs(tl.labels)


def test_touching_false_keeps_cells_apart():
    tl = make_timelapse(5, num_frames=15, num_cells=16, touching=False)
    assert not _touching_pairs(tl.labels)


@pytest.mark.parametrize("seed", SEEDS)
def test_cells_enter_and_leave(seed):
    tl = timelapse(seed, style="phase" if seed % 2 else "fluorescence")
    T = tl.num_frames
    entered = [
        tr for tr in tl.tracks.values()
        if tr.first > 0 and tr.parent == 0 and _on_border(tl.labels[tr.first] == tr.track_id)
    ]
    left = [
        tr for tr in tl.tracks.values()
        if tr.last < T - 1 and tr.track_id not in tl.children()
        and _on_border(tl.labels[tr.last] == tr.track_id)
    ]
    assert entered or left
    # a cell that is partly out of view is cropped: some label touches the border
    assert any(_on_border(l) for l in tl.labels)


def _newcomers_beside_departures(tl: TimeLapse, reach: float = 30.0) -> tuple[int, int]:
    """(departures, departures with a cell that entered later within `reach` px of the leaver's
    last footprint on its last frame)."""
    from sam2_plugins.train.events import departures

    found = []
    for gone, i in departures(tl.labels):
        last = tl.labels[gone - 1]
        dist = ndi.distance_transform_edt(last != i)
        newcomers = [tr.track_id for tr in tl.tracks.values() if 0 < tr.first < gone and tr.parent == 0]
        found.append(any((dist[last == j] < reach).any() for j in newcomers))
    return len(found), sum(found)


def test_handoffs_bring_a_newcomer_in_beside_each_leaver():
    plain, handoff = [0, 0], [0, 0]
    for seed in range(8):
        for tally, flag in ((plain, False), (handoff, True)):
            counts = _newcomers_beside_departures(make_timelapse(seed, num_frames=30, handoffs=flag))
            tally[0] += counts[0]
            tally[1] += counts[1]
    assert plain[0] >= 6 and handoff[0] >= 6  # cells leave in most movies either way
    assert handoff[1] >= 0.4 * handoff[0]
    assert handoff[1] >= 2 * max(plain[1], 1)
    # the option adds cells after all else is drawn: frame 0 of a movie is the same with or without it
    a, b = make_timelapse(5, num_frames=4), make_timelapse(5, num_frames=4, handoffs=True)
    np.testing.assert_array_equal(a.labels[0], b.labels[0])


def test_no_enter_leave_no_divisions():
    tl = make_timelapse(3, num_frames=20, divisions=False, enter_leave=False)
    assert not tl.children()
    assert all(tr.first == 0 and tr.last == 19 for tr in tl.tracks.values())


def test_track_points():
    tl = timelapse(0)
    pts = tl.track_points()
    assert pts.shape[1] == 4
    n_obs = sum(tr.last - tr.first + 1 for tr in tl.tracks.values())
    assert len(pts) == n_obs
    k, t = int(pts[0, 0]), int(pts[0, 1])
    yy, xx = np.nonzero(tl.labels[t] == k)
    np.testing.assert_allclose(pts[0, 2:], [yy.mean(), xx.mean()])


def test_timelapse_options_and_validation():
    clean = make_timelapse(6, num_frames=6, noise=0, blur=0, drift=0)
    noisy = make_timelapse(6, num_frames=6)
    np.testing.assert_array_equal(clean.labels, noisy.labels)
    assert clean.frames[clean.labels == 0].std() < noisy.frames[noisy.labels == 0].std()
    assert len(make_timelapse(0, num_frames=1).tracks) > 0
    assert make_timelapse(0, num_frames=4, num_cells=0, enter_leave=False).labels.max() == 0
    with pytest.raises(ValueError):
        make_timelapse(0, style="brightfield")
    with pytest.raises(ValueError):
        make_timelapse(0, dtype=np.float32)


# --------------------------------------------------------------------------- scenes


def test_scene_shapes_and_determinism():
    sv = scene(0)
    assert sv.frames.shape == (24, 192, 256, 3) and sv.frames.dtype == np.uint8
    assert sv.labels.shape == (24, 192, 256) and sv.labels.dtype == np.int32
    assert sorted(sv.depth_order) == [1, 2, 3]
    assert sv.amodal.shape == (24, 3, 192, 256)
    assert set(sv.kinds.values()) <= {"ellipse", "polygon", "star", "rounded_rect"}
    again = make_scene_video(0)
    np.testing.assert_array_equal(sv.frames, again.frames)
    np.testing.assert_array_equal(sv.labels, again.labels)
    assert sv.depth_order == again.depth_order
    assert not np.array_equal(sv.frames, scene(1).frames)


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_scene_labels_are_visible_parts_in_depth_order(seed):
    sv = scene(seed)
    expected = np.zeros_like(sv.labels)
    for oid in sv.depth_order:  # back to front: later objects overwrite
        expected[sv.amodal[:, oid - 1]] = oid
    np.testing.assert_array_equal(sv.labels, expected)


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_scene_occlusion_shrinks_visible_area(seed):
    sv = scene(seed)
    visible = sv.visible_area().astype(float)
    full = sv.amodal.sum(axis=(2, 3)).astype(float)
    rank = {oid: r for r, oid in enumerate(sv.depth_order)}
    occluded = False
    for t in range(sv.num_frames):
        for oid in sv.depth_order:
            if full[t, oid - 1] > 0 and visible[t, oid - 1] < 0.8 * full[t, oid - 1]:
                hidden = sv.amodal[t, oid - 1] & (sv.labels[t] != oid)
                occluders = set(np.unique(sv.labels[t][hidden])) - {0}
                assert occluders and all(rank[o] > rank[oid] for o in occluders)
                occluded = True
    assert occluded
    # the visible fraction of some object drops substantially while another passes over it
    ratio = visible / np.maximum(full, 1)
    assert (ratio.max(axis=0) - ratio.min(axis=0) > 0.3).any()


def test_scene_objects_distinguishable_and_sometimes_cropped():
    cropped = False
    for seed in (0, 1, 2, 3):
        sv = scene(seed)
        bg = sv.frames[sv.labels == 0].reshape(-1, 3).astype(float).mean(0)
        means = []
        for oid in sv.depth_order:
            px = sv.frames[sv.labels == oid].reshape(-1, 3).astype(float)
            assert len(px) > 0
            means.append(px.mean(0))
            assert np.abs(px.mean(0) - bg).max() > 20
        cropped |= any(_on_border(sv.amodal[t, i]) for t in range(sv.num_frames) for i in range(3))
    assert cropped


def test_scene_edge_cases():
    assert make_scene_video(0, num_objects=0, num_frames=3).labels.max() == 0
    one = make_scene_video(0, num_objects=1, num_frames=3, height=48, width=64)
    assert one.frames.shape == (3, 48, 64, 3) and one.depth_order == [1]


def test_scene_frames_subset_renders_the_same_motion_and_masks():
    full = make_scene_video(3, num_frames=20)
    part = make_scene_video(3, num_frames=20, frames=[15, 2, 9])
    assert part.frames.shape == (3, *full.frames.shape[1:]) and part.amodal.shape[0] == 3
    assert np.array_equal(part.labels, full.labels[[15, 2, 9]])  # same objects in the same places
    assert np.array_equal(part.amodal, full.amodal[[15, 2, 9]])
    diff = np.abs(part.frames.astype(int) - full.frames[[15, 2, 9]])
    assert diff.mean() < 6 and diff.max() > 0  # same picture; only the pixel noise is drawn per frame
    again = make_scene_video(3, num_frames=20, frames=[9])
    assert np.array_equal(again.frames[0], part.frames[2])  # a frame looks the same whatever else is asked for
    with pytest.raises(ValueError, match="frames must lie in"):
        make_scene_video(3, num_frames=20, frames=[20])


def test_training_scenes_render_only_the_clip_and_slow_down_with_length():
    from sam2_plugins.train import SyntheticScenes

    frames, labels = SyntheticScenes(num_frames=(16, 40))[5]
    assert 16 <= len(frames) == len(labels) <= 40
    clip = frames[[4, 5, 6]]
    assert clip.shape[0] == 3 and clip.dtype == np.uint8 and labels[4].shape == clip.shape[1:3]

    def speed(num_frames: int) -> float:  # median centroid step of the objects, pixels per frame
        sv = make_scene_video(11, num_frames=num_frames)
        steps = [np.hypot(*np.subtract(*[np.argwhere(sv.amodal[t, k]).mean(0) for t in (i, i + 1)]))
                 for k in range(sv.amodal.shape[1]) for i in range(num_frames - 1)
                 if sv.amodal[i, k].any() and sv.amodal[i + 1, k].any()]
        return float(np.median(steps))

    assert speed(40) < 0.7 * speed(16)
