"""``atlas-annotate status PROJECT [--json]``."""

from __future__ import annotations

import json

from ..project import Project


def configure(parser) -> None:
    parser.add_argument("project")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    with Project(args.project) as project:
        status = project.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['task']} project {status['project']}: {len(status['cases'])} case(s)")
    if status["label_tolerance"]:
        print(
            f"  annotators may leave borders up to {status['label_tolerance']} voxel(s) off; "
            "retraining rounds allow for it"
        )
    for case in status["cases"]:
        unc = case["uncertainty"]
        head = f"  {case['id']:<24} proposals={case['proposals']}"
        head += f" uncertainty={unc:.3f}" if unc is not None else ""
        print(head + (" FINAL" if case["final"] else ""))
        for name, a in case["annotators"].items():
            print(
                f"      {name:<16} {a['state']:<12} versions={a['versions']} "
                f"edits={a['edits']} time={a['seconds']:.0f}s"
            )
    for r in status["rounds"]:
        print(f"  round {r['id']}: model {r['model_version']} {r['metrics']}")
    return 0
