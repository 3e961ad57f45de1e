"""``export_project``: a project's corrected or final labels -> a dataset folder.

Formats: ``abdomenatlas``, ``nnunet``, ``dicom-seg``, ``monai`` (organ projects) and
``rsna`` (spine projects). Every export gets a ``provenance.json`` beside its files.

Safety rules
------------
* The export is built in a hidden staging folder next to the target and published with one
  rename when every case is written and checked; each file inside is itself written via
  temp file + rename. A failed or interrupted export leaves no partial dataset.
* An existing, non-empty target folder is refused unless ``overwrite=True`` (the old
  folder is then replaced as a whole, never mixed with new files). For nnU-Net the target
  is ``out_dir/DatasetNNN_Name`` so other datasets in ``nnUNet_raw`` are untouched.
* No patient identifiers (see :mod:`.pseudonymise`) unless ``keep_identifiers=True``; the
  identifier strings of the source DICOM headers are searched for in the text-bearing parts
  of every exported file and the export fails if one is found.
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

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..project import Project, ProjectError
from . import abdomenatlas, dicom_seg, monai_datalist, nnunet
from .errors import ExportError
from .provenance import PROVENANCE_NAME, case_provenance, file_digest, write_provenance
from .pseudonymise import find_identifiers, identifiers_of
from .reimport import check_nifti_grid
from .selection import Selection, Skipped, select_versions

FORMATS: dict[str, str] = {
    "abdomenatlas": "organs",
    "nnunet": "organs",
    "dicom-seg": "organs",
    "monai": "organs",
    "rsna": "spine",
}

#: progress(done, total, case_id) is called after each case.
Progress = Callable[[int, int, str], None]


@dataclass
class ExportResult:
    """What an export wrote."""

    root: Path
    manifest: Path
    fmt: str
    cases: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"exported {len(self.cases)} case(s) as {self.fmt} to {self.root}",
            f"provenance: {self.manifest}",
        ]
        lines += [f"skipped {s.case_id}: {s.reason}" for s in self.skipped]
        lines += self.notes
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


def _source_identifiers(project: Project, case_id: str) -> set[str]:
    """Identifier strings in the case's source DICOM headers (first file of each image)."""
    import pydicom

    headers = []
    for ref in project.case(case_id).images:
        path = project.resolve(ref.path)
        candidates = (
            [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())[:1]
        )
        for candidate in candidates:
            if str(candidate).lower().endswith((".nii", ".nii.gz")):
                continue
            try:
                headers.append(pydicom.dcmread(candidate, stop_before_pixels=True))
            except Exception:  # not DICOM: nothing to collect
                continue
    return identifiers_of(headers)


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
        ``"final"`` (latest final version per case) or ``"corrected"`` (latest final, else
        latest corrected); cases with neither are skipped and listed.
    progress
        Called as ``progress(done, total, case_id)`` after each case.
    keep_identifiers
        Keep source patient identifiers (DICOM SEG patient module, integer case ids as
        RSNA study ids); off by default.
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

    Returns
    -------
    ExportResult
        Root folder, provenance manifest, exported and skipped cases, files written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if FORMATS[fmt] != project.task:
        wanted = [f for f, task in FORMATS.items() if task == project.task]
        raise ExportError(
            f"format {fmt!r} is for {FORMATS[fmt]} projects; {project.folder.name} is a "
            f"{project.task} project: use --format {' or '.join(wanted)}."
        )
    selected, skipped = select_versions(project, status)
    root = export_root(fmt, out_dir, dataset_id, dataset_name, project)
    if root.exists() and not root.is_dir():
        raise ExportError(f"{root} exists and is a file; choose another --out folder.")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise ExportError(
            f"{root} already exists and is not empty; choose a new --out folder, or pass "
            "--overwrite to replace it."
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".partial", dir=root.parent))
    try:
        result = _export_into(
            project,
            fmt,
            stage,
            status,
            selected,
            skipped,
            progress,
            keep_identifiers=keep_identifiers,
            dataset_name=dataset_name,
            validation_fraction=validation_fraction,
            threads=threads,
            verify=verify,
        )
        _publish(stage, root)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    result.root = root
    result.manifest = root / PROVENANCE_NAME
    result.paths = [root / Path(p).relative_to(stage) for p in result.paths]
    return result


def _publish(stage: Path, root: Path) -> None:
    """Move the finished staging folder to ``root`` (replacing an old one as a whole)."""
    old = None
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        os.replace(root, old)
    try:
        os.replace(stage, root)
    except BaseException:
        if old is not None:
            os.replace(old, root)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _export_into(
    project,
    fmt,
    stage,
    status,
    selected,
    skipped,
    progress,
    *,
    keep_identifiers,
    dataset_name,
    validation_fraction,
    threads,
    verify,
):
    classes = project.classes
    counts = project.event_counts()
    result = ExportResult(
        root=stage, manifest=stage / PROVENANCE_NAME, fmt=fmt, skipped=list(skipped)
    )
    identifiers: set[str] = set()
    entries: list[dict] = []
    run = _OrganWriter(project, fmt, stage, classes, keep_identifiers, threads, verify)
    tables = None
    if fmt == "rsna":
        from .rsna import RsnaTables

        tables = RsnaTables(keep_identifiers)
    total = len(selected)
    for done, sel in enumerate(selected, start=1):
        if not keep_identifiers:
            identifiers |= _source_identifiers(project, sel.case_id)
        extra: dict = {}
        if fmt == "rsna":
            case = project.case(sel.case_id)
            extra["study_id"] = tables.add(case, project.read_grades(sel.version))
            written: list[Path] = []
        else:
            image, labels = _organ_case(project, sel)
            written = _write_organ_case(run, sel, image, labels, extra)
        result.cases.append(sel.case_id)
        result.paths.extend(written)
        entries.append(
            case_provenance(
                project,
                sel,
                {p: file_digest(stage / p) for p in _relative(written, stage)},
                counts,
                extra,
            )
        )
        if progress is not None:
            progress(done, total, sel.case_id)
    shared: list[Path] = []
    if fmt == "rsna":
        shared = tables.write(stage)
    elif fmt == "nnunet":
        name = nnunet.dataset_folder_name(1, dataset_name or project.config.name).split("_", 1)[1]
        shared = [nnunet.write_dataset_json(stage, classes, len(result.cases), name)]
    elif fmt == "monai":
        shared = [monai_datalist.write_datalist(stage, result.cases, classes, validation_fraction)]
    elif fmt == "dicom-seg" and any("image_written" in e for e in entries):
        result.notes.append(
            "cases from NIfTI got their CT written as a DICOM series "
            "(<case>/image/) for the SEG to reference"
        )
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


def _write_organ_case(run: _OrganWriter, sel, image, labels, extra: dict) -> list[Path]:
    case_id, stage = sel.case_id, run.stage
    if run.fmt == "abdomenatlas":
        written = abdomenatlas.write_case(
            image, labels, run.classes, stage / case_id, threads=run.threads
        )
    elif run.fmt == "nnunet":
        written = nnunet.write_case(image, labels, case_id, stage)
    elif run.fmt == "monai":
        written = monai_datalist.write_case(image, labels, case_id, stage)
    else:
        return _write_seg_case(run, sel, image, labels, extra)
    if run.verify:
        for path in written:
            check_nifti_grid(path, image.shape, image.affine)
    return written


def _write_seg_case(run: _OrganWriter, sel, image, labels, extra: dict) -> list[Path]:
    project, case_id = run.project, sel.case_id
    case_dir = run.stage / case_id
    written: list[Path] = []
    files = image.metadata.get("files")
    frame_numbers = image.metadata.get("frame_numbers")
    if image.metadata.get("format") == "dicom" and files:
        sop_uids = list(image.metadata["sop_instance_uids"])
    else:
        seed = f"{project.config.name}:{project.config.created_at}:{case_id}"
        files, labels = dicom_seg.write_source_series(
            image, labels, case_dir / "image", case_id, seed
        )
        import pydicom

        sop_uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
        written.extend(files)
        frame_numbers = None
        extra["image_written"] = True
    description = "Final labels" if sel.version.kind == "final" else "Corrected labels"
    seg = dicom_seg.build_segmentation(
        files,
        labels,
        run.classes,
        case_id,
        frame_numbers=frame_numbers,
        keep_identifiers=run.keep_identifiers,
        series_description=description,
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
