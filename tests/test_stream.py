"""Streaming sessions: frame-by-frame tracking equal to offline tracking, with bounded memory."""

import numpy as np

from conftest import LOGIT_TOL


def test_stream_matches_offline_session_and_stays_bounded(micro_model, reference):
    frames = np.concatenate([reference["frames"], reference["frames"][::-1], reference["frames"]])  # 30 frames
    offline = micro_model.open_video(frames)
    offline.add_points(0, 1, [[35, 30]], [1])
    expected = {r.frame_index: r.logits[0] for r in offline.propagate()}

    stream = micro_model.open_stream(keep_frames=8)
    first = stream.push(frames[0])
    assert first.object_ids == [] and first.logits.shape == (0, 96, 128)
    prompt = stream.add_points(0, 1, [[35, 30]], [1])
    np.testing.assert_allclose(prompt.logits[0], expected[0], atol=LOGIT_TOL)
    for t in range(1, len(frames)):
        result = stream.push(frames[t])
        assert result.frame_index == t and result.object_ids == [1]
        np.testing.assert_allclose(result.logits[0], expected[t], atol=LOGIT_TOL)
    track = stream.tracks[1]
    assert len(track.non_cond) <= 18  # only memories SAM 2 can still read
    assert len(stream.results.frames()) <= 9  # results of the last keep_frames frames (+ the prompt)
    assert stream.num_frames == 30
