"""``atlas-annotate score-rsna SOLUTION_CSV SUBMISSION_CSV [...] [--json] [--allow-missing]``.

Scores Kaggle-format RSNA 2024 lumbar submissions (``row_id,normal_mild,moderate,severe``;
``export --format rsna-submission`` writes them) against a train.csv-style solution
(``export --format rsna`` writes it; Kaggle's own train.csv works as well) with the
competition's metric (:func:`~..models.rsna_metric.rsna_score`), and prints per submission
the score, its four terms and the studies and rows scored. With two or more submissions,
each later one is compared with the first by a paired bootstrap over studies
(:func:`~..models.grader_comparison.compare_graders`): the share of resamples in which it
scores lower says how sure "round 3 beats round 2" is.

Blank solution cells are not scored; a graded cell without a submission row is refused
unless ``--allow-missing``; submission rows of studies the solution lacks are ignored and
counted. Bad input gives one line naming the file (and line) and exit code 1.
"""

from __future__ import annotations

import json
import sys

from ..cli import positive_int
from ..models.grader_comparison import PROMOTE_WIN_SHARE, RESAMPLES
from ..models.rsna_metric import TERMS


def configure(parser) -> None:
    parser.add_argument("solution", metavar="SOLUTION_CSV", help="train.csv-style true grades")
    parser.add_argument(
        "submissions",
        metavar="SUBMISSION_CSV",
        nargs="+",
        help="submission.csv files; with several, each is compared with the first",
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="score only the graded cells a submission has rows for (default: a graded cell "
        "without a row is an error)",
    )
    parser.add_argument(
        "--resamples",
        type=positive_int,
        default=RESAMPLES,
        help=f"bootstrap resamples of the studies when comparing submissions (default {RESAMPLES})",
    )
    parser.add_argument("--json", action="store_true", help="print everything as one JSON object")


def run(args) -> int:
    from ..models.rsna_files import RsnaFileError, score_files

    def comparing(path, baseline, studies: int) -> None:
        print(
            f"comparing {path} with {baseline}: {args.resamples} bootstrap resamples of "
            f"{_plural(studies, 'study')} ...",
            file=sys.stderr,
        )

    try:
        report = score_files(
            args.solution,
            args.submissions,
            args.allow_missing,
            resamples=args.resamples,
            comparing=comparing,
        )
    except RsnaFileError as exc:
        print(f"atlas-annotate score-rsna: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for line in report_lines(report):
        print(line)
    return 0


def _f(value: float | None) -> str:
    return "n/a (no rows)" if value is None else f"{value:.4f}"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def report_lines(report: dict) -> list[str]:
    """The report of :func:`~..models.rsna_files.score_files` in plain words."""
    sol = report["solution"]
    lines = [
        f"solution {sol['path']}: {_plural(sol['studies'], 'study')}, "
        f"{_plural(sol['graded_cells'], 'graded cell')}"
        + (f", {sol['blank_cells']} blank (not scored)" if sol["blank_cells"] else "")
    ]
    for sub in report["submissions"]:
        lines.append(f"{sub['path']}: score {_f(sub['score'])} (lower is better)")
        lines.append("  " + "  ".join(f"{t} {_f(sub[t])}" for t in TERMS))
        scored = (
            f"  scored {_plural(sub['rows_scored'], 'row')} of "
            f"{_plural(sub['studies_scored'], 'study')}"
        )
        if sub["rows_missing"]:
            scored += (
                f"; {_plural(sub['rows_missing'], 'graded cell')} without a row left out "
                "(--allow-missing)"
            )
        if sub["studies_ignored"]:
            scored += (
                f"; {_plural(sub['rows_ignored'], 'row')} of "
                f"{_plural(sub['studies_ignored'], 'study')} not in the solution ignored"
            )
        lines.append(scored)
    for cmp in report["comparisons"]:
        share = cmp["win_share"]
        if share is None:
            how = "no bootstrap resample could score both"
        else:
            how = (
                f"lower in {100 * share:.1f} % of {cmp['resamples']} bootstrap resamples of "
                f"the {_plural(cmp['studies'], 'study')}"
            )
        verdict = (
            f"clearly better (lower in at least {100 * PROMOTE_WIN_SHARE:.0f} %)"
            if cmp["clearly_better"]
            else "not clearly better"
        )
        both = ""
        if any(s["rows_missing"] for s in report["submissions"]):
            both = f" on the {_plural(cmp['rows'], 'row')} both have"
        lines.append(
            f"{cmp['path']} vs {cmp['baseline']}{both}: {_f(cmp['score'])} vs "
            f"{_f(cmp['baseline_score'])}, {how}: {verdict}"
        )
    return lines
