"""Bring labels made elsewhere into a project as an annotator's ``imported`` version.

Masks: a multi-label NIfTI (values = the project's class ids, unless the file belongs to an
nnU-Net or Decathlon dataset whose ``dataset.json`` names its values: those are mapped to the
project's classes by name), or a folder of per-class NIfTI files named ``<class>.nii.gz`` as
AbdomenAtlas and TotalSegmentator write them (where two masks claim a voxel it goes to the
smaller structure, and the import says how many voxels and which classes:
:func:`merge_class_masks`).
A DICOM SEG of the case's DICOM series (as ``export --format dicom-seg`` writes it) is read
with highdicom, its segments mapped to the project's classes by their SegmentLabel; a 3D
Slicer ``.seg.nrrd`` with slicerio, its segments mapped by name (cropped boxes put in place,
overlapping segments merged as per-class masks are).
Grades: an RSNA ``train.csv`` row (plus optional ``train_label_coordinates.csv`` points).
Every check runs before anything is written, so a refused import leaves the project as it was.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pydicom

from ..io import VolumeLoadError, VolumeLoadWarning
from ..io.nifti import is_nifti_path, load_nifti
from .errors import ProjectError
from .nifti_folders import dataset_label_names
from .records import LabelVersion
from .slicer_segmentations import is_slicer_segmentation, read_segments
from .store import Project

if TYPE_CHECKING:
    from ..volume import Volume

GRID_TOLERANCE_MM = 1e-3


def _on_image_grid(project: Project, case_id: str, path: Path, vol) -> np.ndarray:
    """``vol``'s voxels on the case's image grid, or :class:`ProjectError` saying why not.

    ``vol`` is anything with ``array`` and ``(z, y, x) -> RAS`` ``affine``.
    """
    img_shape, img_affine = project.grid(case_id)
    if vol.metadata.get("placeholder_geometry") and not _same_grid(
        vol.shape, vol.affine, img_shape, img_affine
    ):
        # nibabel's fall-back grid is a guess: taken as geometry it can flip the label
        raise ProjectError(
            f"{path}: the label file carries no orientation (qform_code and sform_code are "
            f"0), so where its voxels lie on case {case_id}'s image is not known. Nothing was "
            "imported. Save the label with its image's affine (nibabel: "
            "nib.Nifti1Image(data, image.affine)), as the tool that drew it should have."
        )
    return on_image_grid(np.asarray(vol.array), vol.affine, img_shape, img_affine, path, case_id)


def on_image_grid(
    data: np.ndarray, affine, img_shape, img_affine, path: Path, case_id: str, *, box=False
) -> np.ndarray:
    """``data`` (on the grid of ``affine``) placed on the image grid, exactly, or
    :class:`ProjectError` saying why not.

    A label stored in another voxel order (axes swapped or flipped, e.g. saved as RAS by a
    tool, the image LPS) covers the same voxel centres: its array is reordered. With
    ``box``, a label stored as a box of the image's lattice (3D Slicer saves a segmentation
    cropped to its segments) is put in place, as long as nothing labelled lies outside the
    image; a label file of another format must cover the whole image (a smaller one was
    likely drawn on a cropped image, whose missing part is not known to be background).
    Anything else off the image's grid (spacing, directions, origin between voxel centres)
    is refused, never resampled.
    """
    affine = np.asarray(affine, float)
    if _same_grid(data.shape, affine, img_shape, img_affine):
        return data
    placed = _placed(data, affine, img_shape, img_affine, box)
    if placed is not None:
        if placed[1]:
            raise ProjectError(
                f"{path}: {placed[1]} labelled voxel(s) lie outside case {case_id}'s image "
                f"{tuple(img_shape)}: the label was drawn on another (larger) image. Nothing "
                "was imported; label the case's own image."
            )
        return placed[0]
    if tuple(data.shape) != tuple(img_shape):
        raise ProjectError(
            f"{path}: label shape {tuple(data.shape)} does not match case {case_id}'s image "
            f"{tuple(img_shape)}. Nothing was imported; resample the label onto the image "
            "(nearest neighbour)."
        )
    corners = np.array([[z, y, x, 1] for z in (0, 1) for y in (0, 1) for x in (0, 1)], float)
    corners[:, :3] *= np.asarray(img_shape) - 1
    off = float(np.linalg.norm((corners @ (affine - img_affine).T)[:, :3], axis=1).max())
    # in voxels of the image, axis by axis (a half-slice shift is 0.5 voxel on thick slices)
    to_image = np.linalg.solve(img_affine, affine) - np.eye(4)
    voxels = float(np.abs((corners @ to_image.T)[:, :3]).max())
    how = (
        "it would not overlay"
        if voxels >= 0.5
        else "it is off by a fraction of a voxel, as when a tool rewrote the header"
    )
    raise ProjectError(
        f"{path}: label grid differs from case {case_id}'s image: its voxel centres lie up to "
        f"{off:.2g} mm ({voxels:.2g} voxel) from the image's (allowed "
        f"{GRID_TOLERANCE_MM:g} mm); {how}. Nothing was imported. If the label was drawn on "
        "this image and only its header differs, save it with the image's affine (nibabel: "
        "nib.Nifti1Image(data, image.affine)); otherwise resample it onto the image (nearest "
        "neighbour)."
    )


def _same_grid(shape, affine, img_shape, img_affine) -> bool:
    return tuple(shape) == tuple(img_shape) and np.allclose(
        affine, img_affine, atol=GRID_TOLERANCE_MM
    )


def _placed(data: np.ndarray, affine: np.ndarray, img_shape, img_affine, box: bool):
    """``(data on the image grid, labelled voxels left outside it)`` when every voxel
    centre of ``data`` is one of the image's lattice (axes in any order and direction;
    with ``box``, also a box of it a whole number of voxels away); ``None`` otherwise."""
    to_image = np.linalg.solve(img_affine, affine)  # label voxel -> image voxel
    signs = np.round(to_image[:3, :3])
    if not (
        np.allclose(to_image[:3, :3], signs, atol=1e-3)
        and np.all(np.abs(signs).sum(axis=0) == 1)
        and np.all(np.abs(signs).sum(axis=1) == 1)
    ):
        return None
    order = [int(np.flatnonzero(signs[i])[0]) for i in range(3)]  # image axis i <- label axis
    moved = np.transpose(data, order)
    index = np.eye(4)  # moved (image-ordered) voxel index -> label voxel index
    index[:, :3] = 0
    for i, j in enumerate(order):
        if signs[i, j] < 0:
            moved = np.flip(moved, axis=i)
            index[j, i], index[j, 3] = -1, data.shape[j] - 1
        else:
            index[j, i] = 1
    start = np.round((to_image @ index)[:3, 3]).astype(int)  # image voxel of moved[0, 0, 0]
    shift = np.eye(4)
    shift[:3, 3] = start
    if not np.allclose(affine, img_affine @ shift @ np.linalg.inv(index), atol=GRID_TOLERANCE_MM):
        return None
    if tuple(moved.shape) == tuple(img_shape) and not start.any():
        return np.ascontiguousarray(moved), 0
    if not box:
        return None
    out = np.zeros(tuple(img_shape), moved.dtype)
    lo = np.maximum(start, 0)
    hi = np.minimum(start + moved.shape, img_shape)
    if np.any(hi <= lo):
        return out, int(np.count_nonzero(moved))
    inside = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
    out[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = moved[inside]
    return out, int(np.count_nonzero(moved)) - int(np.count_nonzero(moved[inside]))


def _load(path: Path):
    try:
        with warnings.catch_warnings():  # a label without orientation is refused, not warned
            warnings.simplefilter("ignore", VolumeLoadWarning)
            return load_nifti(path)
    except VolumeLoadError as exc:
        raise ProjectError(str(exc)) from exc


def _mask(path: Path, data: np.ndarray) -> np.ndarray:
    """A per-class mask file's voxels as a boolean mask: the file must hold 0 and at most
    one other value (1, 255, True: tools differ), never a probability map or several labels."""
    values = np.unique(data)
    if values.size > 2 or values.size == 2 and values[0] != 0:
        shown = ", ".join(f"{v:g}" for v in values[:6].tolist())
        more = f" ... ({values.size} values)" if values.size > 6 else ""
        if np.issubdtype(values.dtype, np.floating) and not np.all(np.mod(values, 1) == 0):
            what = (
                "it looks like a probability map, not a mask; threshold it (e.g. at 0.5) "
                "and save it as 0/1"
            )
        else:
            what = (
                "it holds several labels; save one 0/1 mask per class, or import it as a "
                "multi-label map with 'atlas-annotate import'"
            )
        raise ProjectError(
            f"{path}: a per-class mask holds 0 and one other value, but this one has values "
            f"{shown}{more}: {what}. Nothing was imported."
        )
    return data != 0


@dataclass(frozen=True)
class MaskOverlaps:
    """Voxels that more than one per-class mask claims, and who got them.

    Attributes
    ----------
    voxels
        Voxels claimed by two or more classes.
    crowded
        Of those, the voxels claimed by three or more.
    pairs
        ``(class a, class b, voxels both claim, class given them)``, most voxels first.
    """

    voxels: int
    crowded: int
    pairs: tuple[tuple[str, str, int, str], ...]

    def summary(self, limit: int = 3) -> str:
        """One line: how many voxels, the ``limit`` largest pairs and who got them."""
        shown = "; ".join(f"{a} & {b} {n:,}, to {winner}" for a, b, n, winner in self.pairs[:limit])
        more = len(self.pairs) - limit
        more = f"; {more} more pair(s)" if more > 0 else ""
        crowded = f", {self.crowded:,} of them by three or more" if self.crowded else ""
        return (
            f"{self.voxels:,} voxel(s) claimed by more than one class mask{crowded} "
            f"({shown}{more}); {OVERLAP_RULE}"
        )


#: How :func:`merge_class_masks` settles a voxel two masks claim, in messages.
OVERLAP_RULE = "each went to the smaller structure"


def merge_class_masks(
    project: Project, case_id: str, files: dict[str, Path]
) -> tuple[np.ndarray, MaskOverlaps | None]:
    """One label map from per-class 0/1 masks (``{class name: file}``) on the case's grid.

    Masks made independently (AbdomenAtlas' and TotalSegmentator's, one model per organ)
    overlap slightly where organs touch. A voxel claimed by several classes goes to the
    *smaller structure*: the class whose own mask has the fewest voxels (ties: the class
    earlier in the project's class order). A disputed boundary voxel is a negligible part
    of a large organ but a visible bite out of a small one, and small structures lie in or
    against large ones (the gallbladder in the liver's fossa, an adrenal gland on its
    kidney, vessels through the pancreas), so this keeps each small structure whole, as a
    radiologist reads them, whatever order the files are read in. The import goes on; what
    was disputed is returned so that it can be said and kept with the version.

    Returns
    -------
    labels, overlaps
        The label map, and the voxels claimed twice (``None`` when masks do not overlap).
    """
    masks = (
        (name, _mask(path, _on_image_grid(project, case_id, path, _load(path))))
        for name, path in files.items()
    )
    return merge_masks(project.classes, masks)


def merge_masks(classes: list[str], masks) -> tuple[np.ndarray, MaskOverlaps | None]:
    """One label map from ``(class name, boolean mask)`` pairs, all on one grid (the rule
    and the result of :func:`merge_class_masks`); a class may come more than once."""
    labels = None
    size = np.zeros(len(classes) + 1, np.int64)  # own mask voxels, per class id
    claimed: list[np.ndarray] = []  # flat voxel index * (classes + 1) + class id
    stride = len(classes) + 1
    for name, mask in masks:
        cid = classes.index(name) + 1
        if labels is None:
            labels = np.zeros(mask.shape, np.uint8 if len(classes) < 256 else np.uint16)
        size[cid] += np.count_nonzero(mask)
        held = labels[mask]
        disputed = (held != 0) & (held != cid)  # a class may come twice
        if disputed.any():
            where = np.flatnonzero(mask)[disputed]
            holders = held[disputed].astype(np.int64)
            claimed += [where * stride + holders, where * stride + cid]
            wins = (size[cid] < size[holders]) | ((size[cid] == size[holders]) & (cid < holders))
            labels.reshape(-1)[where[wins]] = cid
        labels[mask & (labels == 0)] = cid
    if not claimed:
        return labels, None
    keys = np.unique(np.concatenate(claimed))
    voxel, cls = keys // stride, keys % stride
    _, per_voxel = np.unique(voxel, return_counts=True)
    by_class = {int(c): voxel[cls == c] for c in np.unique(cls)}
    pairs = []
    for a, b in itertools.combinations(sorted(by_class), 2):
        n = np.intersect1d(by_class[a], by_class[b], assume_unique=True).size
        if n:
            winner = min((a, b), key=lambda c: (size[c], c))
            pairs.append((classes[a - 1], classes[b - 1], int(n), classes[winner - 1]))
    pairs.sort(key=lambda pair: -pair[2])
    overlaps = MaskOverlaps(per_voxel.size, int((per_voxel > 2).sum()), tuple(pairs))
    return labels, overlaps


def read_mask_labels(
    project: Project, case_id: str, source: Path, image: Volume | None = None
) -> tuple[np.ndarray, MaskOverlaps | None]:
    """A label map on the case's grid from a multi-label file, a per-class folder or a
    DICOM SEG, and the voxels the masks of a per-class folder disputed
    (:func:`merge_class_masks`; ``None`` for other sources). ``image``: the case's first
    image as the caller has it (see :func:`read_segmentation`)."""
    classes = project.classes
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if is_nifti_path(p))
        if not files:
            raise ProjectError(f"{source}: no .nii/.nii.gz files in this folder.")
        names = {p.name.split(".nii")[0]: p for p in files}
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise ProjectError(
                f"{source}: unknown class name(s) {unknown}; this project's classes are "
                f"{classes}. Rename the files or create the project with --classes. "
                "Nothing was imported."
            )
        return merge_class_masks(project, case_id, names)
    if is_slicer_segmentation(source):
        return _slicer_labels(project, case_id, source)
    if not is_nifti_path(source):
        if pydicom.misc.is_dicom(source):
            return read_segmentation(project, case_id, source, image), None
        raise ProjectError(
            f"{source}: expected a NIfTI label file (.nii, .nii.gz), a folder of "
            "<class>.nii.gz masks, or a DICOM SEG file. Nothing was imported."
        )
    data = _on_image_grid(project, case_id, source, _load(source))
    if np.issubdtype(data.dtype, np.floating):
        fractional = data[np.mod(data, 1) != 0]
        if fractional.size:
            raise ProjectError(
                f"{source}: {fractional.size} voxel(s) hold label values that are not whole "
                f"numbers (e.g. {float(fractional[0]):g}); a label map holds class numbers. "
                "Was it resampled with linear interpolation? Resample it with nearest "
                "neighbour (or round it) and import it again. Nothing was imported."
            )
        data = data.astype(np.int64)
    if data.size and data.min() < 0:
        raise ProjectError(
            f"{source}: holds negative label values (down to {int(data.min())}); a label map "
            "holds 0 (background) and class numbers. Nothing was imported."
        )
    named = dataset_label_names(source)
    if named is not None:
        return _by_name(data, classes, source, *named), None
    if data.size and data.max() > len(classes):
        raise ProjectError(
            f"{source}: label values 0..{int(data.max())} fall outside the project's classes "
            f"0..{len(classes)} ({', '.join(classes)}): the file numbers more classes than the "
            "project has. Nothing was imported; create the project with --classes naming the "
            "file's classes in the order of their values, or import a folder of "
            "<class>.nii.gz masks."
        )
    return data.astype(np.uint8 if len(classes) < 256 else np.uint16), None


def _slicer_labels(
    project: Project, case_id: str, source: Path
) -> tuple[np.ndarray, MaskOverlaps | None]:
    """A 3D Slicer ``.seg.nrrd`` as a label map on the case's grid: each segment is the
    project's class of its name (case, spaces and hyphens aside); its box is placed on
    the image's lattice; overlapping segments are merged as per-class masks are."""
    affine, segments = read_segments(source)
    classes = project.classes
    index = {_class_key(c): c for c in classes}
    foreign = [name for name, _ in segments if _class_key(name) not in index]
    if foreign:
        raise ProjectError(
            f"{source}: segment(s) {', '.join(repr(n) for n in foreign)} are not classes of "
            f"this project ({', '.join(classes)}). Nothing was imported; rename the segments "
            "in Slicer's Segment Editor to the project's class names, or create the project "
            "with --classes naming them."
        )
    img_shape, img_affine = project.grid(case_id)
    placed = (
        (
            index[_class_key(name)],
            on_image_grid(mask, affine, img_shape, img_affine, source, case_id, box=True),
        )
        for name, mask in segments
    )
    return merge_masks(classes, placed)


def read_segmentation(
    project: Project, case_id: str, source: Path, image: Volume | None = None
) -> np.ndarray:
    """A label map on the case's grid from a DICOM SEG that references its DICOM slices.

    Parameters
    ----------
    image
        The case's first image as the caller has it already: loaded, or only its grid
        (:meth:`~..io.dicom.SeriesPlan.grid`, no pixels read), whose shape and metadata
        (``format``, ``series_uid``, ``sop_instance_uids`` in z order) place the frames.
        Without it the case's DICOM series is planned from its headers
        (:func:`planned_first_image`).
    """
    import highdicom as hd

    image = planned_first_image(project, case_id) if image is None else image
    uids = image.metadata.get("sop_instance_uids") or []
    try:
        dataset = pydicom.dcmread(source)
        _reference_source_slices(dataset, image.metadata.get("series_uid"), uids)
        seg = hd.seg.Segmentation.from_dataset(dataset, copy=False)
    except Exception as exc:  # pydicom/highdicom raise several types for other objects
        raise ProjectError(
            f"{source}: not a DICOM SEG ({exc}); give the segmentation object, not a slice of "
            "the image. Nothing was imported."
        ) from exc
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    if image.metadata.get("format") != "dicom" or not referenced & set(uids):
        raise ProjectError(
            f"{source}: this DICOM SEG references none of case {case_id}'s image slices, so "
            "its frames cannot be placed. Nothing was imported; import it into the case "
            "added from the DICOM series it references."
        )
    names = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    labels = np.zeros(image.shape, np.uint16)
    for z, uid in enumerate(uids):
        if uid in referenced:
            labels[z] = seg.get_pixels_by_source_instance(
                [uid], combine_segments=True, skip_overlap_checks=True
            )[0]
    return _by_name(labels, project.classes, source, "its SegmentSequence", names)


def planned_first_image(project: Project, case_id: str) -> Volume:
    """The case's first image as planned from its DICOM headers: its grid and slice UIDs,
    exactly as :func:`~..io.dicom.load_dicom` orders them, no pixels read (a 300-slice CT
    series: 0.4-0.6 s instead of 0.9-1.1 s, JPEG 2000 about 8 s). Remembered as the case's
    grid. A NIfTI image, or one that does not plan (missing, broken), is loaded, so that
    :meth:`Project.load_image` says what is wrong with it."""
    from ..io.dicom import plan_dicom

    ref = project.case(case_id).images[0]
    path = project.resolve(ref.path)
    if not path.exists() or is_nifti_path(path):
        return project.load_image(case_id, 0)
    try:
        grid = plan_dicom(path, ref.series, ref.stack).grid()
    except VolumeLoadError:
        return project.load_image(case_id, 0)
    project.remember_grid(case_id, grid)
    return grid


def _reference_source_slices(dataset, series_uid: str | None, image_uids: list[str]) -> None:
    """Give a SEG without ReferencedSeriesSequence one naming the image slices its frames
    were drawn on.

    The sequence is type 1C and some tools leave it out, but each frame still names its
    source slice (per frame, DerivationImageSequence > SourceImageSequence); highdicom
    places frames only through the referenced series, so the slices of the case's series
    that the frames name are listed there. A SEG whose frames name none of them is left as
    it is (and refused as referencing none of the case's slices).
    """
    if "ReferencedSeriesSequence" in dataset or not series_uid:
        return
    in_series = set(image_uids)
    named: dict[str, str] = {}
    for frame in dataset.get("PerFrameFunctionalGroupsSequence", []):
        for derivation in frame.get("DerivationImageSequence", []):
            for item in derivation.get("SourceImageSequence", []):
                uid = str(item.get("ReferencedSOPInstanceUID", ""))
                if uid in in_series and "ReferencedSOPClassUID" in item:
                    named[uid] = item.ReferencedSOPClassUID
    if not named:
        return
    instances = []
    for uid, sop_class in named.items():
        instance = pydicom.Dataset()
        instance.ReferencedSOPClassUID = sop_class
        instance.ReferencedSOPInstanceUID = uid
        instances.append(instance)
    series = pydicom.Dataset()
    series.SeriesInstanceUID = series_uid
    series.ReferencedInstanceSequence = pydicom.Sequence(instances)
    dataset.ReferencedSeriesSequence = pydicom.Sequence([series])


def _class_key(name: str) -> str:
    """A class name without case, spaces or hyphens: ``Gall bladder`` is ``gall_bladder``."""
    return "_".join(name.lower().replace("-", " ").split())


def _by_name(
    data: np.ndarray, classes: list[str], source: Path, dataset, names: dict[int, str]
) -> np.ndarray:
    """``data`` numbered the dataset's way (``names``, from ``dataset``: a dataset.json or
    a SEG's segments) renumbered as the project's classes."""
    index = {_class_key(c): i for i, c in enumerate(classes, start=1)}
    present = {int(v) for v in np.unique(data)} - {0}
    undeclared = sorted(present - set(names))
    if undeclared:
        raise ProjectError(
            f"{source}: holds label value(s) {undeclared} that {dataset} does not name "
            f"(it names {dict(sorted(names.items()))}). Fix the labels or the dataset.json. "
            "Nothing was imported."
        )
    foreign = {v: n for v, n in sorted(names.items()) if _class_key(n) not in index}
    if foreign:
        listed = ", ".join(f"{n!r} (value {v})" for v, n in foreign.items())
        raise ProjectError(
            f"{source}: {dataset} names label(s) {listed} that are not classes of this project "
            f"({', '.join(classes)}). Nothing was imported; create the project with --classes "
            "naming every class of the dataset to import them all."
        )
    lookup = np.zeros(max(names) + 1, np.uint16)
    for value, name in names.items():
        lookup[value] = index[_class_key(name)]
    return lookup[data].astype(np.uint8 if len(classes) < 256 else np.uint16)


def pseudonymised_export_hint(csv: Path) -> str:
    """A sentence for an error about the ids in ``csv`` when the folder holding it is an
    ``atlas-annotate export --format rsna`` whose ids are pseudonyms (its
    ``provenance.json`` says so); empty otherwise.

    Such an export names no study or series as the project does: its study_id and
    series_id are keyed pseudonyms (:mod:`~..export.pseudonymise`), and the map back is
    kept in the project's audit trail, never in the export.
    """
    import json

    provenance = Path(csv).parent / "provenance.json"
    try:
        said = json.loads(provenance.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(said, dict) or said.get("identifiers") != "pseudonymised":
        return ""
    if not str(said.get("format", "")).startswith("rsna"):
        return ""
    return (
        f" {provenance} says these CSVs are a pseudonymised 'atlas-annotate export --format "
        "rsna': their study_id and series_id are pseudonyms, not the ids of the study and its "
        "series. Export again with --keep-identifiers to keep the real ids, and import that."
    )


def read_grade_sheet_json(source: Path):
    """A GradeSheet from a project's own grades file (a version ``atlas-annotate history``
    lists): its grades and points; a model's probabilities are not a reader's and are left."""
    from ..grade_sheet import GradeSheet

    try:
        sheet = GradeSheet.from_json(source.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ProjectError(
            f"{source}: not a grade sheet of a project ({exc}). Give a version file that "
            "`atlas-annotate history` lists, or RSNA grades as a train.csv. Nothing was "
            "imported."
        ) from None
    sheet.probabilities.clear()
    return sheet


def read_grade_sheet(
    source: Path,
    study_id: int | None,
    points: Path | None = None,
    case_id: str | None = None,
    tables: tuple[dict, dict] | None = None,
):
    """A GradeSheet from one study of an RSNA train.csv (and its coordinates).

    Without ``study_id`` the CSV's only study is taken, else the study whose id is
    ``case_id`` (RSNA cases are usually named by their study id). ``tables``: the two
    CSVs as read already (``read_grades_csv(source)``, and ``read_coordinates_csv(points)``
    by study_id), for a caller importing many studies.
    """
    from ..grade_sheet import GradeSheet, LevelPoint
    from ..rsna_csv import NotTextError
    from ..spine_grades import parse_column, read_coordinates_csv, read_grades_csv

    try:
        rows = read_grades_csv(source) if tables is None else tables[0]
    except (UnicodeDecodeError, NotTextError):
        raise ProjectError(
            f"{source}: not a CSV text file. A spine project imports grades: an RSNA "
            "train.csv-shaped CSV (its coordinates CSV with --points), or a grades .json "
            "version file as `atlas-annotate history` lists them. Nothing was imported."
        ) from None
    numbered = case_id is not None and case_id.isdigit()  # named by its RSNA study_id
    if study_id is None:
        if numbered and int(case_id) in rows:
            study_id = int(case_id)
        elif len(rows) == 1 and not numbered:
            study_id = next(iter(rows))
        elif len(rows) == 1:  # another study's grades: refused unless asked for
            only = next(iter(rows))
            raise ProjectError(
                f"{source}: holds study_id {only}, but case {case_id} is study {case_id}. "
                f"If these are the case's grades all the same, pass --study-id {only}. "
                "Nothing was imported." + pseudonymised_export_hint(source)
            )
        else:
            raise ProjectError(
                f"{source}: holds {len(rows)} studies and none has the case's id "
                f"{case_id!r} as study_id; pass --study-id to pick one. Nothing was imported."
                + pseudonymised_export_hint(source)
            )
    if study_id not in rows:
        raise ProjectError(
            f"{source}: no study_id {study_id}; found {sorted(rows)[:10]}..."
            + pseudonymised_export_hint(source)
        )
    sheet = GradeSheet()
    for column, grade in rows[study_id].items():
        sheet.set_grade(*parse_column(column), grade)
    if points is not None:
        try:
            found = read_coordinates_csv(points) if tables is None else tables[1].get(study_id, [])
        except (UnicodeDecodeError, NotTextError):
            raise ProjectError(
                f"{points}: not a CSV text file; --points takes RSNA's "
                "train_label_coordinates.csv. Nothing was imported."
            ) from None
        mine = [p for p in found if p.study_id == study_id]
        if tables is None and not mine:  # a points file given for this import says nothing
            studies = sorted({p.study_id for p in found})
            raise ProjectError(
                f"{points}: no points of study_id {study_id} (its studies: "
                f"{', '.join(map(str, studies[:10])) or 'none'}"
                f"{' ...' if len(studies) > 10 else ''}). Give the coordinates CSV of this "
                "study, or leave --points out to import the grades alone. Nothing was "
                "imported."
            )
        for p in mine:
            sheet.set_point(
                p.condition, p.level, LevelPoint(str(p.series_id), p.instance_number, p.x, p.y)
            )
    return sheet


@dataclass(frozen=True)
class _CaseSeries:
    """One image of a case as a point may name it: its description, the other names its
    series goes by (folder, SeriesNumber, UID) and its slices' InstanceNumbers (None when
    the headers cannot say: NIfTI, multi-frame files, numbers missing)."""

    description: str
    aliases: tuple[str, ...]
    instances: frozenset[int] | None


def _case_series(project: Project, case_id: str, scans: dict) -> list[_CaseSeries]:
    """The case's images as :class:`_CaseSeries`, from the headers (``scans`` caches each
    path's scan: a caller that scanned already reads nothing again)."""
    from ..io import VolumeLoadError
    from ..io.dicom import select_series
    from .series_names import series_names

    out = []
    for ref in project.case(case_id).images:
        path = project.resolve(ref.path)
        names = series_names(path, ref.series, scans)  # fills scans[str(path)]
        instances = None
        try:
            info = select_series(scans[str(path)], path, ref.series)
        except (KeyError, VolumeLoadError):
            info = None
        if info is not None and info.n_frames == len(info.files) == len(info.headers):
            numbers = [ds.get("InstanceNumber") for ds in info.headers]
            if all(n is not None for n in numbers):
                instances = frozenset(int(n) for n in numbers)
        out.append(_CaseSeries(ref.description or "", tuple(names.all()), instances))
    return out


def points_named_by_description(project: Project, case_id: str, sheet, scans: dict | None = None):
    """A copy of ``sheet`` whose points name the case's series by description.

    RSNA's coordinates name a series by ``series_id``: the name of its folder, which for a
    study added as a whole folder is no name the case's images carry. Each point naming a
    series by folder name, SeriesNumber or SeriesInstanceUID (read from the headers) is
    renamed to that image's description; other points are kept as they are.
    """
    import dataclasses

    names: dict[str, str] = {}
    scans = {} if scans is None else scans  # {path: list_series(path)}, filled by a caller
    for series in _case_series(project, case_id, scans):
        if not series.description:
            continue
        for alias in series.aliases:
            if alias != series.description:
                names.setdefault(alias, series.description)
    out = dataclasses.replace(sheet, points=dict(sheet.points))
    for cell, point in sheet.points.items():
        if point.series in names:
            out.points[cell] = dataclasses.replace(point, series=names[point.series])
    return out


def check_points(
    project: Project, case_id: str, sheet, source: Path, scans: dict | None = None
) -> None:
    """Refuse points the case's images cannot hold, before anything is stored.

    A point must name one of the case's series (by description, or by folder name,
    SeriesNumber or UID) and a slice of it: an InstanceNumber the series has (any of its
    stacks, for a series acquired as several). Such a point could never be shown, graded
    on or exported against its image; RSNA's coordinates name the series' folder, so a
    series the study folder lacks, or one its series CSV does not name, is found here.

    Raises
    ------
    ProjectError
        Naming each bad point (condition, level, series, instance), what the series holds,
        and what to fix in ``source``.
    """
    from ..spine_grades import CONDITION_DISPLAY, LEVEL_DISPLAY

    series = _case_series(project, case_id, {} if scans is None else scans)
    named = sorted({s.description for s in series if s.description})
    instances: dict[str, set[int] | None] = {}
    folder: dict[str, str] = {}  # description -> a name the source may use (RSNA: folder)
    for s in series:
        for name in (s.description, *s.aliases):
            if not name:
                continue
            if s.instances is None or instances.get(name, set()) is None:
                instances[name] = None
            else:
                instances[name] = instances.get(name, set()) | s.instances
        if s.description and s.aliases and s.aliases[0] != s.description:
            folder.setdefault(s.description, s.aliases[0])
    unnamed = {a for s in series if not s.description for a in s.aliases}
    wrong: dict[str, list[str]] = {}  # what is wrong -> the points it is wrong for
    for (condition, level), point in sorted(sheet.points.items()):
        which = f"{CONDITION_DISPLAY[condition]} {LEVEL_DISPLAY[level]}"
        shown = point.series + (f" ({folder[point.series]})" if point.series in folder else "")
        if point.series in unnamed:
            why = (
                f"on series {point.series}, which the case has but nothing names (no "
                "SeriesDescription in its headers and, in an RSNA folder, no row in the "
                "series descriptions CSV)"
            )
        elif point.series not in instances:
            why = (
                f"on series {point.series}, which case {case_id} does not have (its series: "
                f"{', '.join(named) or 'none named'})"
            )
        elif instances[point.series] is not None and point.instance not in instances[point.series]:
            held = _ranges(sorted(instances[point.series]))
            why = f"on series {shown}, whose instances are {held}"
            which += f" (instance {point.instance})"
        else:
            continue
        wrong.setdefault(why, []).append(which)
    if wrong:
        count = sum(len(cells) for cells in wrong.values())
        listed = "; ".join(
            f"{', '.join(cells[:3])}{f' and {len(cells) - 3} more' if len(cells) > 3 else ''} {why}"
            for why, cells in wrong.items()
        )
        raise ProjectError(
            f"{source}: {count} point(s) of case {case_id} are not on its images: {listed}. "
            "Nothing was imported; correct those rows (series_id, instance_number) or name "
            "the series, then import again."
        )


def _ranges(numbers: list[int]) -> str:
    """``1..6, 13..18`` for sorted whole numbers."""
    runs, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            runs.append(str(start) if start == n else f"{start}..{n}")
            start = None
    return ", ".join(runs)


@dataclass
class ImportedVersion(LabelVersion):
    """The version an import stored, with what the import found on the way.

    Attributes
    ----------
    overlaps
        Voxels claimed by several per-class masks (:func:`merge_class_masks`), also said
        in the version's ``note`` and its audit record; ``None`` when there were none.
    """

    overlaps: MaskOverlaps | None = None


def import_labels(
    project: Project,
    case_id: str,
    annotator: str,
    source: str | Path,
    *,
    study_id: int | None = None,
    points: str | Path | None = None,
    tables: tuple[dict, dict] | None = None,
    scans: dict | None = None,
    image: Volume | None = None,
) -> ImportedVersion:
    """Validate ``source`` against the case and store it as an ``imported`` version.

    Per-class masks that overlap are imported all the same, each disputed voxel given to
    the smaller structure (:func:`merge_class_masks`); how many voxels, which classes and
    who got them is returned, written in the version's note and in the audit record.

    ``image``: the case's first image as a caller has it already, loaded or only planned
    from its headers (:meth:`~..io.dicom.SeriesPlan.grid`: shape, affine, slice UIDs), so
    that a mask import reads it from disk no more (``add`` has just scanned and checked
    it); without it the image is loaded when the labels need its grid.
    """
    source = Path(source)
    project.case(case_id)
    if not source.exists():
        raise ProjectError(f"{source}: does not exist.")
    note, overlaps = f"imported from {source}", None
    if project.task == "spine":
        points = Path(points) if points else None
        if source.suffix.lower() == ".json":  # a version file of a project (`history`)
            sheet = read_grade_sheet_json(source)
        else:
            sheet = read_grade_sheet(source, study_id, points, case_id, tables)
        scans = {} if scans is None else scans
        sheet = points_named_by_description(project, case_id, sheet, scans)
        try:
            check_points(project, case_id, sheet, points or source, scans)
        except ProjectError as exc:  # series named by a pseudonym, in an export's points
            raise ProjectError(f"{exc}{pseudonymised_export_hint(points or source)}") from None
        project.ensure_annotator(annotator)  # registered only once the import is valid
        version = project.save_grades_version(
            case_id, sheet, kind="imported", annotator=annotator, note=note
        )
    else:
        if image is not None:
            project.remember_grid(case_id, image)
        labels, overlaps = read_mask_labels(project, case_id, source, image)
        if overlaps is not None:
            note = f"{note}; {overlaps.summary()}"
        project.ensure_annotator(annotator)
        version = project.save_mask_version(
            case_id, labels, kind="imported", annotator=annotator, note=note
        )
    detail = {"version": version.id, "source": str(source)}
    if overlaps is not None:
        detail["overlaps"] = {"voxels": overlaps.voxels, "pairs": [list(p) for p in overlaps.pairs]}
    project.record_audit(case_id, annotator, "import", **detail)
    return ImportedVersion(**vars(version), overlaps=overlaps)
