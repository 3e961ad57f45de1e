"""Benchmark: `atlas-annotate review` comparing a project's cases in threads, side by side.

The first `review` of a project compares every double-read case (Dice, HD95, volumes):
about 10 s a 512x512x300 CT on one core, hours for a few hundred. The metrics read files
and count in numpy, torch and scipy, which let go of the GIL, so cases can be compared
at once in threads (``review_project(threads=N)``; the database stays on the calling
thread). On the project of ``bench/review_rank.py`` (``--cases`` cases of 300x512x512
phantom labels read by two readers) this times ``review_project(project)`` as the command
calls it, each run in a fresh child process on a fresh copy of the project:

* ours: ``--threads`` cases at once (default 2: this machine's cores);
* baseline: the same code with ``threads=1``, one case after another, as before.

Both must give the same reviews (checked). Run: ``python bench/review_threads.py [--cases
6] [--threads 2]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from baseline import head_commit, peak_rss_mb, session_on_copy
from review_rank import make_project


def child(project_folder: str, threads: int) -> None:
    """Review the project with ``threads`` threads; print RESULT."""
    from napari_atlas_annotate.project import Project
    from napari_atlas_annotate.review.cases import review_project

    with Project(project_folder) as project:
        t0 = time.perf_counter()
        reviews, _ = review_project(project, threads=threads)
        seconds = time.perf_counter() - t0
    found = [r.to_dict() for r in reviews]
    print("RESULT " + json.dumps({"seconds": seconds, "mb": peak_rss_mb(), "reviews": found}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_review_rank"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.threads)
        return
    make_project(args.work, args.cases)
    runs = {
        name: session_on_copy(__file__, args.work, name, None, ["--threads", str(threads)])
        for name, threads in (("ours", args.threads), ("baseline", 1))
    }
    ours, base = runs["ours"], runs["baseline"]
    same = ours["reviews"] == base["reviews"]
    print(f"{args.cases} cases of 300x512x512, two readers each: first review (Dice and HD95)")
    print(f"{'':34s}{'seconds':>10s}{'peak RSS MB':>14s}")
    rows = {"ours": f"ours ({head_commit()}), {args.threads} threads", "baseline": "one thread"}
    for name, result in runs.items():
        print(f"{rows[name]:34s}{result['seconds']:10.1f}{result['mb']:14.0f}")
    print(f"{'baseline / ours':34s}{base['seconds'] / ours['seconds']:9.2f}x")
    print(f"same reviews: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
