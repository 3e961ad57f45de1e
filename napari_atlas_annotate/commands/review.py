"""``atlas-annotate review PROJECT [--json] [--report DIR] [--case ID]``, and the lead's
decisions: ``--finalize-agreed``, ``--finalize CASE``, ``--reopen CASE``.

Agreement between annotators for every case with at least two of them, most disputed
first: per class Dice / HD95 (mm) / volume difference (ml) for organ projects, weighted
kappa per condition and overall for spine projects. ``--report DIR`` also writes
``DIR/index.html`` with plots for the lead.

A lead then makes the labels final (what ``export`` takes by default), as in the
annotator dock's review panel:

* ``--finalize-agreed --lead NAME [--min-agreement 0.95] [--single-reader]``: every case
  (or every ``--case``) not yet final whose readers agree at least that well gets their
  consensus as its final version; ``--single-reader`` also accepts cases one reader
  labelled. Disputed cases (and grade cases with any cell graded differently) are listed,
  left for adjudication.
* ``--finalize CASE --lead NAME [--take CLASS=SOURCE ...]``: adjudicate one case; each
  ``--take`` names where a class (or a grade cell such as
  ``spinal_canal_stenosis_l4_l5``) comes from: a reader's name, ``consensus``, ``staple``
  or, for grade cells, a grade. Everything not named takes the consensus, or with
  ``--take all=NAME`` that source (``--take all=alice --take liver=bob``: alice's label
  with bob's liver).
* ``--reopen CASE --lead NAME --reason TEXT``: send a final case back for annotation.

``--readers`` prints, instead of the case list, each reader against the lead's final labels
(organs: median Dice per class and the millilitres the final changed a case; grades: the
share of cells kept as graded and kappa): who needs feedback, and on what. ``--report``
always has that section once some case is final.

Examples
--------
.. code-block:: console

    $ atlas-annotate review campaign --json --report campaign/review
    $ atlas-annotate review campaign --finalize-agreed --lead dr_wu --min-agreement 0.92
    $ atlas-annotate review campaign --finalize ct_007 --lead dr_wu --take liver=alice
    $ atlas-annotate review campaign --readers
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

from ..case_lists import first_ids
from ..cli import positive_int

#: Default lowest pairwise Dice / kappa that --finalize-agreed accepts. With two readers the
#: consensus keeps only what both labelled, so a lower bar would drop real corrections.
MIN_AGREEMENT = 0.95


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", type=Path, help="project folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write DIR/index.html")
    parser.add_argument(
        "--case", action="append", metavar="ID", help="review only this case (repeatable)"
    )
    parser.add_argument(
        "--readers",
        action="store_true",
        help="each reader against the lead's final labels (Dice per class and ml changed, or "
        "grades kept and kappa) instead of the case list",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=min(4, os.cpu_count() or 1),
        help="cases compared at once the first time (default: CPU cores, at most 4; about "
        "0.7 GB each at 512x512x300)",
    )
    lead = parser.add_argument_group("lead decisions")
    action = lead.add_mutually_exclusive_group()
    action.add_argument(
        "--finalize-agreed",
        action="store_true",
        help="make the readers' consensus final for every case whose readers agree",
    )
    action.add_argument("--finalize", metavar="CASE", help="adjudicate one case")
    action.add_argument("--reopen", metavar="CASE", help="send a final case back")
    lead.add_argument("--lead", metavar="NAME", help="who decides (recorded as the author)")
    lead.add_argument(
        "--min-agreement",
        type=float,
        default=MIN_AGREEMENT,
        help="--finalize-agreed: lowest pairwise Dice (organs) or kappa (grades) accepted "
        f"(default {MIN_AGREEMENT}); grade cases with any differing cell are always left",
    )
    lead.add_argument(
        "--single-reader",
        action="store_true",
        help="--finalize-agreed: also accept cases that only one reader labelled",
    )
    lead.add_argument(
        "--take",
        action="append",
        default=[],
        metavar="CLASS=SOURCE",
        help="--finalize: where a class or grade cell comes from: a reader's name, consensus, "
        "staple (masks) or a grade (cells), e.g. liver=alice or "
        "spinal_canal_stenosis_l4_l5=Severe; all=NAME: everything not named comes from NAME "
        "(a reader's whole label); repeatable",
    )
    lead.add_argument(
        "--edited",
        type=Path,
        metavar="LABELS",
        help="--finalize: the consensus as the lead edited it in another tool (a label NIfTI "
        "on the case's grid, a 3D Slicer .seg.nrrd, a folder of <class>.nii.gz masks or a "
        "DICOM SEG): every class changed in it is taken as painted; see --write-consensus",
    )
    lead.add_argument(
        "--write-consensus",
        type=Path,
        metavar="FILE",
        help="with one --case (organ projects): write the readers' consensus on the case's "
        "CT grid, to edit elsewhere and finalize with --edited: a label NIfTI (ITK-SNAP), or "
        "FILE.seg.nrrd for 3D Slicer (a named segment per class)",
    )
    lead.add_argument("--comment", default="", help="kept with the final version")
    lead.add_argument("--reason", default="", help="--reopen: why the case goes back")


def _decisions(takes: list[str]) -> dict[str, str]:
    from ..project import ProjectError

    out = {}
    for take in takes:
        key, sep, source = take.partition("=")
        if not sep or not key.strip() or not source.strip():
            raise ProjectError(
                f"--take {take!r}: write CLASS=SOURCE, e.g. --take liver=alice or "
                "--take spinal_canal_stenosis_l4_l5=Moderate."
            )
        out[key.strip()] = source.strip()
    return out


def _lead_action(args: argparse.Namespace, project) -> dict:
    """Run the lead's decision; returns what was done, for printing."""
    from ..project import ProjectError
    from ..review.adjudication import (
        current_final,
        decision_history,
        describe_decision,
        finalize,
        finalize_agreed,
        reopen,
    )
    from ..review.consensus_files import edited_consensus

    if not args.lead:
        raise ProjectError("name the lead who decides: add --lead NAME.")
    if args.reopen:
        if not (args.reason or "").strip():
            raise ProjectError(
                f"say why case {args.reopen} goes back: add --reason TEXT (kept in the audit "
                "trail with the case)."
            )
        reopen(project, args.reopen, args.lead, args.reason)
        return {"reopened": args.reopen}
    if args.finalize:
        before = current_final(project, args.finalize)
        decisions, painted = _decisions(args.take), None
        if args.edited is not None:
            decisions, painted = edited_consensus(project, args.finalize, decisions, args.edited)
        version = finalize(
            project, args.finalize, args.lead, decisions, painted=painted, comment=args.comment
        )
        if before is not None and before.id == version.id:
            from ..review.adjudication import ALREADY_FINAL

            detail = f"as decided (version {version.id}); nothing new stored"
            left = {"id": args.finalize, "reason": ALREADY_FINAL, "detail": detail}
            return {"finalized": [], "left": [left]}
        [entry] = [
            e for e in decision_history(project, args.finalize) if e["version"] == version.id
        ]
        done = {"id": args.finalize, "version": version.id, "decided": describe_decision(entry)}
        lost = json.loads(version.note or "{}").get("overlap_by_class", {})
        if lost:
            done["overlaps"] = lost
        return {"finalized": [done], "left": []}
    outcomes = finalize_agreed(
        project,
        args.lead,
        args.min_agreement,
        case_ids=args.case,
        single_reader=args.single_reader,
        comment=args.comment,
    )
    done = [o for o in outcomes if o.version is not None]
    return {
        "finalized": [
            {"id": o.case_id, "version": o.version.id, "agreement": o.agreement} for o in done
        ],
        "left": [
            {"id": o.case_id, "readers": list(o.readers), "reason": o.reason}
            for o in outcomes
            if o.version is None
        ],
    }


#: More cases left out (or finalized) than this are summed up (``--json`` lists each).
SKIPPED_LISTED = 10


def _first_ids(cases: list[dict]) -> str:
    return first_ids([c["id"] for c in cases])


def _print_decision(done: dict) -> None:
    if "reopened" in done:
        print(f"reopened {done['reopened']}: back in the annotation queue")
        return
    finalized = done["finalized"]
    if len(finalized) > SKIPPED_LISTED:
        print(f"{len(finalized)} case(s) made final: {_first_ids(finalized)}")
    else:
        for case in finalized:
            agreement = case.get("agreement")
            how = "" if agreement is None else f" (readers agree at {agreement:.3f})"
            print(f"{case['id']:<16} final version {case['version']}{how}")
            if "decided" in case:
                print(f"{'':<16} {case['decided']}")
            for name, voxels in case.get("overlaps", {}).items():
                print(
                    f"{'':<16} warning: {voxels:,} voxel(s) of {name} from its source went to "
                    "another class taken first (the lead's paint, then classes taken from a "
                    "reader or STAPLE, then the consensus'; lower class first within each)"
                )
    # what the lead has to adjudicate is listed case by case; the rest, when many, per reason
    from ..review.adjudication import ALREADY_FINAL, NO_LABELS, ONE_READER

    routine_reasons = (ALREADY_FINAL, NO_LABELS, ONE_READER)
    routine = [c for c in done["left"] if c["reason"] in routine_reasons]
    summed = len(routine) > SKIPPED_LISTED
    for case in done["left"]:
        if not (summed and case["reason"] in routine_reasons):
            detail = f" {case['detail']}" if case.get("detail") else ""
            print(f"{case['id']:<16} left: {case['reason']}{detail}")
    if summed:
        hints = {
            NO_LABELS: " (still in the annotation queue)",
            ONE_READER: " (--single-reader takes them)",
        }
        for reason in routine_reasons:
            cases = [c for c in routine if c["reason"] == reason]
            if cases:
                hint = hints.get(reason, "")
                print(f"{len(cases)} case(s) left, {reason}{hint}: {_first_ids(cases)}")
    left = Counter(
        case["reason"] if case["reason"] in routine_reasons else "to adjudicate"
        for case in done["left"]
    )
    parts = [
        f"{left[reason]} {reason}" for reason in ("to adjudicate", *routine_reasons) if left[reason]
    ]
    print(
        f"finalized {len(finalized)} case(s), left {len(done['left'])}"
        + (f" ({', '.join(parts)})" if parts else "")
    )
    if summed or len(finalized) > SKIPPED_LISTED:
        print("(--json lists each case)")
    if any(case.get("agreement") is not None for case in done["finalized"]):
        print(
            "final labels are the readers' consensus (majority vote per voxel or cell; with "
            "two readers only what both labelled, ties to background / the milder grade)"
        )


def _print_skipped(skipped: list[dict], project: str, each: bool) -> None:
    """Why cases were left out: a line per case when few (or asked for by ``--case``);
    on a big project, where most cases have fewer than two readers, one line per reason
    with the first ids and what to do."""
    if each or len(skipped) <= SKIPPED_LISTED:
        for case in skipped:
            print(f"{case['id']:<16} skipped: {case['reason']}")
        return

    final = [c for c in skipped if c.get("final") is not None]
    unread = [c for c in skipped if not c["annotators"] and c.get("final") is None]
    single = [c for c in skipped if len(c["annotators"]) == 1 and c.get("final") is None]
    if final:
        print(
            f"{len(final)} case(s) final with fewer than two readers (nothing to compare or "
            f"decide): {_first_ids(final)}"
        )
    if unread:
        print(
            f"{len(unread)} case(s) not compared, no annotator has submitted or imported labels "
            f"yet (still in the annotation queue): {_first_ids(unread)}"
        )
    if single:
        readers = Counter(c["annotators"][0] for c in single)
        print(
            f"{len(single)} case(s) not compared, one reader only ("
            + ", ".join(f"{who} {n}" for who, n in sorted(readers.items()))
            + f"): {_first_ids(single)}. A review compares at least two annotators: have a second "
            f"annotator submit, or import another reader's labels ('atlas-annotate import "
            f"{project} --case ID --annotator NAME LABELS'); to make one reader's labels "
            f"final (with every case whose readers agree): 'atlas-annotate review {project} "
            "--finalize-agreed --lead NAME --single-reader'"
        )
    for case in skipped:
        if len(case["annotators"]) > 1:  # could not be compared (a damaged label file)
            print(f"{case['id']:<16} skipped: {case['reason']}")
    print(f"('atlas-annotate review {project} --json' lists each case left out and why)")


def _comparing(project, index):
    """A progress callback that names, on stderr, each case compared for the first time
    (about 4 s of Dice and HD95 a 512x512x300 CT; the metrics are kept, so the next run and
    the review dock read them)."""
    from ..review.cases import uncompared_cases

    new = uncompared_cases(project, distances=True, index=index)

    def progress(done: int, total: int, case_id: str) -> None:
        if case_id in new:
            print(f"[{done}/{total}] compared {case_id}'s readers", file=sys.stderr, flush=True)

    return progress


def _final_agreement(project):
    """Every reader against the current finals, naming on stderr each final case whose
    files are read for it the first time (the counts are kept for the next run)."""
    from ..review.final_agreement import compare_with_finals

    def progress(done: int, total: int, case_id: str) -> None:
        print(f"[{done}/{total}] compared {case_id}'s final", file=sys.stderr, flush=True)

    return compare_with_finals(project, progress=progress)


def _readers_json(agreement) -> dict:
    return {
        "finals": agreement.finals,
        "without_sources": agreement.unsourced,
        "unreadable": agreement.unreadable,
        "readers": [s.to_dict() for s in agreement.summaries()],
    }


def _print_readers(agreement, project: str) -> None:
    """One line per reader: how far the lead's finals are from the reader's labels; the
    cases left out as unreadable on stderr (the first 10)."""
    from ..review.final_agreement import summary_lines

    for line in summary_lines(agreement, project):
        print(line)
    for case_id, why in list(agreement.unreadable.items())[:10]:
        print(f"left out {case_id}: {why}", file=sys.stderr)
    if len(agreement.unreadable) > 10:
        print(
            f"left out {len(agreement.unreadable) - 10} more unreadable cases (--json lists each)",
            file=sys.stderr,
        )


def _fraction(value: float) -> str:
    """A 0..1 score to 3 decimals that never rounds onto the ends: 0.99952 is 0.999 and
    0.00048 is 0.001, so a row does not read Dice 1.000 beside a disagreement above 0."""
    if 0 < value < 0.001:
        return "0.001"
    if 0.999 < value < 1:
        return "0.999"
    return f"{value:.3f}"


def _check_options_apply(args: argparse.Namespace) -> None:
    """Refuse a lead's option given without the action it belongs to: it would be
    ignored, and the command would seem to have done what it asked."""
    from ..project import ProjectError

    belongs = (
        ("--take", bool(args.take), args.finalize, "--finalize CASE (one case's adjudication)"),
        ("--edited", args.edited is not None, args.finalize, "--finalize CASE"),
        ("--comment", bool(args.comment), args.finalize or args.finalize_agreed, "a finalize"),
        ("--reason", bool(args.reason), args.reopen, "--reopen CASE"),
        ("--single-reader", args.single_reader, args.finalize_agreed, "--finalize-agreed"),
        (
            "--min-agreement",
            args.min_agreement != MIN_AGREEMENT,
            args.finalize_agreed,
            "--finalize-agreed",
        ),
        (
            "--lead",
            bool(args.lead),
            args.finalize or args.finalize_agreed or args.reopen,
            "--finalize, --finalize-agreed or --reopen",
        ),
    )
    for option, given, action, what in belongs:
        if given and not action:
            raise ProjectError(f"{option} goes with {what}; nothing was done.")


def run(args: argparse.Namespace) -> int:
    from ..project import Project, ProjectError
    from ..review.adjudication import describe_decision
    from ..review.cases import review_project
    from ..review.consensus_files import write_consensus
    from ..review.readers import ReviewIndex
    from ..review.report import readers_section, write_report

    _check_options_apply(args)
    if args.write_consensus is not None:
        if len(args.case or []) != 1:
            raise ProjectError("--write-consensus needs exactly one --case ID.")
        with Project(args.project) as project:
            path = write_consensus(project, args.case[0], args.write_consensus)
        print(
            f"wrote case {args.case[0]}'s consensus to {path}; edit it on the CT, then: "
            f"atlas-annotate review {args.project} --finalize {args.case[0]} --lead NAME "
            f"--edited {path}"
        )
        return 0
    if args.finalize_agreed or args.finalize or args.reopen:
        with Project(args.project) as project:
            done = _lead_action(args, project)
        if args.json:
            print(json.dumps(done, indent=1))
        else:
            _print_decision(done)
        return 0
    if args.readers:
        if args.report or args.case:
            raise ProjectError(
                "--readers compares every final case with its readers: leave out --report "
                "and --case (--report has the same section)."
            )
        with Project(args.project) as project:
            agreement = _final_agreement(project)
        if args.json:
            print(json.dumps(_readers_json(agreement), indent=1))
        else:
            _print_readers(agreement, str(args.project))
        return 0
    with Project(args.project) as project:
        index = ReviewIndex(project)
        reviews, skipped = review_project(
            project,
            args.case,
            progress=_comparing(project, index),
            threads=args.threads,
            index=index,
        )
        if args.case and not reviews:
            raise ProjectError(
                "nothing to review: " + "; ".join(f"case {s['id']}: {s['reason']}" for s in skipped)
            )
        report = {
            "project": str(project.folder),
            "task": project.task,
            "cases": [r.to_dict() for r in reviews],
            "skipped": skipped,
        }
        if args.report:
            agreement = _final_agreement(project)
            path = write_report(
                args.report,
                reviews,
                skipped,
                title=project.config.name,
                task=project.task,
                class_names=project.classes or None,
                readers=readers_section(agreement.summaries(), agreement.finals),
            )
            report["report"] = str(path)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for case in report["cases"]:
        if "classes" in case:
            worst = min(
                (
                    (d, name, pair)
                    for name, c in case["classes"].items()
                    if any(v > 0 for v in c["volume_ml"].values())
                    for pair, d in c["dice"].items()
                ),
                default=(1.0, "-", "-"),
            )
            worst_ml = case["classes"].get(worst[1], {}).get("disputed_ml", 0.0)
            detail = (
                f"worst {worst[1]} Dice {_fraction(worst[0])} ({worst[2]}, {worst_ml:.1f} ml "
                "disputed); "
                f"{case['disputed_ml']:.1f} ml disputed in all"
            )
        else:
            overall = case["kappa"]["overall"]
            detail = (
                "kappa "
                + ", ".join(f"{p} {'-' if k is None else f'{k:.3f}'}" for p, k in overall.items())
                + f"; {len(case['disputed_cells'])} disputed cell(s)"
            )
        final = " FINAL" if case["final_version"] else ""
        print(
            f"{case['id']:<16} disagreement {_fraction(case['disagreement'])}  "
            f"[{', '.join(case['annotators'])}]  {detail}{final}"
        )
        for who, note in case["notes"].items():  # what the readers wrote for the lead
            print(f"{'':<16} note from {who}: {note}")
        for entry in case["history"]:  # the lead's decisions: who, when, what
            print(f"{'':<16} {describe_decision(entry)}")
    _print_skipped(skipped, str(args.project), each=bool(args.case))
    if not report["cases"] and not skipped:
        print(
            f"nothing to review: {args.project} has no cases yet; add them with "
            f"'atlas-annotate add {args.project} PATH...'."
        )
    if args.report:
        print(f"report: {report['report']}")
    return 0
