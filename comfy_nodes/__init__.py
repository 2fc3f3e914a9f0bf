"""ComfyUI node pack for sam2-plugins: V3 nodes (``comfy_api.v0_0_2``) over the core's session API.

Importing this package must work without ComfyUI: the repository-root ``__init__.py`` re-exports
``__all__`` and pytest imports it, and the node logic (prompts.py, segment.py, video.py) is tested
without ComfyUI. Every node is a V3 class (nodes.py), registered two ways:

* :func:`comfy_entrypoint` returns the ``ComfyExtension`` (the V3 entry point);
* inside a running ComfyUI (its ``comfy_api`` already imported when custom nodes load), the same V3
  classes also fill ``NODE_CLASS_MAPPINGS``: ComfyUI's loader (0.3.x) takes a module's
  ``NODE_CLASS_MAPPINGS`` before its ``comfy_entrypoint``, and the root ``__init__.py`` must export
  the mappings (an empty dict outside ComfyUI), so without this the nodes would never register.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "comfy_entrypoint"]

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}


def _core_importable() -> None:
    """A checkout cloned into custom_nodes/ without ``pip install``: import the core from ./src."""
    try:
        import sam2_plugins  # noqa: F401
    except ImportError:
        src = Path(__file__).resolve().parents[1] / "src"
        if (src / "sam2_plugins" / "__init__.py").is_file():
            sys.path.insert(0, str(src))
        else:
            raise


def _fill_mappings_inside_comfyui() -> None:
    if "comfy_api" not in sys.modules:  # not inside ComfyUI: stay importable without it
        return
    _core_importable()
    from .nodes import NODES

    for node in NODES:
        schema = node.GET_SCHEMA()
        NODE_CLASS_MAPPINGS[schema.node_id] = node
        NODE_DISPLAY_NAME_MAPPINGS[schema.node_id] = schema.display_name


async def comfy_entrypoint():
    """The pack's ``ComfyExtension`` (ComfyUI's V3 loader calls this)."""
    _core_importable()
    from .nodes import Sam2Extension

    return Sam2Extension()


_fill_mappings_inside_comfyui()
