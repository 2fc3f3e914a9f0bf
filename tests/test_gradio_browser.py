"""The Gradio app in a real browser (Debian's Chromium driven by Playwright): load the sample, click
an object and see its mask, add a second object, track, play the result and download the masks,
which are checked against the sample's ground truth.
"""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest

pytest.importorskip("gradio")
pytest.importorskip("playwright")
if not os.path.exists("/usr/bin/chromium"):
    pytest.skip("Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True)
if shutil.which("ffmpeg") is None:
    pytest.skip("ffmpeg is not installed", allow_module_level=True)

from gradio_app.devtools import browser_page, click_image_pixel, image_pixels, inner_point, running_app, sample_truth  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("gradio_browser") / "sessions") as url:
        yield url


def tinted(shown: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Pixels the page drew a mask on: clearly off the plain frame's colour."""
    return np.abs(shown.astype(int) - frame.astype(int)).max(axis=-1) > 24


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def wait_status(page, text: str) -> None:
    page.wait_for_function(f"() => document.querySelector('#status').innerText.includes({text!r})",
                           timeout=TIMEOUT_MS)


def test_click_two_objects_track_play_and_download(app):
    frames, truth = sample_truth()
    first, second = (truth[0] == 1), (truth[0] == 2)
    with browser_page() as page:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(app)
        page.click("#sample")
        wait_status(page, "Loaded the sample video")

        # one click on the first object: its mask shows on the frame, where the truth says it is
        click_image_pixel(page, "#frame img", *inner_point(first), frame_width=256)
        wait_status(page, "Object 1:")
        page.wait_for_function("() => document.querySelector('#frame img').complete")
        shown = image_pixels(page, "#frame img")
        k = shown.shape[1] // frames.shape[2]  # small clips are shown enlarged by a whole factor
        shown = shown[::k, ::k]
        assert shown.shape == frames[0].shape
        drawn = tinted(shown, frames[0])
        assert iou(drawn, first) > 0.8, "the mask shown after the click is not the clicked object"

        # a second object, then track both through the clip
        page.click("#new-object")
        wait_status(page, "Object 2 added")
        click_image_pixel(page, "#frame img", *inner_point(second), frame_width=256)
        wait_status(page, "Object 2:")
        page.click("#track")
        wait_status(page, "Tracked 2 object(s) over 16 frame(s)")

        # the result plays in the browser
        page.wait_for_function("() => { const v = document.querySelector('#out video');"
                               " return v && v.currentSrc && v.readyState >= 2 && v.duration > 1; }")
        assert page.eval_on_selector("#out video", "v => v.videoWidth") == 256

        # the label stack downloads, and both objects match the truth through the clip
        links = page.eval_on_selector_all("#downloads a", "as => as.map(a => a.href)")
        names = " ".join(links)
        assert "sam2_masks.zip" in names and "sam2_labels.tif" in names and ".mp4" in names
        tif = next(h for h in links if "sam2_labels.tif" in h)
        import tifffile

        stack = tifffile.imread(io.BytesIO(page.request.get(tif).body()))
        assert stack.shape == truth.shape
        for oid in (1, 2):
            score = iou(stack == oid, truth == oid)
            assert score > 0.8, f"object {oid}: IoU {score:.2f} with the truth over the clip"
        assert not (stack == 3).any(), "an object nobody clicked was tracked"
