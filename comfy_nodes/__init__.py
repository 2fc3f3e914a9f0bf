"""ComfyUI node pack for sam2-plugins (planned): V3 nodes over the core's session API.

Importing this package must work without ComfyUI (import comfy_api / folder_paths lazily, e.g. inside
``comfy_entrypoint``): the repository-root ``__init__.py`` re-exports ``__all__`` and is imported by pytest.
"""

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]

NODE_CLASS_MAPPINGS: dict = {}
NODE_DISPLAY_NAME_MAPPINGS: dict = {}
