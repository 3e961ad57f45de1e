"""napari-atlas-annotate: AI-assisted annotation campaigns for CT organs and lumbar MRI.

The core (volumes, I/O, phantoms, project, review, export) imports neither Qt nor napari;
napari adapters live in ``_napari`` and dock widgets in ``_qt``.
"""

from .volume import Study, Volume

__version__ = "0.1.0"
__all__ = ["Study", "Volume", "__version__"]
