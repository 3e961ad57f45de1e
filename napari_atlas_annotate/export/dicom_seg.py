"""DICOM Segmentation objects (highdicom) that reference a case's source image series.

One SEG per case, ``BINARY``, one segment per project class (label, SNOMED-CT code where
one is known, the class colour as CIELab, algorithm type ``MANUAL`` since exported labels
are radiologist-corrected, imported as an annotator's labels, or final; a model's unreviewed
proposal, exported with ``--status any``, is ``AUTOMATIC`` and names the model). Frame ``k`` of
the label array goes with the source image at z index ``k`` (the DICOM reader's ``files`` /
``sop_instance_uids`` are in z order), so frames land on the slices they were drawn on.

Cases whose image is a NIfTI file have no DICOM to reference: the CT is first written as a
DICOM series beside the SEG (``<case>/image/IM*.dcm``, PatientID = the case's exported
name, PatientName = that name as a one-component PersonName ``name^``, deterministic UIDs)
and the SEG references that series. This keeps every exported SEG
loadable with its image in any DICOM viewer, instead of silently dropping cases.

Unless identifiers are kept, the SEG's patient module names the case's exported name
(the case id, or its pseudonym when the id carries a patient identifier; see
:mod:`.case_names`): PatientID = name, PatientName = ``name^``. highdicom copies the patient
and study modules (and the acquisition equipment) from the source images, so the in-memory
source headers are de-identified before it sees them and the SEG is de-identified again
after. With identifiers kept, the source's PatientName is copied as it is; highdicom's
warning that a caret-less name is "unlikely to represent the intended person name" is then
about the source's own data and is silenced for that call only.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

from .. import __version__
from ..classes import class_colors
from ..io.atomic import atomic_output
from ..io.dicom_writer import decimal_string, write_dicom_series
from ..models.intensity import AIR_HU, count_non_finite, finite
from ..volume import LPS_TO_RAS, Volume
from .errors import ExportError
from .pseudonymise import deidentify_dataset, person_name

#: highdicom's warning about a PersonName without a caret (``highdicom.valuerep``).
_ONE_COMPONENT_NAME_WARNING = r'The string ".*" is unlikely to represent the intended person name'

SEG_NAME = "segmentation.dcm"
SEG_SERIES_NUMBER = 900

#: SNOMED-CT property type of known organ classes (keywords of pydicom's codes.SCT).
_ORGAN_CODES = {
    "aorta": "Aorta",
    "gall_bladder": "Gallbladder",
    "kidney_left": "Kidney",
    "kidney_right": "Kidney",
    "liver": "Liver",
    "pancreas": "Pancreas",
    "postcava": "InferiorVenaCava",
    "spleen": "Spleen",
    "stomach": "Stomach",
}


def segment_descriptions(classes: list[str], model_version: str | None = None) -> list:
    """highdicom segment descriptions, segment ``i`` = class ``i`` (label value ``i``).

    ``model_version``: the helper model whose unreviewed proposal the labels are; the
    segments are then ``AUTOMATIC``, identified as that model (an AI algorithm), instead of
    ``MANUAL``.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algorithm_type, algorithm = hd.seg.SegmentAlgorithmTypeValues.MANUAL, None
    if model_version is not None:
        algorithm_type = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algorithm = hd.AlgorithmIdentificationSequence(
            name=model_version,
            family=codes.cid7162.ArtificialIntelligence,
            version=__version__,
            source="napari-atlas-annotate",
        )
    colors = class_colors(classes)
    out = []
    for number, name in enumerate(classes, start=1):
        prop = getattr(codes.SCT, _ORGAN_CODES.get(name, "Organ"))
        r, g, b = colors[number]
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=codes.SCT.AnatomicalStructure,
                segmented_property_type=prop,
                algorithm_type=algorithm_type,
                algorithm_identification=algorithm,
                tracking_uid=generate_uid(),
                tracking_id=name,
                display_color=hd.color.CIELabColor.from_rgb(r, g, b),
            )
        )
    return out


def _right_handed(volume: Volume) -> bool:
    lps = LPS_TO_RAS @ volume.affine
    dirs = lps[:3, :3] / np.asarray(volume.spacing)[None, :]
    return float(np.dot(np.cross(dirs[:, 2], dirs[:, 1]), dirs[:, 0])) > 0


def _flip_z(volume: Volume, labels: np.ndarray) -> tuple[Volume, np.ndarray]:
    """The same physical image with its z index reversed (and the labels with it)."""
    affine = volume.affine.copy()
    affine[:3, 3] += (volume.shape[0] - 1) * affine[:3, 0]
    affine[:3, 0] *= -1
    flipped = Volume(volume.array[::-1].copy(), affine, volume.modality, dict(volume.metadata))
    return flipped, labels[::-1].copy()


def write_source_series(
    image: Volume, labels: np.ndarray, folder: Path, case_id: str, uid_seed: str
) -> tuple[list[Path], np.ndarray]:
    """Write a NIfTI-sourced image as a DICOM series in ``folder`` (published by one
    rename). ``case_id``: the case's exported name. Returns the files in z order and the
    labels on that series' z order.

    Voxels that are not numbers (NaN outside a converter's field of view) are written as
    air for a CT and 0 for an MR, as the helper models read them: DICOM stores integers.
    """
    modality = image.modality if image.modality in ("CT", "MR") else "CT"
    if count_non_finite(image.array):
        fill = AIR_HU if modality == "CT" else 0.0
        image = Volume(finite(image.array, fill), image.affine, image.modality, image.metadata)
    if not _right_handed(image):
        image, labels = _flip_z(image, labels)
    partial = folder.with_name(f".{folder.name}.part")
    files = write_dicom_series(
        image,
        partial,
        modality=modality,
        series_description=f"{case_id} image",
        series_number=1,
        patient_name=person_name(case_id),
        patient_id=case_id,
        uid_seed=uid_seed,
    )
    os.replace(partial, folder)
    return [folder / f.name for f in files], labels


def build_segmentation(
    source_files: list[Path],
    labels: np.ndarray,
    classes: list[str],
    case_id: str,
    *,
    frame_numbers: list[int | None] | None = None,
    keep_identifiers: bool = False,
    series_description: str = "Corrected labels",
    model_version: str | None = None,
):
    """A ``highdicom.seg.Segmentation`` of ``labels`` (z, y, x) on the source images.

    Parameters
    ----------
    source_files
        Source image files in z order (one per slice), or one multi-frame file.
    labels
        Label map on the source grid; value ``i`` is ``classes[i - 1]``.
    case_id
        The case's exported name: the SEG's PatientID (and PatientName ``case_id^``) unless
        ``keep_identifiers``.
    frame_numbers
        For a multi-frame source: the 1-based frame number of each z slice.
    model_version
        Set when the labels are a model's unreviewed proposal (see
        :func:`segment_descriptions`).
    """
    import highdicom as hd

    paths = list(dict.fromkeys(Path(p) for p in source_files))
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    if len(sources) == 1 and len(labels) > 1 and frame_numbers:
        # Multi-frame source: SEG frames must follow the source's frame order.
        in_frame_order = np.zeros_like(labels)
        for z, number in enumerate(frame_numbers):
            in_frame_order[int(number) - 1] = labels[z]
        pixel_array = in_frame_order
    elif len(sources) == len(labels):
        pixel_array = labels
    else:
        raise ExportError(
            f"case {case_id}: {len(sources)} source DICOM files for {len(labels)} label "
            "slices; the source series changed since the label was drawn. Re-add the case."
        )
    for source in sources:
        if not keep_identifiers:  # highdicom copies patient/study/equipment from these
            deidentify_dataset(source, case_id)
        _fill_type2(source)
    _fill_slice_thickness(sources)
    with warnings.catch_warnings():
        if keep_identifiers:  # the source's own PatientName, kept as it is
            warnings.filterwarnings("ignore", _ONE_COMPONENT_NAME_WARNING, UserWarning)
        try:
            seg = _segmentation(
                hd, sources, pixel_array, classes, series_description, model_version
            )
        except AttributeError as exc:  # highdicom needs a header attribute the files lack
            raise ExportError(
                f"case {case_id}: a DICOM SEG cannot be made on its source series "
                f"({paths[0].parent}): {exc}. Export it in another format (nnunet, "
                "abdomenatlas, monai, slicer), or add the attribute to the series' files."
            ) from exc
    if not keep_identifiers:
        deidentify_dataset(seg, case_id)
    return seg


def _segmentation(hd, sources, pixel_array, classes, series_description, model_version):
    """highdicom's ``Segmentation`` of ``pixel_array`` on ``sources`` (our fixed values)."""
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.ascontiguousarray(
            pixel_array, dtype=np.uint8 if len(classes) < 256 else np.uint16
        ),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(classes, model_version),
        series_instance_uid=generate_uid(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="napari-atlas-annotate",
        manufacturer_model_name="napari-atlas-annotate",
        software_versions=__version__,
        device_serial_number="0",
        series_description=series_description,
    )


#: Patient and study attributes highdicom reads from the source image for the SEG. DICOM
#: makes them type 2 (present, may be empty), but scripts and some converters leave them
#: out, and highdicom then fails with an AttributeError.
SOURCE_TYPE2_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
)


def _fill_type2(source) -> None:
    """Give ``source`` an empty value for each of :data:`SOURCE_TYPE2_KEYWORDS` it lacks,
    as DICOM allows for type 2 attributes (the source files themselves are not touched)."""
    for keyword in SOURCE_TYPE2_KEYWORDS:
        if keyword not in source:
            setattr(source, keyword, "")


def _fill_slice_thickness(sources: list) -> None:
    """Give single-frame sources without SliceThickness (type 2, left out by some
    converters; highdicom needs it for the SEG's pixel measures) the spacing between their
    slices along the slice normal."""
    if len(sources) < 2 or all("SliceThickness" in s for s in sources):
        return
    try:
        orientation = np.asarray(sources[0].ImageOrientationPatient, float)
        first = np.asarray(sources[0].ImagePositionPatient, float)
        second = np.asarray(sources[1].ImagePositionPatient, float)
    except (AttributeError, ValueError):
        return  # no geometry to take it from: highdicom's error says what is missing
    spacing = abs(float(np.dot(second - first, np.cross(orientation[:3], orientation[3:]))))
    for source in sources:
        if "SliceThickness" not in source:
            source.SliceThickness = decimal_string(spacing)


def write_segmentation(seg, path: Path) -> Path:
    """Save ``seg`` atomically."""
    with atomic_output(path) as fh:
        seg.save_as(fh, enforce_file_format=True)
    return path


def check_segmentation(path: Path, sop_uids: list[str], labels: np.ndarray) -> None:
    """Read ``path`` back with highdicom and check that each source slice (by
    SOPInstanceUID, z order) gets exactly the label values of ``labels[k]``.

    Raises
    ------
    ExportError
        Naming the first slice whose frames differ.
    """
    import highdicom as hd

    seg = hd.seg.segread(path)
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    for k, uid in enumerate(sop_uids):
        expected = labels[k]
        if uid not in referenced:
            got = np.zeros_like(expected)
        else:
            got = seg.get_pixels_by_source_instance(
                [uid], combine_segments=True, skip_overlap_checks=True
            )[0]
        if got.shape != expected.shape or not np.array_equal(got, expected):
            raise ExportError(
                f"{path}: frames for source slice {k} (SOPInstanceUID {uid}) do not match "
                "the exported label; the SEG was not written correctly."
            )
