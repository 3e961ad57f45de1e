"""Benchmark: a radiologist correcting AI organ masks in the annotator dock at real CT size.

The dataset: ``--cases`` phantom abdominal CTs (``make_ct_phantom`` at 75 x 128 x 128)
upsampled four-fold (``scipy.ndimage.zoom``; linear for the image, nearest for the
organ labels) to 300 x 512 x 512, the affine's columns scaled so the physical extent
stays the same; every other case is written as DICOM (300 files, ``write_dicom_series``),
the others as NIfTI (``save_nifti``). Each case gets a proposal (the truth with the
anterior third and the aorta missing, as a weak helper model would give) and the first
case the highest uncertainty.

Each code version runs in a fresh child process (under ``xvfb-run``) on its own copy of
the project, ``--repeat`` times, the versions taking turns (the best mean per action is
reported: the machine may be shared); the session is the same script for both:

* **open**: the dock opening the project (``add_annotator_dock``), showing the most
  uncertain case with its proposal;
* **edit**: on each case, a liver stroke (brush 10), an erase stroke, Ctrl-Z of the
  erase, a spleen stroke on the next slice (each as a mouse drag: one undo step, one
  paint event);
* **submit**: *Submit and next case* (store the label, list the cases again, open the
  next case to do);
* **next**: with every case submitted, *Next* through the queue from the first case
  (each shows the submitted label).

Code versions: **ours** (this checkout) and **baseline**, the package as of
``--baseline-ref`` (extracted with ``git archive`` and put first on ``PYTHONPATH``). The
benchmark checks that every session stores the same corrected masks (sha256 of each)
and logs the same edits (tool, class, voxels changed, box of each event), and that Next
showed the submitted labels. ``--profile`` adds a profiled run of ours and prints the top of
cProfile.

Run: ``xvfb-run -a python bench/organ_dock.py [--cases 4] [--baseline-ref REF]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from baseline import baseline_code, child_env, profile_text, run_child

STEPS = ("open", "edit", "submit", "next")
ANNOTATOR = "dr_bench"
SMALL = (75, 128, 128)
ZOOM = 4


# -- the dataset ---------------------------------------------------------------------------
def upsampled_phantom(seed: int):
    """A phantom CT and its labels at ``SMALL`` zoomed ``ZOOM``-fold, same extent."""
    import numpy as np
    from scipy import ndimage

    from napari_atlas_annotate.phantoms.ct import make_ct_phantom
    from napari_atlas_annotate.volume import Volume

    image, label, _ = make_ct_phantom(seed, shape=SMALL)
    array = ndimage.zoom(np.asarray(image.array, np.float32), ZOOM, order=1)
    labels = ndimage.zoom(np.asarray(label.array), ZOOM, order=0)
    affine = np.array(image.affine, float)
    for j, n in enumerate(SMALL):  # zoom maps the corner voxels onto each other
        affine[:3, j] /= (n * ZOOM - 1) / (n - 1)
    big = Volume(np.round(array).astype(np.int16), affine, "CT", dict(image.metadata))
    return big, labels.astype(np.uint8)


def make_dataset(root: Path, cases: int, seed: int) -> Path:
    """``cases`` real-size CTs under ``root/images`` and a project ``root/project`` with a
    proposal for each; returns the project folder."""
    from napari_atlas_annotate.io.dicom_writer import write_dicom_series
    from napari_atlas_annotate.io.nifti import save_nifti
    from napari_atlas_annotate.phantoms.ct import CLASSES
    from napari_atlas_annotate.phantoms.writer import case_seed
    from napari_atlas_annotate.project import ImageRef, Project

    project = Project.create(root / "project", task="organs", classes=list(CLASSES))
    for i in range(cases):
        case_id = f"ct{i:03d}"
        image, truth = upsampled_phantom(case_seed(seed, i, 1))
        if i % 2 == 0:
            path = root / "images" / case_id
            write_dicom_series(
                image, path, modality="CT", series_description="CT abdomen", patient_id=case_id,
                uid_seed=f"organ-dock-bench-{i}",
            )  # fmt: skip
        else:
            path = save_nifti(image, root / "images" / f"{case_id}.nii.gz")
        project.add_case(case_id, [ImageRef(str(path), "CT abdomen")])
        proposal = truth.copy()
        proposal[:, : truth.shape[1] // 3] = 0  # the helper model missed the anterior third
        proposal[proposal == 1] = 0  # ... and the aorta
        project.save_mask_version(case_id, proposal, kind="proposal", model_version="bench")
    project.set_uncertainty("ct000", 0.9)
    project.close()
    return root / "project"


# -- the session (child process) -----------------------------------------------------------
def _stroke(layer, *coords) -> None:
    """What a mouse drag does: one undo step, one paint event at the end (erase mode
    paints the background, as napari's mouse does)."""
    value = 0 if str(layer.mode) == "erase" else layer.selected_label
    with layer.block_history():
        for coord in coords:
            layer.paint(coord, value)


def _edit(dock) -> None:
    """Liver stroke, erase stroke, undo the erase, spleen stroke, on the middle slice."""
    import numpy as np

    layer = dock.labels_layer
    data = np.asarray(layer.data)
    z = data.shape[0] // 2
    dock.brush_spin.setValue(10)
    layer.mode = "paint"
    liver, spleen = (dock.project.classes.index(c) + 1 for c in ("liver", "spleen"))
    dock.select_class(liver)
    y, x = (int(v) for v in np.argwhere(data[z] == liver)[0])
    _stroke(layer, *[(z, y + 20, x + k) for k in range(0, 60, 4)])
    layer.mode = "erase"
    _stroke(layer, *[(z, y + 30 + k, x + 10) for k in range(0, 40, 4)])
    layer.undo()
    layer.mode = "paint"
    dock.select_class(spleen)
    _stroke(layer, *[(z + 1, 256 + k, 380) for k in range(0, 40, 4)])


def _session(folder: str, profiler) -> tuple[dict, dict]:
    """The scripted session; seconds of each action and what Next showed."""
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_atlas_annotate._qt.annotator import add_annotator_dock

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=False)
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    times.update({f"{s} cpu": [] for s in STEPS})

    def timed(step, fn):
        start, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        out = fn()
        app.processEvents()
        if profiler:
            profiler.disable()
        times[step].append(time.perf_counter() - start)
        times[f"{step} cpu"].append(time.process_time() - cpu)
        return out

    dock = timed("open", lambda: add_annotator_dock(viewer, folder, ANNOTATOR))
    shown: dict = {}
    while dock.case_id is not None and dock.case_id not in shown:
        case_id = dock.case_id
        timed("edit", lambda: _edit(dock))
        shown[case_id] = None
        version = timed("submit", dock.submit)
        if version is None:
            raise RuntimeError(f"{case_id}: {dock.last_error}")
        if dock.case_id == case_id:  # all submitted: the last case stays open
            break
    dock.load_case(dock.case_ids()[0])
    while True:
        data = np.asarray(dock.labels_layer.data)
        shown[dock.case_id] = hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()
        before = dock.case_id
        timed("next", lambda: dock.step_case(+1))
        if dock.case_id == before:
            times["next"].pop()  # the end of the queue: nothing opened
            times["next cpu"].pop()
            break
    layers = sorted(layer.name for layer in viewer.layers)
    dock.close_case()
    viewer.close()
    return times, {"shown": shown, "layers_at_end": layers}


def _results(folder: str) -> dict:
    """Digest of each case's corrected mask, and its logged edits."""
    import numpy as np

    from napari_atlas_annotate.project import Project

    out = {}
    with Project(folder) as project:
        for case in sorted(project.cases(), key=lambda c: c.id):
            version = project.latest_version(case.id, kinds=("corrected",))
            mask = None if version is None else project.read_mask(version)
            events = [
                [e.tool, e.class_id]
                + ([] if e.diff is None else [e.diff.n_changed, [list(b) for b in e.diff.bbox]])
                for e in project.events(case.id, ANNOTATOR)
            ]
            out[case.id] = {
                "mask": None
                if mask is None
                else hashlib.sha256(np.ascontiguousarray(mask).tobytes()).hexdigest(),
                "events": events,
            }
    return out


def _child(args) -> None:
    profiler = None
    if args.child_profile:
        import cProfile

        profiler = cProfile.Profile()
    times, seen = _session(args.project, profiler)
    result = {"times": times, "seen": seen, "results": _results(args.project)}
    if profiler:
        result["profile"] = profile_text(profiler, args.child_profile)
    print("RESULT " + json.dumps(result))


def _run(work: Path, name: str, code: Path | None, profile: int = 0) -> dict:
    """The session with one code version on a fresh copy of the project."""
    project = work / f"project_{name}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(work / "data" / "project", project)
    env = child_env(code)
    argv = [sys.executable, __file__, "--child", "session", "--project", str(project)]
    argv += ["--child-profile", str(profile)] if profile else []
    try:
        return run_child(argv, env, f"{name} session")
    finally:
        shutil.rmtree(project, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-ref", default="adccacc", help="git ref ('' for none)")
    parser.add_argument("--repeat", type=int, default=2, help="sessions per version (best)")
    parser.add_argument("--profile", type=int, default=0, help="lines of cProfile (ours)")
    parser.add_argument("--keep", help="folder to keep the data in (default: a temp folder)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="organ_dock_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        if not (work / "data" / "project").is_dir():
            shutil.rmtree(work / "data", ignore_errors=True)
            make_dataset(work / "data", args.cases, args.seed)
        size = sum(f.stat().st_size for f in (work / "data" / "images").rglob("*")) / 2**20
        n = len(list((work / "data" / "images").iterdir()))
        shape = tuple(s * ZOOM for s in SMALL)
        print(
            f"dataset: {n} CT cases of {shape} (every other one DICOM, one file a slice; the "
            f"others NIfTI), {size:.0f} MB, ready in {time.perf_counter() - start:.0f} s"
        )
        versions = {"ours": None}
        if args.baseline_ref:
            base = work / f"baseline_{args.baseline_ref}"
            versions["baseline"] = base if base.is_dir() else baseline_code(args.baseline_ref, base)
        tries: dict[str, list] = {name: [] for name in versions}
        for _ in range(args.repeat):  # interleaved, so both see the same machine load
            for name, code in versions.items():
                tries[name].append(_run(work, name, code))
        runs = {name: found[0] for name, found in tries.items()}
        print("\nseconds per action; open: the project and its first case; edit: three strokes")
        print("and an undo; submit: store, list, open the next case; next: Next to a submitted")
        print("case. Wall clock, then this process's CPU time (less disturbed by a busy machine)")
        for suffix in ("", " cpu"):
            rows = []
            for name, found in tries.items():
                means = [
                    {
                        s: sum(r["times"][s + suffix]) / max(1, len(r["times"][s + suffix]))
                        for s in STEPS
                    }
                    for r in found
                ]
                rows.append((name, {s: min(m[s] for m in means) for s in STEPS}))
            print(f"\n{suffix.strip() or 'wall':10s}" + "".join(f"{s:>10s}" for s in STEPS))
            for name, row in rows:
                print(f"{name:10s}" + "".join(f"{row[s]:10.3f}" for s in STEPS))
            if len(rows) == 2:
                (_, o), (_, b) = rows
                ratios = [f"{b[s] / o[s]:9.2f}x" if o[s] else f"{'-':>10s}" for s in STEPS]
                print(f"{'base/ours':10s}" + "".join(ratios))
        ours = runs["ours"]
        for name, run in runs.items():
            stored = {c: r["mask"] for c, r in run["results"].items()}
            same = run["seen"]["shown"] == stored
            print(f"{name}: Next showed the submitted labels: {'yes' if same else 'NO'}; layers at")
            print(f"  the end: {run['seen']['layers_at_end']}")
        if len(tries) == 2:
            others = [r["results"] for found in tries.values() for r in found]
            masks = all(
                o.keys() == ours["results"].keys()
                and all(ours["results"][c]["mask"] == o[c]["mask"] for c in o)
                for o in others
            )
            events = all(
                all(ours["results"][c]["events"] == o[c]["events"] for c in o) for o in others
            )
            n = sum(len(found) for found in tries.values())
            print(f"submitted masks ({n} sessions):", "same" if masks else "DIFFERENT")
            print(f"logged edits ({n} sessions):", "same" if events else "DIFFERENT")
        if args.profile:
            print("\ncProfile of ours:")
            print(_run(work, "profile", None, args.profile)["profile"])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
