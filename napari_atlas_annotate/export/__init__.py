"""Export a project's corrected / final labels to datasets people already use:
AbdomenAtlas, nnU-Net v2, RSNA lumbar CSVs, DICOM SEG and MONAI datalists, each with a
``provenance.json`` and without patient identifiers (see :mod:`.project_export`)."""

from .errors import ExportError
from .project_export import FORMATS, ExportResult, export_project, export_root
from .selection import STATUSES, Selection, Skipped, select_versions

__all__ = [
    "FORMATS",
    "STATUSES",
    "ExportError",
    "ExportResult",
    "Selection",
    "Skipped",
    "export_project",
    "export_root",
    "select_versions",
]
