"""``atlas-annotate add PROJECT PATH... [--id ID] [--copy] [--no-check]``: add cases.

Images are referenced, not copied (unless ``--copy``). Each new case is checked before it
is added (:func:`~napari_atlas_annotate.project.sources.check_case`): its files exist, its
DICOM modality fits the project (organs: CT, spine: MR) and, unless ``--no-check``, every
image loads as it will at ``propose``. A case is skipped, with its reason printed, when it
fails a check, when its image is already in a case, or when its id is taken by a case with
another image. Exit code 1 when a case was not added for a reason the user must act on
(invalid input, an id already taken), 0 otherwise: cases already in the project on a
re-run are not an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..project import Project, ProjectError
from ..project.sources import (
    NewCase,
    ReferencedImages,
    case_names,
    cases_from_path,
    check_case,
    copied_case,
    copy_into_project,
    is_manifest_path,
)
from ..project.store import CASE_ID


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument(
        "paths", nargs="+", help="DICOM folders/files, NIfTI files, or a phantom manifest.json"
    )
    parser.add_argument(
        "--id",
        dest="case_id",
        metavar="ID",
        help="case id for a single image PATH (default: the file or folder name, or the "
        "nearest enclosing folder's when that name is generic, e.g. BDMAP_00000001 for "
        "BDMAP_00000001/ct.nii.gz)",
    )
    parser.add_argument("--copy", action="store_true", help="copy images into the project")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="do not load each new image to check that it opens (about 1-2 s per CT); "
        "for very large imports. Missing files and DICOM modality are still checked.",
    )


@dataclass
class _Outcome:
    added: list[str] = field(default_factory=list)
    #: (case id or path, reason, whether the user must act: False for cases already there)
    skipped: list[tuple[str, str, bool]] = field(default_factory=list)

    def skip(self, what: str, reason: str, *, error: bool = True) -> None:
        self.skipped.append((what, reason, error))

    @property
    def failed(self) -> bool:
        return any(error for _, _, error in self.skipped)

    def print(self) -> None:
        print(f"added {len(self.added)} case(s): {', '.join(self.added) or '-'}")
        if self.skipped:
            print(f"skipped {len(self.skipped)} case(s):")
            for what, reason, _ in self.skipped:
                print(f"  {what}: {reason}")


def _collect(args, task: str, outcome: _Outcome) -> list[NewCase]:
    """The cases the given paths stand for; unusable paths are refused one by one."""
    images = [p for p in args.paths if not is_manifest_path(p)]
    if args.case_id is not None:
        if len(args.paths) != 1 or not images:
            raise ProjectError(
                "--id names one case: give it with a single image path (NIfTI file or "
                "DICOM folder), not with several paths or a manifest (whose cases keep "
                "their own ids)."
            )
        if not CASE_ID.match(args.case_id):
            raise ProjectError(
                f"--id {args.case_id!r} is not a valid case id: use letters, digits, '.', "
                "'_' or '-', starting with a letter or digit."
            )
        names = {images[0]: args.case_id}
    else:
        names = dict(zip(images, case_names(images), strict=True))
    cases = []
    for path in args.paths:
        try:
            found = cases_from_path(Path(path), task, names.get(path))
        except ProjectError as exc:
            outcome.skip(path, str(exc))
            continue
        if not found:  # a manifest without cases of this task
            outcome.skip(path, f"no {task} cases in this manifest.")
        cases.extend(found)
    return cases


def _add(
    project: Project,
    case: NewCase,
    args,
    known: ReferencedImages,
    taken: set[str],
    outcome: _Outcome,
) -> None:
    stored = copied_case(case, project.folder) if args.copy else case
    owner = known.owner_of(case) or known.owner_of(stored)
    if owner is not None:
        owner_id, image = owner
        if owner_id == case.id:
            outcome.skip(case.id, "already in the project.", error=False)
        else:
            reason = f"image {image} is already in case {owner_id}; not added twice."
            outcome.skip(case.id, reason, error=False)
        return
    if case.id in taken:
        other = project.case(case.id)
        image = project.resolve(other.images[0].path) if other.images else "-"
        outcome.skip(
            case.id,
            f"the project already has a case {case.id} with another image ({image}). "
            f"Add {case.images[0].path} on its own with --id NEW_ID.",
        )
        return
    try:
        check_case(case, project.task, load=not args.no_check)
        if args.copy:
            stored = copy_into_project(case, project.folder)
        project.add_case(stored.id, stored.images, truth=stored.truth, source=stored.source)
    except ProjectError as exc:
        outcome.skip(case.id, str(exc))
        return
    for ref in case.images + (stored.images if args.copy else []):
        known.add(case.id, ref)
    taken.add(case.id)
    outcome.added.append(case.id)


def run(args) -> int:
    with Project(args.project) as project:
        outcome = _Outcome()
        cases = _collect(args, project.task, outcome)
        known = ReferencedImages.of_project(project)
        taken = {c.id for c in project.cases()}
        for case in cases:
            _add(project, case, args, known, taken, outcome)
    outcome.print()
    return 1 if outcome.failed else 0
