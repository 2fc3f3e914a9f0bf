"""Make the example workflows' UI graphs, thumbnails and the docs screenshot in a real ComfyUI page.

    SAM2_PLUGINS_COMFYUI=/path/to/ComfyUI [COMFYUI_PYTHON=...] [COMFYUI_PRELOAD=...] \\
        python scripts/comfyui_workflow_images.py [--port 8197]

For every API-format graph in ``example_workflows/api/`` it loads the graph into ComfyUI's own
frontend (Debian's Chromium driven by Playwright), lays the nodes out in columns by their depth in
the graph, and writes what the frontend serialises as ``example_workflows/<name>.json`` (the format
"Load" and drag-and-drop take) and a screenshot of the graph, ``docs/images/comfyui_<name>.png``.
Then it runs the graph through the HTTP API and makes the ``.jpg`` thumbnail beside the workflow from
what a Save Image node saved (first, middle and last image side by side). Skips when
SAM2_PLUGINS_COMFYUI is not set.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_comfyui import ROOT, Comfy, start, wait_ready  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# Columns by longest path from a source node; returns the graph's bounds in canvas units.
LAYOUT = """() => {
  const g = window.app.graph, depth = new Map();
  const linkOf = (id) => (g.links.get ? g.links.get(id) : g.links[id]);
  const d = (n) => {
    if (depth.has(n.id)) return depth.get(n.id);
    depth.set(n.id, 0);
    let best = 0;
    for (const inp of (n.inputs || [])) {
      const link = inp.link == null ? null : linkOf(inp.link);
      const src = link ? g.getNodeById(link.origin_id) : null;
      if (src) best = Math.max(best, d(src) + 1);
    }
    depth.set(n.id, best);
    return best;
  };
  g._nodes.forEach(d);
  const cols = {};
  g._nodes.slice().sort((a, b) => a.id - b.id).forEach(n => { (cols[depth.get(n.id)] ||= []).push(n); });
  let x = 0, bottom = 0;
  for (const k of Object.keys(cols).map(Number).sort((a, b) => a - b)) {
    let y = 0, w = 0;
    for (const n of cols[k]) { n.pos = [x, y + 30]; y += n.size[1] + 70; w = Math.max(w, n.size[0]); }
    bottom = Math.max(bottom, y);
    x += w + 60;
  }
  return [x, bottom + 30];
}"""

# Scale the graph to the page and put its corner at (mx, my) screen pixels inside the canvas (below the
# top bar); returns the canvas's page position and the scale.
FIT = """([w, h, mx, my]) => {
  const c = window.app.canvas, ds = c.ds, r = c.canvas.getBoundingClientRect();
  const scale = Math.min((r.width - 2 * mx) / w, (r.height - my - 60) / h, 1.3);
  ds.scale = scale;
  ds.offset = [mx / scale, my / scale];
  c.setDirty(true, true);
  c.draw(true, true);
  return [r.left, r.top, scale];
}"""
MARGIN_X, MARGIN_Y = 60, 120


def export(port: int) -> None:
    from playwright.sync_api import sync_playwright

    api_dir, out_dir, docs = ROOT / "example_workflows" / "api", ROOT / "example_workflows", ROOT / "docs" / "images"
    docs.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1800, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
        page.wait_for_function("() => window.app && window.app.graph", timeout=60000)
        time.sleep(3)
        page.evaluate("async () => { try { await window.app.extensionManager.setting.set("
                      "'Comfy.Minimap.Visible', false); } catch (e) {} }")  # keep the minimap off the shots
        for path in sorted(api_dir.glob("*.json")):
            page.evaluate("async (g) => { await window.app.loadApiJson(g, 'workflow'); }",
                          json.loads(path.read_text()))
            time.sleep(1)
            for _ in range(3):  # the template dialog and any other popup
                page.keyboard.press("Escape")
                time.sleep(0.3)
            w, h = page.evaluate(LAYOUT)
            page.evaluate("() => window.app.canvas.deselectAll && window.app.canvas.deselectAll()")
            left, top, scale = page.evaluate(FIT, [w, h, MARGIN_X, MARGIN_Y])
            time.sleep(0.8)
            workflow = page.evaluate("() => window.app.graph.serialize()")
            (out_dir / path.name).write_text(json.dumps(workflow, indent=1) + "\n")
            clip = {"x": left + MARGIN_X - 20, "y": top + MARGIN_Y - 20, "width": w * scale + 40,
                    "height": h * scale + 40}
            png = docs / f"comfyui_{path.stem}.png"
            page.screenshot(path=str(png), clip=clip)
            print(path.stem, len(workflow["nodes"]), "nodes ->", png.relative_to(ROOT))
        browser.close()


# the Save Image node that shows a workflow best, where it is not the first
THUMBNAIL_NODE = {"remove_background": "11", "segment_everything": "7"}


def thumbnails(comfy: Comfy, base: Path) -> None:
    """Each workflow's thumbnail: its (first) Save Image node's first, middle and last image, side by side."""
    for path in sorted((ROOT / "example_workflows" / "api").glob("*.json")):
        graph = json.loads(path.read_text())
        got = comfy.run(graph)
        if got["status"] != "success":
            raise RuntimeError(f"{path.name} failed: {got}")
        first = THUMBNAIL_NODE.get(path.stem) or min(
            (k for k, n in graph.items() if n["class_type"] == "SaveImage"), key=int)
        saved = got["outputs"][first]["images"]
        picks = sorted({0, len(saved) // 2, len(saved) - 1})
        frames = [Image.open(base / "output" / saved[i]["subfolder"] / saved[i]["filename"]).convert("RGB")
                  for i in picks]
        strip = Image.new("RGB", (sum(f.width for f in frames) + 8 * (len(frames) - 1), frames[0].height),
                          (24, 24, 24))
        x = 0
        for f in frames:
            strip.paste(f, (x, 0))
            x += f.width + 8
        strip.save(ROOT / "example_workflows" / f"{path.stem}.jpg", quality=88)
        print(path.stem, "thumbnail from node", first, [saved[i]["filename"] for i in picks])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8197)
    args = parser.parse_args()
    comfy_dir = os.environ.get("SAM2_PLUGINS_COMFYUI")
    if not comfy_dir:
        print("SKIPPED: set SAM2_PLUGINS_COMFYUI to a ComfyUI folder")
        return 0
    base = Path(tempfile.mkdtemp(prefix="sam2-comfy-ui-"))
    proc = start(Path(comfy_dir), os.environ.get("COMFYUI_PYTHON", sys.executable), base, args.port)
    try:
        comfy = Comfy(args.port)
        wait_ready(comfy, proc)
        export(args.port)
        thumbnails(comfy, base)
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
