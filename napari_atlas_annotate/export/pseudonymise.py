"""Keep patient identifiers out of exports.

By default nothing that names or identifies a patient leaves the project: exported files
carry the project's case ids (or, for a case id that contains a source identifier, a
pseudonym: see :mod:`.case_names`), integer pseudonyms derived from those (RSNA
``study_id`` / ``series_id``) and content hashes. NIfTI text fields are blanked by
:mod:`.nifti_writer`; DICOM SEG objects get their patient module rewritten by
:func:`deidentify_dataset`; :func:`find_identifiers` scans exported bytes (gzip content
included) for the identifier strings the source DICOM headers carried, and the export
fails rather than ship a file that contains one.

What is kept: DICOM UIDs (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID,
FrameOfReferenceUID) of the *referenced* source images, because a DICOM SEG is only useful
if it points at its images. They identify images, not people; run a full DICOM
de-identifier over images and SEGs together if UIDs must change too.

Examples
--------
>>> study_pseudonym("case0001") == study_pseudonym("case0001")
True
>>> study_pseudonym("case0001") != study_pseudonym("case0002")
True
>>> contains_identifier("CT_000-followup", {"ct_000"})
True
>>> person_name("case-123456789")
'case-123456789^'
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Patient/study attributes that identify a person or visit; removed from exported DICOM.
IDENTIFYING_KEYWORDS: tuple[str, ...] = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientComments",
    "MilitaryRank",
    "EthnicGroup",
    "Occupation",
    "AdditionalPatientHistory",
    "MedicalRecordLocator",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansOfRecord",
    "RequestingPhysician",
    "IssuerOfPatientID",
    "PatientBirthTime",
    "StationName",
    "DeviceSerialNumber",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "AcquisitionDateTime",
)

#: Attributes emptied (the Patient/Study modules require them present, possibly empty). The
#: study date and time date the patient's visit (a HIPAA identifier); the SEG's own content
#: and creation dates are those of the export and stay.
EMPTIED_KEYWORDS: tuple[str, ...] = (
    "PatientBirthDate",
    "StudyDate",
    "StudyTime",
    "PatientSex",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
    "StudyDescription",
)

#: Header attributes whose values count as identifiers in the export check.
SOURCE_IDENTIFIER_KEYWORDS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "OtherPatientIDs",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
)


def _pseudonym(text: str, digits: int = 9) -> int:
    """A stable positive integer with ``digits`` digits (never starts with 0) from ``text``."""
    value = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    low = 10 ** (digits - 1)
    return low + value % (9 * low)


def study_pseudonym(case_id: str) -> int:
    """Integer study id of a case (stable: the same case id always gives the same number)."""
    return _pseudonym(f"study:{case_id}")


def case_pseudonym(case_id: str, key: str, attempt: int = 0) -> str:
    """``case-<9 digits>``: the stable pseudonym of ``case_id`` under a project's secret
    ``key`` (see :mod:`.case_names`); ``attempt`` > 0 gives the alternatives used when a
    pseudonym is taken or contains an identifier."""
    salt = f":{attempt}" if attempt else ""
    return f"case-{_pseudonym(f'case:{key}:{case_id}{salt}')}"


def series_pseudonym(case_id: str, series_key: str) -> int:
    """Integer series id of one series of a case (``series_key``: e.g. its description)."""
    return _pseudonym(f"series:{case_id}:{series_key}")


def person_name(text: str) -> str:
    """``text`` as a one-component DICOM PersonName (family name only): ``text^``.

    The trailing caret says "a family name and nothing else" (PS3.5 6.2.1.2), which is what
    a case id used as a name is; without it highdicom warns that the string is unlikely to
    be a person name. Backslashes (the DICOM value separator) become underscores.
    """
    return text.replace("\\", "_").rstrip("^") + "^"


def deidentify_dataset(ds, case_id: str) -> None:
    """Rewrite ``ds``'s patient and study identity in place: PatientID = ``case_id`` (the
    case's exported name), PatientName = :func:`person_name` of it, birth date / sex /
    accession / physicians / study date and time emptied, series and acquisition dates and
    other identifying attributes removed (also in nested sequences)."""
    ds.PatientName = person_name(case_id)
    ds.PatientID = case_id
    for keyword in EMPTIED_KEYWORDS:
        if keyword in ds:
            setattr(ds, keyword, "")
    _remove_keywords(ds)


def _remove_keywords(ds) -> None:
    for keyword in IDENTIFYING_KEYWORDS:
        if keyword in ds:
            delattr(ds, keyword)
    for element in list(ds):
        if element.VR == "SQ":
            for item in element.value:
                _remove_keywords(item)


def identifiers_of(headers: Iterable[Any]) -> set[str]:
    """Identifier strings (length >= 3) from DICOM headers or ``Volume.metadata`` dicts.

    For headers the :data:`SOURCE_IDENTIFIER_KEYWORDS` values; for metadata dicts the
    ``patient_name`` / ``patient_id`` entries the DICOM reader fills in. A PersonName's
    components (``Doe^Jane`` -> also ``Doe``, ``Jane``) count too when long enough.
    """
    found: set[str] = set()

    def add(value) -> None:
        text = str(value or "").strip()
        if len(text) < 3 or text.lower() in ("anonymous", "anon", "none"):
            return
        found.add(text)
        if "^" in text:
            for part in text.split("^"):
                if len(part.strip()) >= 4:
                    found.add(part.strip())

    for header in headers:
        if isinstance(header, dict):
            add(header.get("patient_name"))
            add(header.get("patient_id"))
            continue
        for keyword in SOURCE_IDENTIFIER_KEYWORDS:
            add(header.get(keyword, ""))
    return found


def _raw_contents(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            return data + gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            return data
    return data


def _text_contents(path: Path) -> bytes:
    """Where text can hide in a file: a NIfTI header, a DICOM file's non-pixel elements,
    or the whole of any other file. Skipping voxel/pixel bytes avoids chance matches of
    short strings in hundreds of megabytes of binary data."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read(352)
    if name.endswith(".nii"):
        with open(path, "rb") as fh:
            return fh.read(352)
    if name.endswith(".dcm"):
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        parts = [str(e.value) for e in ds.file_meta.iterall()] if ds.file_meta else []
        parts += [str(e.value) for e in ds.iterall() if e.VR not in ("OB", "OW", "OF", "UN")]
        return "\n".join(parts).encode("utf-8", "replace")
    return _raw_contents(path)


def identifier_needles(identifiers: Iterable[str]) -> set[bytes]:
    """The lower-case UTF-8 byte strings that count as an identifier being present: each
    identifier in its own spelling and in the PersonName spellings (``^`` as a space or
    dropped), those of 3 characters or more."""
    needles: set[bytes] = set()
    for text in identifiers:
        if not text:
            continue
        for variant in (text, text.replace("^", " "), text.replace("^", "")):
            if len(variant) >= 3:
                needles.add(variant.lower().encode("utf-8"))
    return needles


def contains_identifier(text: str, identifiers: Iterable[str]) -> bool:
    """Whether ``text`` (e.g. a case id) contains any identifier, matched as
    :func:`find_identifiers` matches them in files (case-insensitive, PersonName spellings)."""
    haystack = text.lower().encode("utf-8")
    return any(needle in haystack for needle in identifier_needles(identifiers))


def find_identifiers(
    root: str | Path, identifiers: Iterable[str], *, every_byte: bool = False
) -> list[tuple[str, str]]:
    """``(relative path, identifier)`` for every identifier found in a file under ``root``.

    Matching is case-insensitive, in UTF-8 and the PersonName spellings (``^``, space or
    nothing between components). By default the text-bearing parts are searched (NIfTI
    headers, DICOM elements other than pixel data, whole CSV/JSON files); with
    ``every_byte`` every raw byte and the gzip-decompressed content of every file is.
    """
    root = Path(root)
    needles = identifier_needles(identifiers)
    read = _raw_contents if every_byte else _text_contents
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        haystack = read(path).lower()
        for needle in sorted(needles):
            if needle in haystack:
                hits.append((str(path.relative_to(root)), needle.decode("utf-8", "replace")))
    return hits
