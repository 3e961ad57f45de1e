"""Who read which case: each annotator's latest opinion, the lead's final and decisions.

A case's readers are the annotators with a submitted (``corrected``) or ``imported``
version of the task's content; each one's latest such version is the opinion compared.
:func:`annotator_versions` asks the database for one case. A ranking asks it for every case
of a project: about ten queries per case read twice (versions, final, reopen records,
audit trail, kept metrics) and three per other case, 77,000 in all and 1.7 s of frozen
review dock after each *Finalize* on a project of 20,000 cases. :class:`ReviewIndex`
reads the same facts for all cases (or one) in a few queries and answers from memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from ..project import LabelVersion, Project
from .metrics import MaskAgreement

#: Version kinds that count as an annotator's opinion.
OPINION_KINDS: tuple[str, ...] = ("corrected", "imported")


def task_content(project: Project) -> str:
    """``"grades"`` for spine projects, ``"mask"`` otherwise."""
    return "grades" if project.task == "spine" else "mask"


def latest_by_reader(versions: Iterable[LabelVersion]) -> dict[str, LabelVersion]:
    """Each annotator's last version of ``versions`` (given in id order), by name."""
    latest: dict[str, LabelVersion] = {}
    for v in versions:
        if v.annotator:
            latest[v.annotator] = v  # the last one wins
    return dict(sorted(latest.items()))


def annotator_versions(project: Project, case_id: str) -> dict[str, LabelVersion]:
    """Each annotator's latest ``corrected``/``imported`` version of the case, by name."""
    return latest_by_reader(
        project.versions(case_id, kinds=OPINION_KINDS, content=task_content(project))
    )


def readers_key(versions: Mapping[str, LabelVersion]) -> str:
    """The versions compared, as the kept metrics' key: ``[[annotator, version id], ...]``."""
    return json.dumps(sorted([who, v.id] for who, v in versions.items()))


class ReviewIndex:
    """A project's readers, finals, lead's decisions and kept metrics, read at once.

    The same answers as :func:`annotator_versions`, :meth:`Project.current_final` (its id),
    :meth:`Project.audit_trail` (finalize and reopen records) and the metrics
    :mod:`.agreement_cache` keeps, as they stood when the index was read.

    Parameters
    ----------
    project
        The open project (read on the calling thread).
    case_id
        Read only this case (what one case's review needs), instead of every case.
    """

    def __init__(self, project: Project, case_id: str | None = None) -> None:
        content = task_content(project)
        one = case_id is not None
        args = (case_id,) if one else ()

        def where(condition: str) -> str:  # the condition, for the one case if given
            return f" WHERE case_id = ? AND {condition}" if one else f" WHERE {condition}"

        cursor = project._db.cursor()
        if one:
            rows = cursor.execute("SELECT id FROM cases WHERE id = ?", args).fetchall()
        else:
            rows = cursor.execute("SELECT id FROM cases ORDER BY position").fetchall()
        #: Case ids in project order.
        self.case_ids: list[str] = [r[0] for r in rows]
        self._known = set(self.case_ids)

        def versions(kinds: tuple[str, ...]) -> dict[str, list[LabelVersion]]:
            marks = ",".join("?" * len(kinds))
            found: dict[str, list[LabelVersion]] = {}
            for row in cursor.execute(
                "SELECT * FROM versions"
                + where(f"kind IN ({marks}) AND content = ?")
                + " ORDER BY id",
                (*args, *kinds, content),
            ):
                v = LabelVersion.from_row(row)
                found.setdefault(v.case_id, []).append(v)
            return found

        self._readers = {c: latest_by_reader(vs) for c, vs in versions(OPINION_KINDS).items()}
        self._finals = project.current_finals(content)
        self._decisions: dict[str, list] = {}  # unparsed finalize/reopen records per case
        for row in cursor.execute(
            "SELECT * FROM audit" + where("action IN ('finalize', 'reopen')") + " ORDER BY id", args
        ):
            self._decisions.setdefault(row["case_id"], []).append(row)
        # (case, readers key) -> [(distances, metrics JSON)]
        self._kept_rows: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for row in cursor.execute(
            "SELECT case_id, readers, distances, metrics FROM agreement"
            + (" WHERE case_id = ?" if one else ""),
            args,
        ):
            key = (row["case_id"], row["readers"])
            self._kept_rows.setdefault(key, []).append((int(row["distances"]), row["metrics"]))

    def knows(self, case_id: str) -> bool:
        return case_id in self._known

    def readers(self, case_id: str) -> dict[str, LabelVersion]:
        """:func:`annotator_versions` of the case."""
        return dict(self._readers.get(case_id, {}))

    def final_id(self, case_id: str) -> int | None:
        """The id of :meth:`Project.current_final` of the case (the task's content)."""
        return self._finals.get(case_id)

    def decision_records(self, case_id: str) -> list[dict]:
        """The case's ``finalize`` and ``reopen`` audit records, oldest first, as
        :meth:`Project.audit_trail` gives them."""
        return [
            {**dict(r), "detail": json.loads(r["detail"] or "{}")}
            for r in self._decisions.get(case_id, ())
        ]

    def _kept(self, case_id: str, versions: Mapping[str, LabelVersion], distances: bool):
        stored = self._kept_rows.get((case_id, readers_key(versions)), ())
        kept = [(d, m) for d, m in stored if d >= distances]
        return max(kept, key=lambda k: k[0])[1] if kept else None

    def is_kept(self, case_id: str, versions: Mapping[str, LabelVersion], distances: bool) -> bool:
        """Whether metrics of these versions (with HD95 if ``distances``) are kept."""
        return self._kept(case_id, versions, distances) is not None

    def kept_agreement(
        self, case_id: str, versions: Mapping[str, LabelVersion], distances: bool
    ) -> MaskAgreement | None:
        """The metrics kept for these versions (with HD95 if ``distances``; see
        :mod:`.agreement_cache`), or None."""
        kept = self._kept(case_id, versions, distances)
        return None if kept is None else MaskAgreement.from_dict(json.loads(kept))
