"""Remake the app's screenshots in docs/images: ``python -m gradio_app.screenshots``.

Runs the app, loads the sample in Debian's Chromium, clicks two objects, tracks, and saves:
``gradio_clicks.png`` (objects clicked on a frame) and ``gradio_result.png`` (tracked, an effect
chosen, the downloads listed).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .devtools import REPO, browser_page, click_image_pixel, inner_point, running_app, sample_truth

OUT = REPO / "docs" / "images"


def _wait_status(page, text: str) -> None:
    page.wait_for_function("t => document.querySelector('#status').innerText.includes(t)", arg=text)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    _, truth = sample_truth()
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp) / "sessions") as url, \
            browser_page(1400, 1250) as page:
        page.set_default_timeout(60_000)
        page.goto(url)
        page.click("#sample")
        _wait_status(page, "Loaded the sample video")
        click_image_pixel(page, "#frame img", *inner_point(truth[0] == 1), frame_width=256)
        _wait_status(page, "Object 1:")
        page.click("#new-object")
        _wait_status(page, "Object 2 added")
        click_image_pixel(page, "#frame img", *inner_point(truth[0] == 2), frame_width=256)
        _wait_status(page, "Object 2:")
        page.fill("#name textarea, #name input", "blue disc")
        page.click("#rename")
        _wait_status(page, "Renamed")
        page.wait_for_timeout(500)
        page.screenshot(path=str(OUT / "gradio_clicks.png"), full_page=True)
        page.click("#track")
        _wait_status(page, "Tracked 2 object(s)")
        page.click("#effect input")
        page.click("li[role=option][aria-label='Highlight the objects']")
        _wait_status(page, "Effect: Highlight the objects")
        page.wait_for_function("() => document.querySelectorAll('#downloads a').length >= 3 && Array.from("
                               "document.querySelectorAll('#out [data-testid=status-tracker], "
                               "#downloads [data-testid=status-tracker]')).every(e => e.classList.contains('hide'))")
        page.wait_for_function("() => { const v = document.querySelector('#out video');"
                               " return v && v.readyState >= 2; }")
        page.eval_on_selector("#out video", "v => { v.currentTime = 1.0; }")
        page.wait_for_timeout(1500)
        page.screenshot(path=str(OUT / "gradio_result.png"), full_page=True)
    print(f"wrote {OUT / 'gradio_clicks.png'} and {OUT / 'gradio_result.png'}")


if __name__ == "__main__":
    main()
