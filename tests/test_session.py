"""Video session behaviour a user relies on: editing, read-back, progress, cancel, bounded memory."""

import threading

import numpy as np
import pytest

from conftest import LOGIT_TOL


@pytest.fixture()
def frames(reference):
    return reference["frames"]


@pytest.fixture()
def disc(reference):
    return reference["inputs/last_frame_disc2_mask"]


def _run(session, **kw):
    return {r.frame_index: r for r in session.propagate(**kw)}


def test_objects_are_independent_and_batched(micro_model, frames):
    """Two objects tracked together give each the masks it gets alone; they share one batch per frame."""
    alone = micro_model.open_video(frames)
    alone.add_points(0, 1, [[35, 30]], [1])
    single = _run(alone)

    both = micro_model.open_video(frames)
    both.add_points(0, 1, [[35, 30]], [1])
    both.add_box(0, 2, [80, 50, 110, 80])
    calls = []
    hook = micro_model.network.memory_attention.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    try:
        together = _run(both)
    finally:
        hook.remove()
    assert calls == [2] * 9  # frames 1..9: one memory-attention pass with a batch of 2
    for f in range(10):
        np.testing.assert_allclose(together[f].logits[0], single[f].logits[0], atol=LOGIT_TOL)
    assert not np.allclose(together[5].logits[0], together[5].logits[1])


def test_add_object_after_propagation_and_remove_it(micro_model, frames, disc):
    s = micro_model.open_video(frames)
    s.add_points(0, 1, [[35, 30]], [1])
    first = _run(s)
    s.add_mask(9, 4, disc)
    assert s.object_ids == [1, 4]
    second = _run(s)
    assert set(second) == set(range(10)) and second[3].object_ids == [1, 4]
    np.testing.assert_allclose(second[3].logits[0], first[3].logits[0], atol=LOGIT_TOL)
    assert s.mask(9, 4).sum() > 0
    s.remove_object(4)
    assert s.object_ids == [1]
    assert 4 not in np.unique(s.labels())
    with pytest.raises(KeyError, match="unknown object id 4"):
        s.mask(3, 4)


def test_correction_survives_repropagation(micro_model, frames):
    s = micro_model.open_video(frames)
    s.add_points(0, 1, [[35, 30]], [1])
    _run(s)
    corrected = s.add_points(5, 1, [[80, 57], [55, 40]], [1, 0])
    after = _run(s)
    # the clicked frame keeps exactly the corrected mask, and later frames changed
    np.testing.assert_allclose(after[5].logits[0], corrected.logits[0], atol=1e-6)
    assert s.presence()[1].shape == (10,)


def test_readback_labels_masks_presence(micro_model, frames, disc):
    s = micro_model.open_video(frames)
    assert np.isnan(s.presence().get(1, np.full(10, np.nan))).all()
    s.add_points(0, 1, [[35, 30]], [1])
    s.add_box(0, 2, [80, 50, 110, 80])
    results = _run(s)
    labels = s.labels()
    assert labels.shape == (10, 96, 128) and labels.dtype == np.uint16
    for f in (0, 4, 9):
        logits = results[f].logits
        best = np.where(logits.max(0) > 0, np.array([1, 2])[logits.argmax(0)], 0)
        assert (labels[f] == best).mean() > 0.99  # fp16 storage may flip a pixel on a tie
        for k, oid in enumerate((1, 2)):
            assert (s.mask(f, oid) == (logits[k] > 0)).mean() > 0.999
    presence = s.presence()
    assert set(presence) == {1, 2} and np.isfinite(presence[1]).all()


def test_progress_and_cancel_keep_a_consistent_session(micro_model, frames):
    s = micro_model.open_video(frames)
    s.add_points(0, 1, [[35, 30]], [1])
    cancel = threading.Event()
    seen = []

    def progress(done, total):
        seen.append((done, total))
        if done == 4:
            cancel.set()

    partial = _run(s, progress=progress, cancel=cancel)
    assert sorted(partial) == [0, 1, 2, 3]
    assert seen == [(1, 10), (2, 10), (3, 10), (4, 10)]
    assert s.mask(3, 1) is not None and s.mask(5, 1) is None  # frames done are kept
    rest = _run(s, start=4)
    full = micro_model.open_video(frames)
    full.add_points(0, 1, [[35, 30]], [1])
    reference_run = _run(full)
    for f in range(4, 10):
        np.testing.assert_allclose(rest[f].logits, reference_run[f].logits, atol=LOGIT_TOL)
    # a callable works as a cancel flag too
    assert list(s.propagate(cancel=lambda: True)) == []


def test_propagate_all_covers_both_directions_and_onward_option(micro_model, frames):
    s = micro_model.open_video(frames)
    s.add_points(4, 7, [[51, 38]], [1])
    done = []
    visited = [r.frame_index for r in s.propagate_all(progress=lambda d, t: done.append((d, t)))]
    assert visited == [4, 5, 6, 7, 8, 9, 4, 3, 2, 1, 0]
    assert done[-1] == (11, 11)
    s.add_points(6, 7, [[60, 40]], [1])
    onward = [r.frame_index for r in s.propagate_all(onward_only=True)]
    assert onward == [6, 7, 8, 9]
    faithful = [r.frame_index for r in s.propagate_all()]
    assert faithful == [4, 5, 6, 7, 8, 9, 4, 3, 2, 1, 0]


def test_repropagation_reuses_cached_features(micro_model, frames):
    calls = []
    hook = micro_model.network.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        s = micro_model.open_video(frames)
        s.add_points(0, 1, [[35, 30]], [1])
        _run(s)
        assert len(calls) == 10
        s.add_points(5, 1, [[80, 57]], [1])
        _run(s)
        assert len(calls) == 10  # every frame's features came from the cache
        small = micro_model.open_video(frames, feature_cache_mb=0.1)
        small.add_points(0, 1, [[35, 30]], [1])
        _run(small)
        _run(small)
        assert len(calls) > 20  # a tiny cache recomputes
    finally:
        hook.remove()


def test_memory_spills_to_disk_without_changing_results(micro_model, frames, disc):
    big = micro_model.open_video(frames)
    tiny = micro_model.open_video(frames, memory_mb=0.05)
    for s in (big, tiny):
        s.add_points(0, 1, [[35, 30]], [1])
        s.add_mask(9, 2, disc)
    a, b = _run(big), _run(tiny)
    a2, b2 = _run(big, start=9, reverse=True), _run(tiny, start=9, reverse=True)
    assert tiny.pool.spilled > 0 and big.pool.spilled == 0
    assert tiny.pool.nbytes < big.pool.nbytes
    for f in range(10):
        np.testing.assert_array_equal(a[f].logits, b[f].logits)
        np.testing.assert_array_equal(a2[f].logits, b2[f].logits)
    tiny.close()


def test_memories_over_budget_are_not_reread_from_disk_every_frame():
    """Many objects: when the memories one frame reads exceed ``memory_mb``, they stay in RAM for
    the frame after, so each record goes to disk at most once per pass, and RAM stays bounded."""
    from sam2_plugins import load_model
    from sam2_plugins.sample import interior_point
    from sam2_plugins.synthetic import make_timelapse

    model = load_model("micro-synthetic", device="cpu")
    movie = make_timelapse(10_000_050, num_frames=30)
    ids = [int(i) for i in np.unique(movie.labels[0]) if i][:8]
    runs = []
    for memory_mb in (256, 1):  # 8 objects x 6 memories of this model: ~1.5 MB
        s = model.open_video(movie.frames, memory_mb=memory_mb)
        for i in ids:
            x, y = interior_point(movie.labels[0] == i)
            s.add_points(0, i, [[x, y]], [1])
        runs.append((np.stack([r.logits for r in s.propagate()]), s))
    (all_in_ram, big), (spilled, small) = runs
    np.testing.assert_array_equal(all_in_ram, spilled)
    records = sum(len(t.non_cond) for t in small.tracks.values())
    # before: 2,592 records written for 240 (every frame re-read the others' memories from disk)
    assert 0 < small.pool.spilled <= records
    assert small.pool.nbytes < 0.5 * big.pool.nbytes
    big.close()
    small.close()


def test_correction_click_reuses_memory_conditioned_features(micro_model, frames):
    """A click on a tracked frame needs no memory attention when its memories are unchanged."""
    cached = micro_model.open_video(frames)
    uncached = micro_model.open_video(frames)
    uncached.tracker.conditioned.max_bytes = 0
    for s in (cached, uncached):
        s.add_points(0, 1, [[35, 30]], [1])
        list(s.propagate())
    calls = []
    hook = micro_model.network.memory_attention.register_forward_hook(lambda *a: calls.append(1))
    try:
        fast = cached.add_points(6, 1, [[80, 57]], [1])
        assert calls == []
        slow = uncached.add_points(6, 1, [[80, 57]], [1])
        assert calls == [1]
    finally:
        hook.remove()
    np.testing.assert_array_equal(fast.logits, slow.logits)


def test_results_are_compact_and_read_back_exactly(micro_model, frames):
    """Masks read back from the compact store exactly as propagation returned them."""
    s = micro_model.open_video(frames)
    s.add_points(0, 1, [[35, 30]], [1])
    s.add_box(0, 2, [80, 50, 110, 80])
    results = {r.frame_index: r for r in s.propagate()}
    for f, r in results.items():
        for k, oid in enumerate(r.object_ids):
            decided = np.abs(r.logits[k]) > 0.01  # fp16 storage may flip a pixel whose logit is ~0
            np.testing.assert_array_equal(s.mask(f, oid)[decided], r.masks[k][decided])


def test_a_small_object_costs_little_to_store():
    import torch

    from sam2_plugins.video.results import ResultStore

    store = ResultStore(1080, 1920)
    low = torch.full((256, 256), -8.0)
    low[100:110, 50:58] = 4.0  # a cell of ~40x60 pixels in a 1080p frame
    store.put(0, 1, low, 3.0)
    store.put(0, 2, torch.full((256, 256), -1024.0), -5.0)  # absent object
    assert store.nbytes < 400  # vs 128 KB for the full fp16 low-res logits
    from sam2_plugins.model.common import resize_bilinear

    expected = resize_bilinear(low[None, None], (1080, 1920))[0, 0].numpy() > 0
    np.testing.assert_array_equal(store.logits(0, 1) > 0, expected)
    assert not (store.logits(0, 2) > 0).any() and store.score(0, 2) == -5.0
    assert set(np.unique(store.label_frame(0))) == {0, 1}
