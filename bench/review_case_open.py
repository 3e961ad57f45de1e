"""Benchmark: opening real-size organ cases in the lead's review dock, side by side.

An organ project of ``--cases`` cases of 300 x 512 x 512 phantom labels, each read by alice
(the truth) and bob (the liver grown by 1-3 voxels), as in ``bench/review_rank.py``. In a
headless napari viewer the review dock opens the project (its ranking is waited for), then
opens every case twice: first with no HD95 kept, then again. Per open it times how long
``load_case`` (what a click in the case list does) holds the GUI thread, when the table
shows every number (HD95 included), and the GUI thread's longest pause from the click to
then (a 5 ms Qt timer's largest gap: what the lead feels as a frozen viewer). Each code
version runs in its own child process on a fresh copy of the project.

* ours: the consensus and disagreement map counted only where the readers differ, the
  disputed voxels found once per case, HD95 of a big case in the background, the next
  case's image and label files read while the lead looks at a case (``--dwell`` seconds,
  events processed; 3 by default);
* baseline (``--baseline-ref``, default 134e036, the commit before this work): a
  per-label count over the whole grid for the vote and for the disagreement map, the
  class's disputed voxels over the whole grid twice per class shown, HD95 on the GUI
  thread before the case shows, every file read when the case is opened.

Then the lead finalizes each case (bob's liver, the consensus for the rest), timed the same
way; ours uses the label maps it shows when they are still the stored versions (checked
by digest) and shows the case again without reading its files.

Both must show the same consensus, disagreement map and table, and store the same final
labels (checked by digest). Run:
``xvfb-run -a python bench/review_case_open.py [--cases 3] [--dwell 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from baseline import code_versions, head_commit, session_on_copy
from review_rank import make_project

DEFAULT_REF = "134e036"


def _table_text(dock) -> list[list[str]]:
    table = dock.table
    return [
        [table.item(r, c).text() for c in range(table.columnCount()) if table.item(r, c)]
        for r in range(table.rowCount())
    ]


def child(project_folder: str, dwell: float) -> None:
    """Open every case twice as this code version's dock does, looking at each for
    ``dwell`` seconds (Qt events processed); print RESULT."""
    import napari
    import numpy as np
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.review import ReviewDock

    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    dock = ReviewDock(viewer, project_folder, lead="lee")
    task = getattr(dock, "task", None)

    def busy() -> bool:
        return task is not None and task.running

    def settle() -> None:
        while busy():
            app.processEvents()
            time.sleep(0.005)
        app.processEvents()

    settle()  # the ranking (ours: in the background)
    gaps, last = [], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    opens, digests = [], []
    for _ in range(2):
        for case_id in dock.case_ids():
            app.processEvents()
            gaps.clear()
            t0 = last[0] = time.perf_counter()
            assert dock.load_case(case_id), dock.last_error
            returned = time.perf_counter() - t0
            settle()
            shown = time.perf_counter() - t0
            opens.append({"case": case_id, "gui": returned, "all": shown, "pause": max(gaps)})
            end = time.perf_counter() + dwell
            while time.perf_counter() < end:  # the lead looks at the case
                app.processEvents()
                time.sleep(0.005)
            layers = {layer.name: np.asarray(layer.data) for layer in viewer.layers}
            digest = hashlib.sha256()
            for name in ("consensus", "disagreement"):
                digest.update(layers[name].tobytes())
            digest.update(json.dumps(_table_text(dock)).encode())
            digests.append(digest.hexdigest())
    finals = []
    for case_id in dock.case_ids():  # then the lead finalizes each, taking bob's liver
        assert dock.load_case(case_id), dock.last_error
        settle()
        dock.choose("liver", "bob")
        app.processEvents()
        gaps.clear()
        t0 = last[0] = time.perf_counter()
        version = dock.finalize()
        returned = time.perf_counter() - t0
        settle()
        assert version is not None, dock.last_error
        finals.append({"case": case_id, "gui": returned, "pause": max(gaps), "sha": version.sha256})
    timer.stop()
    viewer.close()
    print(
        "RESULT " + json.dumps({"opens": opens, "digests": digests, "finals": finals}), flush=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--dwell", type=float, default=3.0, help="s spent on each case")
    parser.add_argument("--baseline-ref", default=DEFAULT_REF)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_review_case_open"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dwell)
        return
    make_project(args.work, args.cases)
    versions = code_versions(args.work, args.baseline_ref)
    found = {
        name: session_on_copy(__file__, args.work, name, code, ["--dwell", str(args.dwell)])
        for name, code in versions.items()
    }
    for result in found.values():
        result["final_shas"] = [f["sha"] for f in result["finals"]]
    same = all(found["ours"][k] == found["baseline"][k] for k in ("digests", "final_shas"))
    n = args.cases
    print(f"{n} cases of 300x512x512, two readers each; each opened twice (s per open)")
    print(f"{'':26s}{'open':>6s}{'GUI thread':>12s}{'all shown':>11s}{'longest pause':>15s}")
    labels = {"ours": f"ours ({head_commit()})", "baseline": f"baseline ({args.baseline_ref})"}
    means = {}
    for name, result in found.items():
        for which, part in (("first", result["opens"][:n]), ("second", result["opens"][n:])):
            row = [sum(o[k] for o in part) / n for k in ("gui", "all")]
            row.append(max(o["pause"] for o in part))
            means[name, which] = row
            print(f"{labels[name]:26s}{which:>6s}{row[0]:12.2f}{row[1]:11.2f}{row[2]:15.2f}")
    for which in ("first", "second"):
        b, o = means["baseline", which], means["ours", which]
        print(
            f"{'baseline / ours':26s}{which:>6s}{b[0] / o[0]:11.1f}x{b[1] / o[1]:10.1f}x"
            f"{b[2] / o[2]:14.1f}x"
        )
    print(f"{'':26s}{'Finalize (GUI thread s)':>26s}{'longest pause':>15s}")
    finalize = {}
    for name, result in found.items():
        finals = result["finals"]
        finalize[name] = (sum(f["gui"] for f in finals) / n, max(f["pause"] for f in finals))
        print(f"{labels[name]:26s}{finalize[name][0]:26.2f}{finalize[name][1]:15.2f}")
    (bg, bp), (og, op) = finalize["baseline"], finalize["ours"]
    print(f"{'baseline / ours':26s}{bg / og:25.1f}x{bp / op:14.1f}x")
    print(f"same consensus, disagreement map, table and final labels: {same}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
