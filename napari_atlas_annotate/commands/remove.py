"""``atlas-annotate remove PROJECT CASE... --reason TEXT [--by NAME]``: take cases nobody
has labelled out of a project (a wrong or broken image, one added by mistake).

Nothing is deleted for good: the model's proposals of the case move to
``PROJECT/removed/``, an audit record keeps who removed it, why and which images it
referenced, and the images are not touched. A case holding labels people made (submitted,
imported or final versions, or unsaved edits) is refused: export them or keep the case.
All named cases are checked before any is removed.
"""

from __future__ import annotations

import argparse
import getpass


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", help="project folder")
    parser.add_argument("cases", nargs="+", metavar="CASE", help="case ids to remove")
    parser.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    parser.add_argument("--by", default=None, help="who removes them (default: login name)")


def run(args: argparse.Namespace) -> int:
    from ..project import Project, ProjectError

    by = args.by or getpass.getuser()
    with Project(args.project) as project:
        refused = []
        for case_id in args.cases:
            made = project.removal_blockers(case_id)
            if made:
                refused.append(f"{case_id} ({'; '.join(made)})")
        if refused:
            raise ProjectError(
                "nothing removed: these cases hold work people made: "
                + ", ".join(refused)
                + ". Export those labels first, or keep the cases."
            )
        for case_id in args.cases:
            moved = project.remove_case(case_id, by, args.reason)
            where = f"; its proposals are kept in {moved}" if moved else ""
            print(f"removed {case_id}{where}")
    return 0
