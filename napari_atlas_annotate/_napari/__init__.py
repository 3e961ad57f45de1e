"""napari adapters: Volume <-> layer data (reader, writer, sample data).

Thin by design: geometry lives in :mod:`napari_atlas_annotate._napari.layers`, file formats
in :mod:`napari_atlas_annotate.io`. Importing this package does not import Qt.
"""
