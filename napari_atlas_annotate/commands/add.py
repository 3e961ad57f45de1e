"""``atlas-annotate add PROJECT PATH... [--id ID] [--copy] [--no-check] [--labels NAME]``:
add cases.

Images are referenced, not copied (unless ``--copy``). A folder holding several series
(organs) or studies (spine) gives one case each, named after its own folder; a dataset
folder of NIfTI files gives one case per image, its label files recognised and paired with
their images (:mod:`~napari_atlas_annotate.project.nifti_folders`), a DICOM SEG found with
DICOM series is paired with the series it references
(:mod:`~napari_atlas_annotate.project.dicom_segs`), and ``--labels NAME`` imports those as
NAME's version of each case (cases added before included). Each new case
is checked before it is added (:func:`~napari_atlas_annotate.project.sources.check_case`):
its files exist, its DICOM modality fits the project (organs: CT, spine: MR) and, unless
``--no-check``, every image loads as it will at ``propose``.

The series of a study in an RSNA dataset folder are named by its series descriptions CSV
(:mod:`~napari_atlas_annotate.project.rsna_folders`). A series the CSV has no row for is
added all the same, and listed with what to do; a row naming a series that is not on disk
is a warning. Run again once the CSV is corrected, ``add`` renames the series of the
studies already added (and the points naming them by their old name:
:meth:`~napari_atlas_annotate.project.Project.rename_series`), and says so. An RSNA folder
is read and added study by study, each study's DICOM headers released before the next is
read, and an organs folder is scanned keeping only what groups its files into series, each
case's headers read again when it is added, so that memory does not grow with the number
of studies (:func:`~napari_atlas_annotate.project.sources.find_cases`). Those headers serve
the whole case: its slices are ordered once
(:func:`~napari_atlas_annotate.project.sources.with_plans`) for its fingerprint, its check
(which loads it once) and the import of its DICOM SEG, placed on that grid and those slices
without reading the image again.

A case is skipped, with its reason printed, when it fails a check, when its image is
already in a case (the same path, the same DICOM series under any path, or, once loaded,
the same voxels on the same grid: a copy, a NIfTI conversion), or when its id is taken by
a case with another image. Cases of another task in a manifest are left out, in one line.
Exit code 1 when a case was not added for a reason the user must act on (invalid input,
an id already taken), 0 otherwise: images already in the project are not an error.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..case_lists import first_ids
from ..project import Project, ProjectError, task_phrase
from ..project.image_identity import ProjectImages, ReferencedImages, header_fingerprints
from ..project.importing import MaskOverlaps, import_labels
from ..project.records import Case
from ..project.rsna_folders import MissingSeries
from ..project.sources import (
    FoundCases,
    NewCase,
    SeriesRenames,
    check_case,
    copied_case,
    copy_into_project,
    find_cases,
    is_manifest_path,
    series_renames,
    with_plans,
)
from ..project.store import CASE_ID
from ..spine_grades import read_coordinates_csv, read_grades_csv
from ..volume import Volume


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
        "--labels",
        metavar="ANNOTATOR",
        help="import the labels found beside each NIfTI image (AbdomenAtlas "
        "combined_labels.nii.gz or segmentations/, nnU-Net/MSD labelsTr/, <name>_seg.nii.gz) "
        "or with each DICOM series (a DICOM SEG referencing it), or the grades and points "
        "of each study of an RSNA dataset folder (train.csv, train_label_coordinates.csv), "
        "as ANNOTATOR's imported version of the case; also for cases already added",
    )
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="do not load each new image to check that it opens (about 1-2 s per CT); "
        "for very large imports. Missing files and DICOM modality are still checked.",
    )


@dataclass
class _Outcome:
    added: list[str] = field(default_factory=list)
    #: (case id or path, reason, whether the user must act: False for images already there)
    skipped: list[tuple[str, str, bool]] = field(default_factory=list)
    #: lines about what the paths held but the project does not take
    notes: list[str] = field(default_factory=list)

    def skip(self, what: str, reason: str, *, error: bool = True) -> None:
        self.skipped.append((what, reason, error))

    #: case ids whose labels were imported
    labelled: list[str] = field(default_factory=list)
    #: with --labels, spine: studies added with no grades found for them
    unlabelled: list[str] = field(default_factory=list)
    #: (case id, voxels its per-class masks both claimed) for imports with overlaps
    overlaps: list[tuple[str, MaskOverlaps]] = field(default_factory=list)
    #: (case id, its series renamed, grades versions and edits whose points were renamed)
    renamed: list[tuple[str, SeriesRenames, int, int]] = field(default_factory=list)
    #: (case id, series folder, the name its headers give, series CSV) for each series of
    #: an RSNA study (added, or in the project already) that the series CSV has no row for
    unnamed: list[tuple[str, Path, str, Path]] = field(default_factory=list)
    #: rows of an RSNA series CSV naming a series not on disk
    missing: list[MissingSeries] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(error for _, _, error in self.skipped)

    def print(self) -> None:
        print(f"added {len(self.added)} case(s): {_listed(self.added)}")
        self._print_renamed()
        if self.labelled:
            print(f"imported labels of {len(self.labelled)} case(s): {_listed(self.labelled)}")
        if self.unlabelled:
            print(
                f"no grades found for {len(self.unlabelled)} case(s) (an RSNA study needs its "
                f"row in train.csv): {_listed(self.unlabelled)}"
            )
        if self.overlaps:
            print(
                f"the class masks of {len(self.overlaps)} case(s) overlap (kept in each "
                "imported version's note):"
            )
            for case_id, overlaps in self.overlaps[:_SHOWN]:
                print(f"  {case_id}: {overlaps.summary()}")
            if len(self.overlaps) > _SHOWN:
                print(f"  ... and {len(self.overlaps) - _SHOWN} more")
        for note in self.notes:
            print(note)
        self._print_unnamed()
        self._print_missing()
        if self.skipped:
            print(f"skipped {len(self.skipped)} case(s):")
            # the same folder added again (a dataset grown since): one line for those
            there = [w for w, reason, _ in self.skipped if reason.startswith(_THERE)]
            summed = len(there) > _LISTED
            for what, reason, _ in self.skipped:
                if not (summed and reason.startswith(_THERE)):
                    print(f"  {what}: {reason}")
            if summed:
                print(f"  {len(there)} {_THERE}: {first_ids(there)}")

    def _print_renamed(self) -> None:
        series = [s for _, renames, _, _ in self.renamed for s in renames.series]
        if not series:
            return
        print(
            f"renamed {len(series)} series of {len(self.renamed)} case(s) already in the "
            "project as the series descriptions CSV names them now:"
        )
        for case_id, renames, versions, events in self.renamed:
            for folder, old, new, images in renames.series:
                stacks = f" ({images} stacks)" if images > 1 else ""
                print(f"  {case_id}: series {folder}{stacks}: {old or '(unnamed)'!s} -> {new}")
            if versions or events:
                print(
                    f"  {case_id}: its points on them renamed too, in {versions} grades "
                    f"version(s) and {events} logged edit(s)"
                )

    def _print_unnamed(self) -> None:
        if not self.unnamed:
            return
        csvs = sorted({str(csv) for *_, csv in self.unnamed})
        one = len(self.unnamed) == 1
        print(
            f"warning: {len(self.unnamed)} series {'has' if one else 'have'} no row in "
            f"{' and '.join(csvs)}, so the project has no name for {'it' if one else 'them'} "
            "from it and the grader cannot tell which plane (Sagittal T1, Sagittal T2/STIR, "
            f"Axial T2) {'it' if one else 'each'} is:"
        )
        for case_id, folder, header, _ in self.unnamed:
            named = f"named {header!r} by its DICOM header only" if header else "unnamed"
            print(
                f"  study {folder.parent.name} (case {case_id}): series_id {folder.name} "
                f"({folder}), {named}"
            )
        print(
            "  Add a row 'study_id,series_id,series_description' for each to the CSV and run "
            "the same add again: the series of cases already added are renamed then."
        )

    def _print_missing(self) -> None:
        if not self.missing:
            return
        csvs = sorted({str(m.csv) for m in self.missing})
        one = len(self.missing) == 1
        print(
            f"warning: {len(self.missing)} {'row' if one else 'rows'} of {' and '.join(csvs)} "
            f"{'names' if one else 'name'} a series that is not on disk (Kaggle's CSV lists "
            "some series taken out of the dataset); nothing was added for "
            f"{'it' if one else 'them'}:"
        )
        for m in self.missing:
            print(
                f"  study {m.study_id}, series_id {m.series_id} ({m.description!r}): no DICOM "
                f"series in {m.folder}"
            )


def _find(args, task: str) -> FoundCases:
    """The cases the given paths stand for, found as they are asked for (an RSNA dataset
    folder study by study: :func:`find_cases`)."""
    if args.case_id is not None:
        if len(args.paths) != 1 or is_manifest_path(args.paths[0]):
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
    return find_cases(args.paths, task, args.case_id, lazy=True)


def _report(found: FoundCases, task: str, outcome: _Outcome, args) -> None:
    """What the paths held besides their cases, once all were found: unusable paths
    (listed first among the skipped), files left out, label maps beside DICOM series with
    the command that imports each, other tasks' cases."""
    outcome.skipped[:0] = [(path, reason, True) for path, reason in found.refused]
    outcome.missing += found.missing
    if found.left_out:
        outcome.notes.append(f"left out {len(found.left_out)} file(s) that are no case's image:")
        outcome.notes += [f"  {path}: {why}" for path, why in found.left_out[:_SHOWN]]
        if len(found.left_out) > _SHOWN:
            outcome.notes.append(f"  ... and {len(found.left_out) - _SHOWN} more")
    if found.label_maps:
        outcome.notes.append(
            f"left out {len(found.label_maps)} label map(s) beside DICOM series (add pairs a "
            "series only with a DICOM SEG); import each as a person's version of its case:"
        )
        who = shlex.quote(args.labels) if args.labels else "NAME"
        outcome.notes += [
            f"  atlas-annotate import {shlex.quote(args.project)} {shlex.quote(path)} "
            f"--case {case_id or 'ID'} --annotator {who}"
            for path, case_id in found.label_maps[:_SHOWN]
        ]
        if len(found.label_maps) > _SHOWN:
            outcome.notes.append(f"  ... and {len(found.label_maps) - _SHOWN} more")
    for manifest, others in found.ignored:
        kinds = ", ".join(f"{n} {other}" for other, n in others.items())
        outcome.notes.append(f"ignored {kinds} case(s) of {manifest}: this is {task_phrase(task)}.")


#: How many left-out files ``add`` names one by one.
_SHOWN = 5
#: More case ids than this are printed as the first few and a count (a dataset of 20,000).
_LISTED = 20
_THERE = "already in the project"


def _listed(ids: list[str]) -> str:
    return first_ids(ids, shown=len(ids) if len(ids) <= _LISTED else 5)


class _Adder:
    """Adds new cases one by one, each checked against the project and the cases before."""

    def __init__(self, project: Project, args, outcome: _Outcome) -> None:
        self.project, self.args, self.outcome = project, args, outcome
        self.paths = ReferencedImages.of_project(project)
        self.images = ProjectImages(project)
        self.taken = {c.id for c in project.cases()}
        #: RSNA grade CSVs read once per add, not once per study: (grades, points) -> tables
        self.tables: dict[tuple[Path, Path | None], tuple[dict, dict]] = {}

    def _duplicate(self, case: NewCase, prints) -> bool:
        """Skip ``case`` if one of its images (``prints``) is already in a case."""
        same = self.images.duplicate_of(prints)
        if same is None:
            return False
        image = case.images[same.index].path
        if same.case_id == case.id:
            reason = f"{_THERE} (image {image} has the same {same.same})."
            self.update_names(case)
            self.import_labels(case)
        else:
            reason = (
                f"image {image} is already in case {same.case_id} (same {same.same}); "
                f"not added twice.{self._labels_into(case, same.case_id)}"
            )
        self.outcome.skip(case.id, reason, error=False)
        return True

    def _labels_into(self, case: NewCase, case_id: str) -> str:
        """With ``--labels``: the labels found beside a copy of an image the project has
        as ``case_id`` are that case's; import them there. Returns what to add to the
        skip line ("" when there were none to import)."""
        before = len(self.outcome.labelled)
        self.import_labels(dataclasses.replace(case, id=case_id))
        if len(self.outcome.labelled) == before:
            return ""
        return f" Its labels ({case.labels}) were imported into case {case_id}."

    def add(self, case: NewCase) -> None:
        project, args, outcome = self.project, self.args, self.outcome
        stored = copied_case(case, project.folder) if args.copy else case
        owner = self.paths.owner_of(case) or self.paths.owner_of(stored)
        if owner is not None:
            owner_id, image = owner
            if owner_id == case.id:
                outcome.skip(case.id, f"{_THERE}.", error=False)
                self.update_names(case)
                self.import_labels(case)
            else:
                reason = (
                    f"image {image} is already in case {owner_id}; not added twice."
                    f"{self._labels_into(case, owner_id)}"
                )
                outcome.skip(case.id, reason, error=False)
            return
        case = with_plans(case)  # slices ordered once: fingerprint, check, SEG import
        heads = header_fingerprints(case.images, case.series_info, case.plans)
        if self._duplicate(case, heads):  # the same DICOM series: known from headers
            return
        try:
            prints = check_case(case, project.task, load=not args.no_check)
        except ProjectError as exc:
            outcome.skip(case.id, str(exc))
            return
        if prints and self._duplicate(case, prints):  # the same voxels on the same grid
            return
        if case.id in self.taken:
            other = project.case(case.id)
            image = project.resolve(other.images[0].path) if other.images else "-"
            unseen = " (--no-check: their voxels were not compared)" if not prints else ""
            outcome.skip(
                case.id,
                f"the project already has a case {case.id} with another image ({image})"
                f"{unseen}. Add {case.images[0].path} on its own with --id NEW_ID.",
            )
            return
        try:
            if args.copy:
                stored = copy_into_project(case, project.folder)
            added = project.add_case(
                stored.id, stored.images, truth=stored.truth, source=stored.source
            )
        except ProjectError as exc:
            outcome.skip(case.id, str(exc))
            return
        self.images.record(added, prints or heads)
        for ref in case.images + (stored.images if args.copy else []):
            self.paths.add(case.id, ref)
        self.taken.add(case.id)
        outcome.added.append(case.id)
        self._unnamed(case)
        self.import_labels(case, added)

    def update_names(self, case: NewCase) -> None:
        """A case already in the project, found again in an RSNA dataset folder: its
        series take the names the series CSV gives them now (a row added since), and so
        do the points naming them by their old name (:meth:`Project.rename_series`)."""
        if case.series_csv is not None:
            stored = self.project.case(case.id)
            renames = series_renames(case, stored.images, self.project.resolve)
            if renames.descriptions:
                try:
                    versions, events = self.project.rename_series(
                        case.id, renames.descriptions, renames.points, actor="add"
                    )
                except ProjectError as exc:
                    self.outcome.skip(case.id, str(exc))
                    return
                self.outcome.renamed.append((case.id, renames, len(versions), len(events)))
        self._unnamed(case)

    def _unnamed(self, case: NewCase) -> None:
        """Note the series of ``case`` that its RSNA series CSV has no row for."""
        for folder in case.unnamed:
            header = next(
                (
                    info.description
                    for info in case.series_info
                    if info is not None and Path(os.path.abspath(info.files[0])).parent == folder
                ),
                "",
            )
            self.outcome.unnamed.append((case.id, folder, header, case.series_csv))

    def import_labels(self, case: NewCase, added: Case | None = None) -> None:
        """With ``--labels NAME``: the labels found beside the case's image as NAME's
        imported version (once: not when NAME has a version of the case already).
        ``added``: the case as just stored, whose series are the scanned ones."""
        name = self.args.labels
        if name and case.labels is None and self.project.task == "spine":
            self.outcome.unlabelled.append(case.id)  # (organs: left-out label maps are listed)
        if not name or case.labels is None or self.project.versions(case.id, annotator=name):
            return
        try:
            version = import_labels(
                self.project,
                case.id,
                name,
                case.labels,
                points=case.label_points,
                tables=self._tables(case) if self.project.task == "spine" else None,
                scans=self._scans(case, added),
                image=self._first_image(case, added),
            )
        except ProjectError as exc:
            points = f" --points {case.label_points}" if case.label_points else ""
            unnamed = (
                " For a series the series CSV has no row for (see the warning), add its row "
                "and run this add again instead: it names the series and imports the labels."
                if case.unnamed
                else ""
            )
            self.outcome.skip(
                case.id,
                f"added, but its labels were not imported: {exc} Fix them and run "
                f"'atlas-annotate import {self.project.folder} {case.labels} --case {case.id} "
                f"--annotator {name}{points}'.{unnamed}",
            )
            return
        self.outcome.labelled.append(case.id)
        if version.overlaps is not None:
            self.outcome.overlaps.append((case.id, version.overlaps))

    def _tables(self, case: NewCase) -> tuple[dict, dict] | None:
        """The grades CSV and the coordinates CSV (by study_id) of an RSNA dataset, read
        the first time a study of it is imported (None for a file gone: the import says
        so)."""
        key = (case.labels, case.label_points)
        if not Path(case.labels).is_file():
            return None
        if key not in self.tables:
            points: dict[int, list] = defaultdict(list)
            for point in read_coordinates_csv(case.label_points) if case.label_points else ():
                points[point.study_id].append(point)
            self.tables[key] = (read_grades_csv(case.labels), dict(points))
        return self.tables[key]

    def _first_image(self, case: NewCase, added: Case | None) -> Volume | None:
        """The grid of the case's first image as planned from the headers the add scanned
        (shape, affine, slice UIDs; no pixels), so that importing its DICOM SEG neither
        scans its folder again nor loads it a second time after its check. ``None`` (the
        import loads the image) when it was not scanned, does not plan, or, for a case in
        the project already, the project's first image may not be the one found."""
        if self.project.task == "spine" or not case.images:
            return None
        case = with_plans(case)
        plan = case.plans[0] if case.plans else None
        if plan is None:
            return None
        if added is None:  # found again: the same path, series and stack as stored?
            found, stored = case.images[0], self.project.case(case.id).images
            same = bool(stored) and (
                self.project.resolve(stored[0].path).resolve(),
                stored[0].series or None,
                stored[0].stack,
            ) == (Path(found.path).resolve(), found.series or None, found.stack)
            if not same:
                return None
        return plan.grid()

    def _scans(self, case: NewCase, added: Case | None) -> dict:
        """``{image path: its series}`` of a case just added, from the scan that found it,
        so that naming its series (:func:`.series_names`) reads no header again."""
        infos = list({id(info): info for info in case.series_info if info is not None}.values())
        if added is None or not infos:
            return {}
        return {str(self.project.resolve(ref.path)): infos for ref in added.images}


def run(args) -> int:
    with Project(args.project) as project:
        outcome = _Outcome()
        found = _find(args, project.task)
        adder = _Adder(project, args, outcome)
        added: list[NewCase] = []  # without their scanned headers
        cases = iter(found.cases)
        try:
            # one case at a time: its headers are released before the next is found
            while (case := next(cases, None)) is not None:
                adder.add(case)
                added.append(dataclasses.replace(case, series_info=[], plans=[]))
                del case
        finally:
            adder.images.save()
        _report(found, project.task, outcome, args)
        if not args.labels:
            _mention_labels(project, added, outcome)
    outcome.print()
    return 1 if outcome.failed else 0


def _mention_labels(project: Project, cases: list[NewCase], outcome: _Outcome) -> None:
    """Say that labels were found beside images of cases that have no imported version."""
    with_labels = [
        case
        for case in cases
        if case.labels is not None and not project.versions(case.id, kinds=("imported",))
    ]
    if with_labels:
        example = with_labels[0]
        if example.label_points is not None:  # an RSNA dataset's CSVs
            found = f"grades for {len(with_labels)} stud(ies) in {example.labels}"
        else:
            found = (
                f"labels beside {len(with_labels)} image(s) (e.g. {example.id}: {example.labels})"
            )
        outcome.notes.append(
            f"found {found}; not imported. Run add again with --labels ANNOTATOR to "
            "import them as that annotator's version of each case."
        )
