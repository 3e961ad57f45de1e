"""The name a case is exported under, when its case id would give the patient away.

Projects often name cases after the source PatientID or accession number (the phantoms do:
case ``ct_000`` has PatientID ``ct_000``). Exports write the case id in folder and file
names, ``provenance.json``, DICOM SEG patient modules and datalists, so unless identifiers
are kept, a case id that contains (case-insensitively, in any PersonName spelling; see
:func:`.pseudonymise.contains_identifier`) an identifier string of *any* source DICOM header
of the cases the export mentions is replaced by a pseudonym ``case-<9 digits>``. Other case
ids are exported as they are.

The pseudonym is stable: the same case of the same project gets the same name in every
export, so re-exports and their ``provenance.json`` line up. It is a keyed hash of the case
id, not a plain one: a plain hash of a PatientID can be reversed by hashing a hospital's
list of PatientIDs (HIPAA's re-identification code must not be derived from the patient's
information unless it cannot be translated back). The key is a random value made on the
project's first pseudonymising export and kept in the project's audit trail (action
:data:`KEY_ACTION`), never in an export.

The map back (real case id -> exported name) is not written into the export either: each
export records one ``export`` audit entry per case it mentions (``exported_as``, format,
target folder, label version or skip reason; see :func:`record_export`), and the command
prints the pseudonymised cases.

Examples
--------
>>> exported_names(["ct_000", "liver-7"], {"CT_000", "Doe^Jane"}, key="k")  # doctest: +SKIP
{'ct_000': 'case-318025697', 'liver-7': 'liver-7'}
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..io.folder_walk import files_under
from ..project import Project
from .errors import ExportError
from .pseudonymise import case_pseudonym, contains_identifier, identifiers_of

#: Audit action of the record that holds the project's pseudonym key (case id ``None``).
KEY_ACTION = "export-pseudonym-key"
#: Audit action of the per-case record of an export.
EXPORT_ACTION = "export"
_ATTEMPTS = 100


def exported_names(
    case_ids: Iterable[str], identifiers: Iterable[str], key: str | None
) -> dict[str, str]:
    """``{case id: exported name}``: a pseudonym for each case id that contains one of
    ``identifiers``, the case id itself for the others.

    Parameters
    ----------
    case_ids
        Every case the export mentions (exported and skipped).
    identifiers
        Identifier strings of the source headers of all those cases.
    key
        The project's pseudonym key (:func:`pseudonym_key`); needed only when some case id
        contains an identifier.

    Raises
    ------
    ExportError
        When no pseudonym free of identifiers can be found (an identifier such as ``case``
        that every pseudonym contains).
    """
    case_ids = list(case_ids)
    identifiers = set(identifiers)
    flagged = {c for c in case_ids if contains_identifier(c, identifiers)}
    names = {c: c for c in case_ids if c not in flagged}
    taken = {c.lower() for c in names.values()}
    for case_id in (c for c in case_ids if c in flagged):
        if key is None:
            raise ValueError("a pseudonym key is needed for case ids that carry identifiers")
        for attempt in range(_ATTEMPTS):
            name = case_pseudonym(case_id, key, attempt)
            if name.lower() not in taken and not contains_identifier(name, identifiers):
                break
        else:
            raise ExportError(
                f"case {case_id}: its id carries a patient identifier and no pseudonym free "
                "of the source identifiers was found (an identifier is too short or common, "
                "e.g. 'case'). Check the source headers' PatientName/PatientID, or use "
                "--keep-identifiers only if the dataset may carry them."
            )
        names[case_id] = name
        taken.add(name.lower())
    return {c: names[c] for c in case_ids}


def pseudonym_key(project: Project, actor: str) -> str:
    """The project's pseudonym key, made (and recorded in the audit trail) on first use."""
    for record in project.audit_trail():
        if record["case_id"] is None and record["action"] == KEY_ACTION:
            return str(record["detail"]["key"])
    key = secrets.token_hex(16)
    project.record_audit(None, actor, KEY_ACTION, key=key)
    return key


def source_identifiers(project: Project, case_id: str) -> set[str]:
    """Identifier strings in the case's source DICOM headers (first file of each image;
    NIfTI images have none)."""
    import pydicom

    headers = []
    for ref in project.case(case_id).images:
        path = project.resolve(ref.path)
        candidates = [path] if path.is_file() else sorted(map(Path, files_under(path)))[:1]
        for candidate in candidates:
            if str(candidate).lower().endswith((".nii", ".nii.gz")):
                continue
            try:
                headers.append(pydicom.dcmread(candidate, stop_before_pixels=True))
            except Exception:  # not DICOM: nothing to collect
                continue
    return identifiers_of(headers)


def project_names(
    project: Project, case_ids: list[str], actor: str
) -> tuple[dict[str, str], set[str]]:
    """``({case id: exported name}, identifiers)`` for the cases an export mentions; the
    identifiers are those of all their source headers (for the export's final check)."""
    identifiers: set[str] = set()
    for case_id in case_ids:
        identifiers |= source_identifiers(project, case_id)
    key = None
    if any(contains_identifier(c, identifiers) for c in case_ids):
        key = pseudonym_key(project, actor)
    return exported_names(case_ids, identifiers, key), identifiers


def record_export(
    project: Project,
    actor: str,
    *,
    names: Mapping[str, str],
    fmt: str,
    status: str,
    root: Path,
    versions: Mapping[str, int],
    skipped: Mapping[str, str],
) -> None:
    """One audit record per case the export mentions: its exported name, the format and
    target, and the label version exported (``versions``) or why it was skipped."""
    for case_id, name in names.items():
        detail = {"exported_as": name, "format": fmt, "status": status, "to": str(root)}
        if case_id in versions:
            detail["label_version_id"] = versions[case_id]
        else:
            detail["skipped"] = skipped.get(case_id, "")
        project.record_audit(case_id, actor, EXPORT_ACTION, **detail)
