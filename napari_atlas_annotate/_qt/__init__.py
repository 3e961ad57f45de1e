"""Qt dock widgets. Importing this package imports neither Qt nor napari; the modules do.

- ``annotator``: the radiologist's annotation dock (``AnnotatorDock``, ``make_annotator_dock``).
- ``edit_recorder``: napari Labels layer hook that logs every edit (no Qt, napari only).
"""
