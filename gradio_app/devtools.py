"""For tests and the screenshot script: run the app in a subprocess, and drive Debian's Chromium.

Not used by the app itself. Playwright is a development dependency; it is imported only here, and
only when a browser is asked for (never ``playwright install``: the system's ``/usr/bin/chromium``
plays H.264, Playwright's own build does not).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(tmp_root: Path, env: dict[str, str] | None = None, timeout: float = 90):
    """The app on 127.0.0.1 in a subprocess, its sessions' folders under `tmp_root`; yields its URL."""
    port = free_port()
    full_env = {**os.environ, "SAM2_APP_TMP": str(tmp_root), "GRADIO_ANALYTICS_ENABLED": "False",
                "GRADIO_HEARTBEAT_INTERVAL": "1", **(env or {})}
    paths = [str(REPO / "src"), str(REPO), full_env.get("PYTHONPATH", "")]
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    log = open(tmp_root.parent / f"app-{port}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gradio_app", "--port", str(port)], cwd=REPO, env=full_env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited ({proc.returncode}); see {log.name}")
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer in {timeout} s; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def sample_truth() -> tuple[np.ndarray, np.ndarray]:
    """The bundled sample's frames as the app decodes them (T, H, W, 3) and its true labels (T, H, W)."""
    import av

    from sam2_plugins.synthetic import make_scene_video

    folder = Path(__file__).parent / "sample"
    spec = json.loads((folder / "sample.json").read_text())
    args = {k: v for k, v in spec.items() if k not in ("seed", "fps")}
    truth = make_scene_video(spec["seed"], **args).labels
    with av.open(str(folder / "sample.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    return frames, truth


def inner_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the pixel deepest inside `mask`: where a person would click."""
    from scipy import ndimage as ndi

    d = ndi.distance_transform_edt(mask)
    y, x = np.unravel_index(int(d.argmax()), d.shape)
    return int(x), int(y)


@contextmanager
def browser_page(width: int = 1400, height: int = 1100):
    """A Playwright page in Debian's Chromium, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def click_image_pixel(page, selector: str, x: float, y: float, frame_width: int | None = None) -> None:
    """Click the pixel (x, y), in the image's own pixels, of an image shown scaled to fit its box
    (in frame pixels, when the image is a `frame_width` wide frame enlarged by a whole factor)."""
    page.wait_for_function("s => { const i = document.querySelector(s);"
                           " return i && i.complete && i.naturalWidth > 0; }", arg=selector)
    box = page.eval_on_selector(selector, "i => { const r = i.getBoundingClientRect();"
                                " return [r.left, r.top, r.width, r.height, i.naturalWidth, i.naturalHeight,"
                                " getComputedStyle(i).objectFit]; }")
    left, top, w, h, nw, nh, fit = box
    scale = min(w / nw, h / nh) if fit in ("contain", "fill") else min(w / nw, h / nh, 1.0)
    if frame_width is not None:  # (x, y) are frame pixels of a picture shown enlarged by a whole factor
        k = nw // frame_width
        x, y = x * k + (k - 1) / 2, y * k + (k - 1) / 2
    xo, yo = (w - nw * scale) / 2, (h - nh * scale) / 2
    page.mouse.click(left + xo + (x + 0.5) * scale, top + yo + (y + 0.5) * scale)


def image_pixels(page, selector: str) -> np.ndarray:
    """The (H, W, 3) pixels of the image element `selector` shows, fetched from its URL."""
    from io import BytesIO

    from PIL import Image

    src = page.eval_on_selector(selector, "i => i.src")
    data = page.request.get(src).body()
    return np.asarray(Image.open(BytesIO(data)).convert("RGB"))
