"""``atlas-annotate history PROJECT CASE [--json]``: what happened to one case.

Every label version, oldest first (who or which model made it, from which version, when,
the edits folded into it with their active time and tools, the voxels changed from its
parent, the note, its file), then the audit trail (submissions, imports, the lead's
decisions, renames). Each version's file is on the image's grid; ``atlas-annotate import``
brings one back as a reader's new version.
"""

from __future__ import annotations

import json

from ..project import Project
from ..project.history import case_history


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument("case", help="the case id (as `status` lists them)")
    parser.add_argument("--json", action="store_true", help="one JSON object")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _signed(gained: int, lost: int) -> str:
    """``+400`` / ``-12`` / ``+400 -12`` voxels."""
    return " ".join(
        part for part in (f"+{gained:,}" * bool(gained), f"-{lost:,}" * bool(lost)) if part
    )


def _who(version) -> str:
    if version.annotator:
        return f"by {version.annotator}"
    return f"by model {version.model_version}" if version.model_version else ""


def _detail(record: dict) -> str:
    shown = {k: v for k, v in record["detail"].items() if v not in (None, "", [], {})}
    return ", ".join(
        f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}" for k, v in shown.items()
    )


def run(args) -> int:
    with Project(args.project) as project:
        history, audit = case_history(project, args.case)
        folder = project.folder
    if args.json:
        print(
            json.dumps(
                {"case": args.case, "versions": [h.to_dict() for h in history], "audit": audit},
                indent=2,
            )
        )
        return 0
    print(f"case {args.case}: {len(history)} label version(s), {len(audit)} audit record(s)")
    for h in history:
        v = h.version
        parent = f" from v{v.parent_id}" if v.parent_id else ""
        print(f"  v{v.id} {v.kind} {v.content} {_who(v)}{parent}, {h.to_dict()['at']}")
        if h.edits:
            tools = ", ".join(f"{tool} {n}" for tool, n in h.tools.items())
            print(f"      {h.edits} edit(s), {_duration(h.active_seconds)} active ({tools})")
        if h.changed_voxels is not None:
            print(f"      {h.changed_voxels:,} voxel(s) changed from v{v.parent_id}")
        if h.class_changes:
            print(
                "      "
                + ", ".join(
                    f"{name} {_signed(gained, lost)}"
                    for name, (gained, lost) in h.class_changes.items()
                )
            )
        elif h.classes and v.parent_id is None:
            print("      " + ", ".join(f"{name} {n:,}" for name, n in h.classes.items()))
        if v.note:
            print(f"      note: {v.note}")
        print(f"      file: {folder / v.path}")
    if audit:
        print("audit trail:")
        for record in audit:
            detail = _detail(record)
            print(
                f"  {record['at']} {record['action']} by {record['actor']}"
                + (f": {detail}" if detail else "")
            )
    if history:
        print(
            f"bring a version back as a reader's new version: atlas-annotate import {folder} "
            f"FILE --case {args.case} --annotator NAME"
        )
    return 0
