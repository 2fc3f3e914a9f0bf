"""ComfyUI entry point for a checkout cloned into ``ComfyUI/custom_nodes/``.

ComfyUI imports the cloned folder as a package (under a name derived from its path) and reads
``NODE_CLASS_MAPPINGS`` / ``NODE_DISPLAY_NAME_MAPPINGS`` or, for the V3 API, ``comfy_entrypoint``.
Everything lives in ``comfy_nodes/``; this file only re-exports what ``comfy_nodes.__all__`` lists,
so names added there are picked up here without editing this file.

The guard matters: pytest (8+) treats a rootdir that holds an ``__init__.py`` as a package and imports
this file before running any test. For a checkout folder whose name is not an identifier (the
default clone folder ``sam2-plugins``) it imports it as a plain top-level module, where a relative
import would fail and error every test. For the same reason ``comfy_nodes`` must stay importable
without ComfyUI installed (tests/test_packaging.py checks both).
"""

if __package__:  # imported as a package: ComfyUI's custom-node loader (or pytest, harmlessly)
    from .comfy_nodes import *  # noqa: F401,F403  (re-export exactly comfy_nodes.__all__)
    from .comfy_nodes import __all__  # noqa: F401
