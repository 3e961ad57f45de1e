"""Comparing two graders' RSNA scores by bootstrap: ours against a baseline commit.

``compare_graders`` decides whether a retrained grader is promoted, and ``score-rsna``
compares submissions with it. It resamples studies with replacement ``resamples`` times;
the baseline scored every row of every resample again, ours sums each study's losses and
weights once and scores a resample as a matrix product. Both run in child processes on
the same synthetic Kaggle-size data (default 1975 studies, 25 cells each, about 1 % of
cells left blank as in train.csv; two graders: noisy one-hot predictions of the truth)
and must give the same scores and the same share of resamples won.

    python bench/rsna_compare.py [--studies 1975] [--resamples 200] [--baseline-ref 62f590d]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import child_env, code_versions, head_commit, run_child  # noqa: E402


def _data(studies: int, seed: int):
    import numpy as np

    from napari_atlas_annotate.spine_grades import CONDITIONS, GRADES, LEVELS

    rng = np.random.default_rng(seed)
    truth, graders = {}, ({}, {})
    for s in range(studies):
        sheet, preds = {}, ({}, {})
        for condition in CONDITIONS:
            for level in LEVELS:
                if rng.random() < 0.01:
                    continue  # a blank train.csv cell
                grade = int(rng.choice(3, p=[0.78, 0.15, 0.07]))
                sheet[(condition, level)] = GRADES[grade]
                for pred, noise in zip(preds, (1.0, 0.99), strict=True):
                    p = np.eye(3)[grade] * 2.0 + rng.gamma(noise, 1.0, 3)
                    pred[(condition, level)] = (p / p.sum()).tolist()
        truth[s] = sheet
        for grader, pred in zip(graders, preds, strict=True):
            grader[s] = pred
    return truth, graders


def child(studies: int, resamples: int) -> None:
    from napari_atlas_annotate.models.grader_comparison import compare_graders

    truth, (old, new) = _data(studies, seed=0)
    t0 = time.perf_counter()
    verdict = compare_graders(truth, old, new, resamples=resamples, seed=0)
    seconds = time.perf_counter() - t0
    result = {
        "seconds": seconds,
        "old": verdict.old["score"],
        "new": verdict.new["score"],
        "win_share": verdict.win_share,
    }
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1975)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--baseline-ref", default="62f590d")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.studies, args.resamples)
        return
    with tempfile.TemporaryDirectory(prefix="rsna-compare-") as tmp:
        versions = code_versions(Path(tmp), args.baseline_ref)
        argv = [sys.executable, __file__, "--child", "--studies", str(args.studies)]
        results = {
            name: run_child([*argv, "--resamples", str(args.resamples)], child_env(code), name)
            for name, code in versions.items()
        }
    ours, base = results["ours"], results["baseline"]
    print(f"{args.studies} studies, {args.resamples} resamples (ours {head_commit()})")
    for name, r in results.items():
        print(
            f"  {name:9s} {r['seconds']:8.2f} s  old {r['old']:.6f}  new {r['new']:.6f}  "
            f"new wins {r['win_share']:.3f}"
        )
    same = (
        abs(ours["old"] - base["old"]) < 1e-9
        and abs(ours["new"] - base["new"]) < 1e-9
        and ours["win_share"] == base["win_share"]
    )
    print(f"same verdict: {same}; speed-up {base['seconds'] / ours['seconds']:.0f}x")
    if not same:
        raise SystemExit("ours and the baseline disagree")


if __name__ == "__main__":
    main()
