"""napari plugin for sam2-plugins: the "SAM 2 tracker" dock widget, a sample time-lapse, a reader
for ``.sam2session`` files and plugin settings (see ``napari.yaml``).

Importing this package imports neither napari nor Qt: npe2 loads the widget modules when they are
first used.
"""
