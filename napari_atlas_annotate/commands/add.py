"""``atlas-annotate add PROJECT PATH... [--copy]``: images are referenced, not copied."""

from __future__ import annotations

from pathlib import Path

from ..project import Project, ProjectError
from ..project.sources import cases_from_path, copy_into_project


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument(
        "paths", nargs="+", help="DICOM folders/files, NIfTI files, or a phantom manifest.json"
    )
    parser.add_argument("--copy", action="store_true", help="copy images into the project")


def run(args) -> int:
    project = Project(args.project)
    existing = {c.id for c in project.cases()}
    added, skipped = [], []
    for path in args.paths:
        for case in cases_from_path(Path(path), project.task):
            if case.id in existing:
                skipped.append(case.id)
                continue
            if args.copy:
                case = copy_into_project(case, project.folder)
            try:
                project.add_case(case.id, case.images, truth=case.truth, source=case.source)
            except ProjectError as exc:
                skipped.append(f"{case.id} ({exc})")
                continue
            existing.add(case.id)
            added.append(case.id)
    print(f"added {len(added)} case(s): {', '.join(added) or '-'}")
    if skipped:
        print(f"skipped {len(skipped)} already present or invalid: {', '.join(skipped)}")
    project.close()
    return 0
