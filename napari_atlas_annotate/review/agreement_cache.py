"""Review metrics kept in the project database, per case and set of readers' versions.

Comparing two readers' label maps of a 512x512x300 CT means reading both maps and counting
every voxel (about 5-10 s on 2 CPU cores; with HD95 about twice that), and the review
dock ranks every case read twice each time it opens. A label version never changes once
stored, so the metrics of one set of versions are computed once: a case is compared again
only when a reader submits a new version. Metrics with HD95 also answer a request without.
A project whose database cannot be written (read-only copy) still reviews; it only does
not keep them. They are read back with the rest of a ranking's facts by
:meth:`.readers.ReviewIndex.kept_agreement`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping

from ..project import LabelVersion, Project
from ..project.database import transaction
from .metrics import MaskAgreement
from .readers import readers_key


def keep_agreement(
    project: Project,
    case_id: str,
    versions: Mapping[str, LabelVersion],
    distances: bool,
    agreement: MaskAgreement,
) -> None:
    """Keep computed metrics (and drop those of the case's earlier versions)."""
    key = readers_key(versions)
    try:
        with transaction(project._db):
            project._db.execute(
                "DELETE FROM agreement WHERE case_id = ? AND readers != ?", (case_id, key)
            )
            project._db.execute(
                "INSERT OR REPLACE INTO agreement(case_id, readers, distances, metrics) "
                "VALUES (?, ?, ?, ?)",
                (case_id, key, int(distances), json.dumps(agreement.to_dict())),
            )
    except sqlite3.OperationalError:  # a read-only project: computed again next time
        pass
