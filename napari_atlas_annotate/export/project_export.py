"""``export_project``: a project's corrected or final labels -> a dataset folder.

Formats: ``abdomenatlas``, ``nnunet``, ``dicom-seg``, ``monai`` (organ projects), ``rsna``
and ``rsna-submission`` (spine projects; the latter writes the grader's latest proposals as
a Kaggle ``submission.csv``, :mod:`.rsna_submission`). Every export gets a
``provenance.json`` beside its files.

Safety rules
------------
* The export is built in a hidden staging folder next to the target and published with one
  rename when every case is written and checked; each file inside is itself written via
  temp file + rename. A failed or interrupted export leaves no partial dataset; the
  staging folder of a killed one is deleted by the next export to that target, and a
  target that cannot be written is one :class:`ExportError` line (:mod:`.staging`).
* An existing, non-empty target folder is refused unless ``overwrite=True`` and it is an
  earlier export (it has a ``provenance.json``): the old export is then replaced as a
  whole, never mixed with new files; any other folder (a user's documents, a dataset) is
  never deleted. For nnU-Net the target
  is ``out_dir/DatasetNNN_Name`` so other datasets in ``nnUNet_raw`` are untouched; another
  ``DatasetNNN_*`` with the same id there is refused (nnU-Net will not run with two).
* A target that is, holds or lies inside the project folder or a source image is refused,
  with or without ``overwrite``.
* No patient identifiers (see :mod:`.pseudonymise`) unless ``keep_identifiers=True``. A
  case whose id contains an identifier string of the source DICOM headers (projects often
  name cases after the PatientID or accession number) is exported under a stable keyed
  pseudonym ``case-<9 digits>`` everywhere the export writes its id (folder and file names,
  ``provenance.json``, DICOM SEG patient module, datalists, RSNA ids); other case ids are
  written as they are (:mod:`.case_names`). The map back is *not* in the export: it goes
  into the project's audit trail (one ``export`` record per case, ``exported_as``) and the
  summary. As a last line of defence the identifier strings of every case the export
  mentions (skipped ones included) are searched for in the text-bearing parts of every
  exported file, and the export fails if one is found.
* Nothing is created when no case qualifies: :class:`ExportError` says what the project has
  (e.g. corrected labels but no final ones) and which command exports or finalizes them.
* With ``verify=True`` (default) every exported NIfTI header is read back and must carry the
  image's exact shape and affine, and every DICOM SEG is read back with highdicom and
  compared with the label slice by slice per source SOPInstanceUID.

Examples
--------
>>> result = export_project(project, "nnunet", "nnUNet_raw", status="corrected")  # doctest: +SKIP
>>> result.root.name, len(result.cases), result.manifest.name  # doctest: +SKIP
('Dataset501_Liver', 12, 'provenance.json')
"""

from __future__ import annotations

import getpass
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..case_lists import first_ids
from ..project import Project, ProjectError
from . import abdomenatlas, dicom_seg, monai_datalist, nnunet, rsna_submission, slicer
from .case_names import project_names, record_export
from .errors import ExportError
from .provenance import PROVENANCE_NAME, case_provenance, file_digest, write_provenance
from .pseudonymise import find_identifiers
from .reader_notes import write_notes
from .reimport import check_nifti_grid
from .selection import PROPOSAL_KIND, Selection, Skipped, nothing_to_export, select_versions
from .staging import (
    Stage,
    aside_name,
    recover_replaced,
    refuse_file_ancestor,
    try_lock,
    write_error,
)

FORMATS: dict[str, str] = {
    "abdomenatlas": "organs",
    "nnunet": "organs",
    "dicom-seg": "organs",
    "monai": "organs",
    "slicer": "organs",
    "rsna": "spine",
    rsna_submission.FORMAT: "spine",
}

#: More skipped cases than this are summed up per reason in the summary.
SKIPPED_LISTED = 20
#: How the summary says what such a group of skipped cases has (:attr:`Skipped.has`).
SKIPPED_HAS = {
    "labels": "annotators' labels not final yet",
    "proposal": "only a model proposal",
    "nothing": "not labelled or proposed yet",
}
#: progress(done, total, case_id) is called after each case.
Progress = Callable[[int, int, str], None]


@dataclass
class ExportResult:
    """What an export wrote.

    ``cases`` and ``skipped`` hold the project's case ids; ``names`` maps each of them to
    the name the export wrote (itself, or a pseudonym when it carries an identifier);
    ``study_ids`` (RSNA) each exported case's integer ``study_id`` in the CSVs.
    """

    root: Path
    manifest: Path
    fmt: str
    cases: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    study_ids: dict[str, int] = field(default_factory=dict)
    #: Exported cases whose label is a model proposal nobody reviewed (``--status any``),
    #: each with the model version that made it.
    unreviewed: dict[str, str | None] = field(default_factory=dict)

    @property
    def pseudonyms(self) -> dict[str, str]:
        """``{case id: exported name}`` of the cases exported under a pseudonym."""
        return {case: name for case, name in self.names.items() if name != case}

    def _skipped_lines(self) -> list[str]:
        """A line per skipped case with what to do; more than :data:`SKIPPED_LISTED` (a
        big project exporting its few final cases) are summed up per reason, with the
        first case's hint and the provenance file, which lists each."""
        if len(self.skipped) <= SKIPPED_LISTED:
            return [
                f"skipped {s.case_id}: {s.reason}" + (f"; {s.hint}" if s.hint else "")
                for s in self.skipped
            ]
        groups: dict[tuple[str, str], list[Skipped]] = {}
        for s in self.skipped:
            groups.setdefault((s.reason, s.has), []).append(s)
        lines = []
        for (reason, has), group in groups.items():
            ids = first_ids([s.case_id for s in group])
            what = f" ({SKIPPED_HAS[has]})" if has in SKIPPED_HAS else ""
            lines.append(f"skipped {len(group)} case(s), {reason}{what}: {ids}")
            if group[0].hint:
                lines.append(f"  e.g. {group[0].case_id}: {group[0].hint}")
        lines.append(f"(each skipped case and why: {self.manifest})")
        return lines

    def summary(self) -> str:
        lines = [
            f"exported {len(self.cases)} case(s) as {self.fmt} to {self.root}",
            f"provenance: {self.manifest}",
        ]
        lines += self._skipped_lines()
        lines += self.notes
        if self.unreviewed and self.fmt != rsna_submission.FORMAT:  # that one is proposals
            models = ", ".join(
                sorted({m or "an unrecorded model" for m in self.unreviewed.values()})
            )
            lines.append(
                f"{len(self.unreviewed)} of the {len(self.cases)} exported case(s) are model "
                f"proposals nobody has corrected (by {models}); provenance.json marks each "
                "case's label kind ('proposal') and model version"
            )
        if self.pseudonyms:
            lines.append(
                f"{len(self.pseudonyms)} case id(s) contain a patient identifier, so the "
                "export names them by pseudonym (this map is not in the export; the "
                "project's audit trail keeps it, action 'export'):"
            )
            lines += [f"  {case} -> {name}" for case, name in self.pseudonyms.items()]
        if self.study_ids:
            lines.append("RSNA study_id written for each case (the map back is not in the export):")
            lines += [f"  {case} -> study_id {sid}" for case, sid in self.study_ids.items()]
        return "\n".join(lines)


def export_root(
    fmt: str,
    out_dir: str | Path,
    dataset_id: int = 501,
    dataset_name: str | None = None,
    project: Project | None = None,
) -> Path:
    """The folder an export is published as (``out_dir`` itself, or for nnU-Net
    ``out_dir/DatasetNNN_Name``)."""
    out_dir = Path(out_dir)
    if fmt == "nnunet":
        name = dataset_name or (project.config.name if project else "Atlas")
        return out_dir / nnunet.dataset_folder_name(dataset_id, name)
    return out_dir


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "export"


def _relative(paths: list[Path], root: Path) -> list[str]:
    return [str(Path(p).relative_to(root)) for p in paths]


def _organ_case(project: Project, sel: Selection):
    image = project.load_image(sel.case_id, 0)
    labels = project.read_mask(sel.version)
    if labels.shape != image.shape:
        raise ExportError(
            f"case {sel.case_id}: label version {sel.version.id} has shape {labels.shape} but "
            f"the image has {image.shape}; the image changed since labelling. Re-add the case."
        )
    return image, labels


def export_project(
    project: Project,
    fmt: str,
    out_dir: str | Path,
    status: str = "final",
    progress: Progress | None = None,
    *,
    keep_identifiers: bool = False,
    overwrite: bool = False,
    dataset_id: int = 501,
    dataset_name: str | None = None,
    validation_fraction: float = 0.2,
    threads: int | None = None,
    verify: bool = True,
    actor: str | None = None,
    with_notes: bool = False,
) -> ExportResult:
    """Export the project's labels in format ``fmt`` to ``out_dir``.

    Parameters
    ----------
    project
        An open project.
    fmt
        One of :data:`FORMATS`.
    out_dir
        Target folder (for ``nnunet``: the folder that receives ``DatasetNNN_Name``).
    status
        ``"final"`` (latest final version per case), ``"corrected"`` (latest final, else
        the newest corrected or imported version) or ``"any"`` (as corrected, else the
        latest model proposal, counted in the summary as unreviewed); other cases are
        skipped and listed.
        Not used by ``rsna-submission``, which takes each case's latest proposal.
    progress
        Called as ``progress(done, total, case_id)`` after each case.
    keep_identifiers
        Keep source patient identifiers (case ids as they are even when they contain one,
        DICOM SEG patient module, integer case ids as RSNA study ids); off by default.
    overwrite
        Replace an existing non-empty target folder.
    dataset_id, dataset_name
        nnU-Net dataset number (1..999) and name (default: the project's name).
    validation_fraction
        MONAI datalist: share of cases in ``validation``.
    threads
        Writer threads for AbdomenAtlas class masks (default: CPU cores, at most 8).
    verify
        Read exported labels back and check their grid (and DICOM SEG frames).
    actor
        Who exports, for the project's audit trail (default: the login name).
    with_notes
        Also write the readers' notes of the exported cases as ``notes.csv``
        (:mod:`.reader_notes`; free text, so off by default).

    Returns
    -------
    ExportResult
        Root folder, provenance manifest, exported and skipped cases, exported names,
        files written.

    Raises
    ------
    ExportError
        Bad format or target, no case to export (nothing is created then), or an
        identifier found in the exported files.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if FORMATS[fmt] != project.task:
        wanted = [f for f, task in FORMATS.items() if task == project.task]
        raise ExportError(
            f"format {fmt!r} is for {FORMATS[fmt]} projects; {project.folder.name} is "
            f"{'an' if project.task[0] in 'aeiou' else 'a'} {project.task} project: use "
            f"--format {' or '.join(wanted)}."
        )
    if fmt == "monai" and not 0.0 <= validation_fraction < 1.0:
        raise ExportError(
            f"validation fraction {validation_fraction} is not in [0, 1): give the share of "
            "cases for the validation list, e.g. 0.2 (0: every case in training)."
        )
    if fmt == rsna_submission.FORMAT:  # the grader's proposals, whatever their status
        status = rsna_submission.STATUS
        selected, skipped = rsna_submission.select_proposals(project)
        if not selected:
            raise rsna_submission.nothing_proposed(project, skipped)
    else:
        selected, skipped = select_versions(project, status)
        if not selected:
            raise nothing_to_export(project, status)
    root = export_root(fmt, out_dir, dataset_id, dataset_name, project)
    refuse_file_ancestor(root)
    _refuse_overlap(project, root)
    if fmt == "nnunet":
        nnunet.refuse_id_clash(root.parent, root.name)
    recovered = recover_replaced(root)
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise ExportError(
                f"{root} already exists and is not empty; choose a new --out folder, or pass "
                "--overwrite to replace it (only an earlier export can be replaced)."
            )
        if not (root / PROVENANCE_NAME).is_file():
            raise ExportError(
                f"{root} is not an earlier export (it has no {PROVENANCE_NAME}), so "
                "--overwrite will not replace it: its files would be deleted. Choose a new "
                "--out folder, or empty this one yourself if its files are not needed."
            )
    actor = actor or _login_name()
    mentioned = [s.case_id for s in selected] + [s.case_id for s in skipped]
    if keep_identifiers:
        names, identifiers = {case_id: case_id for case_id in mentioned}, set()
    else:
        names, identifiers = project_names(project, mentioned, actor)
    staging = Stage.open(root)
    stage = staging.path
    try:
        result = _export_into(
            project,
            fmt,
            stage,
            status,
            selected,
            skipped,
            progress,
            names=names,
            identifiers=identifiers,
            keep_identifiers=keep_identifiers,
            dataset_name=dataset_name,
            validation_fraction=validation_fraction,
            threads=threads,
            verify=verify,
            with_notes=with_notes,
        )
        _publish(stage, root, overwrite)
    except OSError as exc:
        staging.discard()
        raise write_error(root, exc) from None
    except BaseException:
        staging.discard()
        raise
    staging.close()
    result.notes += recovered
    if staging.cleared:
        result.notes.append(
            f"deleted {len(staging.cleared)} unfinished folder(s) an interrupted export to "
            f"{root} had left beside it: {', '.join(staging.cleared)}"
        )
    result.root = root
    result.manifest = root / PROVENANCE_NAME
    result.paths = [root / Path(p).relative_to(stage) for p in result.paths]
    record_export(
        project,
        actor,
        names=names,
        fmt=fmt,
        status=status,
        root=root.resolve(),
        versions={s.case_id: s.version.id for s in selected},
        skipped={s.case_id: s.reason for s in skipped},
    )
    return result


def _refuse_overlap(project: Project, root: Path) -> None:
    """Refuse a target that is, holds or lies inside the project folder or a source image:
    an export replaces its folder as a whole (``--overwrite``), and files written into the
    project or a DICOM series folder would be taken for its own."""
    target = root.resolve()
    guarded = [("the project", project.folder.resolve())]
    for case in project.cases():
        guarded += [(f"case {case.id}'s image", project.resolve(r.path)) for r in case.images]
    for what, path in guarded:
        path = Path(path).resolve()
        if target == path:
            relation = "is"
        elif target in path.parents:
            relation = "holds"
        elif path in target.parents:
            relation = "is inside"
        else:
            continue
        raise ExportError(
            f"{root} {relation} {what} ({path}); an export must not be written over or into "
            "the project or its source images (--overwrite replaces the whole folder). "
            "Choose an --out folder outside the project and its images."
        )


def _publish(stage: Path, root: Path, overwrite: bool) -> None:
    """Move the finished staging folder to ``root`` (replacing an old one as a whole).
    ``root`` is checked again: another export or a user may have filled it meanwhile."""
    old = None
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise ExportError(
                f"{root} was filled while this export ran (another export?); it is left as "
                "it is and nothing was written. Choose a new --out folder, or pass "
                "--overwrite to replace it."
            )
        if not (root / PROVENANCE_NAME).is_file():
            raise ExportError(
                f"{root} was filled while this export ran and is not an earlier export (it "
                f"has no {PROVENANCE_NAME}), so it is left as it is and nothing was written. "
                "Choose a new --out folder."
            )
        # Locked before it moves: an export on another machine sharing this disk must see
        # the aside folder as taken, not as left by a killed export, while it is replaced.
        held = try_lock(root)
        if held is None:
            raise ExportError(
                f"another export is replacing {root} right now; nothing was written. Run "
                "this export again when it has finished."
            )
        old = aside_name(root)
        try:
            os.replace(root, old)
        except BaseException:
            os.close(held)
            raise
    try:
        os.replace(stage, root)
    except BaseException:
        if old is not None:
            os.replace(old, root)
            os.close(held)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
        os.close(held)


def _export_into(
    project,
    fmt,
    stage,
    status,
    selected,
    skipped,
    progress,
    *,
    names,
    identifiers,
    keep_identifiers,
    dataset_name,
    validation_fraction,
    threads,
    verify,
    with_notes=False,
):
    classes = project.classes
    counts = project.event_counts()
    result = ExportResult(
        root=stage,
        manifest=stage / PROVENANCE_NAME,
        fmt=fmt,
        skipped=list(skipped),
        names=dict(names),
    )
    entries: list[dict] = []
    run = _OrganWriter(project, fmt, stage, classes, keep_identifiers, threads, verify)
    tables = None
    if fmt == "rsna":
        from .rsna import RsnaTables

        tables = RsnaTables(keep_identifiers)
    elif fmt == rsna_submission.FORMAT:
        tables = rsna_submission.SubmissionTable(keep_identifiers)
    total = len(selected)
    for done, sel in enumerate(selected, start=1):
        name = names[sel.case_id]
        extra: dict = {}
        if fmt == "rsna":
            case = project.case(sel.case_id)
            resolved = [replace(r, path=str(project.resolve(r.path))) for r in case.images]
            case = replace(case, images=resolved)  # its headers are read
            extra["study_id"] = tables.add(case, project.read_grades(sel.version), name)
            result.study_ids[sel.case_id] = extra["study_id"]
            written: list[Path] = []
        elif fmt == rsna_submission.FORMAT:
            extra["study_id"] = tables.add(project, sel, name)
            result.study_ids[sel.case_id] = extra["study_id"]
            written = []
        else:
            image, labels = _organ_case(project, sel)
            written = _write_organ_case(run, sel, name, image, labels, extra)
        result.cases.append(sel.case_id)
        if sel.version.kind == PROPOSAL_KIND:
            result.unreviewed[sel.case_id] = sel.version.model_version
        result.paths.extend(written)
        entries.append(
            case_provenance(
                project,
                sel,
                {p: file_digest(stage / p) for p in _relative(written, stage)},
                counts,
                extra,
                name=name,
            )
        )
        if progress is not None:
            progress(done, total, sel.case_id)
    shared: list[Path] = []
    if fmt in ("rsna", rsna_submission.FORMAT):
        shared = tables.write(stage)
    elif fmt == "nnunet":
        name = nnunet.dataset_folder_name(1, dataset_name or project.config.name).split("_", 1)[1]
        shared = [nnunet.write_dataset_json(stage, classes, len(result.cases), name)]
    elif fmt == "monai":
        exported = [names[c] for c in result.cases]
        shared = [monai_datalist.write_datalist(stage, exported, classes, validation_fraction)]
    elif fmt == "dicom-seg" and any("image_written" in e for e in entries):
        result.notes.append(
            "cases from NIfTI got their CT written as a DICOM series "
            "(<case>/image/) for the SEG to reference"
        )
    if with_notes:
        rsna_ids = fmt in ("rsna", rsna_submission.FORMAT)
        keys = {c: result.study_ids[c] if rsna_ids else names[c] for c in result.cases}
        known = () if keep_identifiers else identifiers
        shared.append(write_notes(stage, project, keys, known, study_ids=rsna_ids))
    result.paths.extend(shared)
    write_provenance(
        stage,
        project,
        fmt=fmt,
        status=status,
        keep_identifiers=keep_identifiers,
        cases=entries,
        skipped=skipped,
        shared_files={p: file_digest(stage / p) for p in _relative(shared, stage)},
        notes=result.notes,
        names=names,
    )
    if not keep_identifiers and identifiers:
        hits = find_identifiers(stage, identifiers)
        if hits:
            where = ", ".join(sorted({path for path, _ in hits})[:5])
            raise ExportError(
                f"patient identifiers from the source DICOM were found in exported files "
                f"({where}); nothing was exported. Report this as a bug; use "
                "--keep-identifiers only if the dataset may carry them."
            )
    return result


@dataclass(frozen=True)
class _OrganWriter:
    """What every organ case of one export is written with."""

    project: Project
    fmt: str
    stage: Path
    classes: list[str]
    keep_identifiers: bool
    threads: int | None
    verify: bool


def _write_organ_case(run: _OrganWriter, sel, name: str, image, labels, extra: dict) -> list[Path]:
    """Write one case under its exported ``name``."""
    stage = run.stage
    if run.fmt == "abdomenatlas":
        written = abdomenatlas.write_case(
            image, labels, run.classes, stage / name, threads=run.threads
        )
    elif run.fmt == "nnunet":
        written = nnunet.write_case(image, labels, name, stage)
    elif run.fmt == "monai":
        written = monai_datalist.write_case(image, labels, name, stage)
    elif run.fmt == "slicer":
        written = slicer.write_case(image, labels, run.classes, stage / name)
    else:
        return _write_seg_case(run, sel, name, image, labels, extra)
    if run.verify:
        for path in written:
            if path.name == slicer.SEGMENTATION_NAME:
                slicer.check_segmentation(path, labels, image.affine, run.classes)
            else:
                check_nifti_grid(path, image.shape, image.affine)
    return written


def _write_seg_case(run: _OrganWriter, sel, name: str, image, labels, extra: dict) -> list[Path]:
    project = run.project
    case_dir = run.stage / name
    written: list[Path] = []
    files = image.metadata.get("files")
    frame_numbers = image.metadata.get("frame_numbers")
    if image.metadata.get("format") == "dicom" and files:
        sop_uids = list(image.metadata["sop_instance_uids"])
    else:
        seed = f"{project.config.name}:{project.config.created_at}:{name}"
        files, labels = dicom_seg.write_source_series(image, labels, case_dir / "image", name, seed)
        import pydicom

        sop_uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
        written.extend(files)
        frame_numbers = None
        extra["image_written"] = True
    proposal = sel.version.kind == PROPOSAL_KIND
    description = f"{sel.version.kind.capitalize()} labels"  # Final, Corrected, Imported
    if proposal:
        description = "AI proposal, not reviewed"
    seg = dicom_seg.build_segmentation(
        files,
        labels,
        run.classes,
        name,
        frame_numbers=frame_numbers,
        keep_identifiers=run.keep_identifiers,
        series_description=description,
        model_version=(sel.version.model_version or "unrecorded model") if proposal else None,
    )
    path = dicom_seg.write_segmentation(seg, case_dir / dicom_seg.SEG_NAME)
    written.append(path)
    if run.verify and len(set(sop_uids)) == len(sop_uids):
        dicom_seg.check_segmentation(path, sop_uids, np.asarray(labels))
    extra["source_series_uid"] = (
        image.metadata.get("series_uid") if "image_written" not in extra else None
    )
    return written


__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "ProjectError",
    "export_project",
    "export_root",
]
