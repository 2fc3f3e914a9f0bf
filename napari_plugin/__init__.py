"""napari adapter for sam2-plugins (planned): dock widgets and layer plumbing over the core's session API.

Importing this package must not import napari, magicgui or Qt (npe2 loads the widgets lazily).
"""
