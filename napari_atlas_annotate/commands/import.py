"""``atlas-annotate import PROJECT --case ID --annotator NAME LABELS``."""

from __future__ import annotations

from ..project import Project
from ..project.importing import import_labels


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument(
        "labels",
        help="multi-label NIfTI, per-class NIfTI folder, 3D Slicer .seg.nrrd, DICOM SEG, or "
        "RSNA CSV",
    )
    parser.add_argument("--case", required=True, help="case id in the project")
    parser.add_argument("--annotator", required=True, help="who made these labels")
    parser.add_argument("--study-id", type=int, help="RSNA CSV: study_id row to take")
    parser.add_argument("--points", help="RSNA train_label_coordinates.csv for the grades")


def run(args) -> int:
    with Project(args.project) as project:
        version = import_labels(
            project,
            args.case,
            args.annotator,
            args.labels,
            study_id=args.study_id,
            points=args.points,
        )
        print(f"imported {args.labels} as version {version.id} of {args.case} by {args.annotator}")
        if version.overlaps is not None:
            print(f"note: {version.overlaps.summary()} (kept in the version's note).")
    return 0
