"""``atlas-annotate demo``: a real demo campaign, opened in napari (or rendered headless).

Builds (or reuses) two projects in ``--out`` (:func:`~napari_atlas_annotate.demo_project.
build_demo_project`): an organ project of abdominal CT phantoms and a spine project of
lumbar MRI phantoms, from an acquisition site the starter models were not trained on,
every case proposed by the starter models so the queue is ordered by their uncertainty.
It prints each proposal's quality against the phantom truth (mean organ Dice; RSNA score
for the grades), then opens napari with the annotator dock on the organ project (the
queue's first case with its proposal) and a second window with the spine project's grade
sheet, both as annotator ``demo``.

Without a display (Linux with neither DISPLAY nor WAYLAND_DISPLAY) it stops with exit code
2 and says what to do. ``--headless`` never opens a window on the user's screen: it starts
a private Xvfb server, renders the same windows there in a child process, and writes
``demo_screenshot.png`` (organ dock), ``demo_screenshot_lumbar.png`` (grade sheet) and
``demo_summary.json`` (projects, cases with proposal quality and uncertainty, seconds).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..demo_project import DEMO_ANNOTATOR

#: Exit code for "cannot run here as asked" (no display), like argparse's usage errors.
EXIT_NO_DISPLAY = 2
#: Phantoms in the demo set: enough for a queue, small enough to propose in seconds.
N_CT, N_MRI = 3, 2
#: Acquisition site of the demo phantoms (the starter models were trained on site 0).
SITE = 1
#: Longest the headless render may take (napari start-up included).
RENDER_TIMEOUT_S = 300

NO_DISPLAY_MESSAGE = (
    "atlas-annotate demo: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so "
    "napari cannot open a window.\n"
    "  Rerun with --headless to write screenshots and a summary instead:\n"
    "      atlas-annotate demo --headless\n"
    "  or run the interactive demo under a virtual display: xvfb-run -a atlas-annotate demo"
)

NO_XVFB_MESSAGE = (
    "--headless renders in a private Xvfb X server, and Xvfb is not installed. Install it "
    "(Debian/Ubuntu: apt-get install xvfb) or run the demo on a machine with a display."
)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` options to ``parser``."""
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("atlas-demo"),
        help="folder for the demo projects and outputs (default: ./atlas-demo; reused if "
        "it holds a demo already)",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no window: render in a private Xvfb and save demo_screenshot.png, "
        "demo_screenshot_lumbar.png and demo_summary.json in --out",
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default: 0)")


def has_display(environ: dict[str, str] | None = None) -> bool:
    """Whether a GUI can open: always off Linux, else DISPLAY or WAYLAND_DISPLAY is set."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def say(text: str) -> None:
    print(f"atlas-annotate demo: {text}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Build (or reuse) the demo projects, then open them in napari or render them headless."""
    if not args.headless and not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_NO_DISPLAY
    if args.headless and shutil.which("Xvfb") is None:
        print(f"atlas-annotate demo: {NO_XVFB_MESSAGE}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    from ..demo_project import build_demo_project, demo_cases

    start = time.perf_counter()
    out = Path(args.out)
    demo = build_demo_project(out, args.seed, N_CT, N_MRI, SITE, progress=say)
    built = time.perf_counter()
    cases = demo_cases(demo.organs, demo.spine)
    scored = time.perf_counter()
    print_cases(cases)
    seconds = {"build": round(built - start, 2), "score": round(scored - built, 2)}
    if args.headless:
        return _run_headless(out, demo, cases, args.seed, seconds, start)
    return _run_interactive(demo)


def print_cases(cases: list[dict[str, Any]]) -> None:
    """One line per case, queue order per project: proposal quality and uncertainty."""
    for task, title in (("organs", "organ"), ("spine", "spine")):
        rows = [c for c in cases if c["task"] == task]
        if not rows:
            continue
        say(f"{title} queue (most uncertain first), proposals vs phantom truth:")
        for row in rows:
            if task == "organs":
                quality = f"mean Dice {_fmt(row['proposal_mean_dice'])}"
            else:
                quality = f"RSNA score {_fmt(row['rsna_score'])} (lower is better)"
            print(
                f"    {row['id']:<16} uncertainty {_fmt(row['uncertainty'])}  {quality}  "
                f"[{row['model_version'] or 'no proposal'}]"
            )


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _run_interactive(demo) -> int:
    import napari

    from .._napari.demo_scene import show_organ_project, show_spine_project

    viewer = napari.Viewer(title="atlas-annotate demo: CT organs")
    show_organ_project(viewer, demo.organs, DEMO_ANNOTATOR)
    spine = napari.Viewer(title="atlas-annotate demo: lumbar MRI")
    show_spine_project(spine, demo.spine, DEMO_ANNOTATOR)
    say(
        f"annotating as '{DEMO_ANNOTATOR}'; close the napari windows to finish. Reopen later "
        f"with: atlas-annotate open {demo.organs} --annotator {DEMO_ANNOTATOR}"
    )
    napari.run()
    return 0


def _run_headless(
    out: Path, demo, cases: list[dict[str, Any]], seed: int, seconds: dict, start: float
) -> int:
    screenshot = out / "demo_screenshot.png"
    summary_path = out / "demo_summary.json"
    with tempfile.TemporaryDirectory(prefix="atlas-demo-") as tmp:
        scene = {
            "organs": str(demo.organs),
            "spine": str(demo.spine),
            "annotator": DEMO_ANNOTATOR,
            "screenshot": str(screenshot),
            "study_screenshot": str(out / "demo_screenshot_lumbar.png"),
            "result": str(Path(tmp) / "render.json"),
        }
        scene_path = Path(tmp) / "scene.json"
        scene_path.write_text(json.dumps(scene))
        try:
            with virtual_display() as display:
                env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
                env.pop("WAYLAND_DISPLAY", None)
                child = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "napari_atlas_annotate._napari.demo_scene",
                        str(scene_path),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=RENDER_TIMEOUT_S,
                )
        except XvfbUnavailable as exc:
            print(f"atlas-annotate demo: {exc}", file=sys.stderr)
            return EXIT_NO_DISPLAY
        except subprocess.TimeoutExpired:
            print(
                f"atlas-annotate demo: napari did not finish within {RENDER_TIMEOUT_S} s",
                file=sys.stderr,
            )
            return 1
        if child.returncode != 0:
            tail = "\n".join((child.stderr or child.stdout).strip().splitlines()[-25:])
            print(
                f"atlas-annotate demo: rendering failed (exit {child.returncode}):\n{tail}",
                file=sys.stderr,
            )
            return 1
        render = json.loads(Path(scene["result"]).read_text())
    keys = ("id", "task", "proposal_mean_dice", "rsna_score", "uncertainty", "model_version")
    summary = {
        "organ_project": str(demo.organs),
        "spine_project": str(demo.spine),
        "manifest": str(demo.manifest),
        "seed": seed,
        "site": SITE,
        "annotator": DEMO_ANNOTATOR,
        "cases": [{k: c[k] for k in keys if k in c} for c in cases],
        "opened": render["opened"],
        "viewers": render["viewers"],
        "screenshots": render["screenshots"],
        "seconds": {
            **seconds,
            "render": render["seconds"],
            "total": round(time.perf_counter() - start, 2),
        },
    }
    summary_path.write_text(json.dumps(summary, indent=2))
    say(f"screenshots {screenshot}, {scene['study_screenshot']}")
    say(f"summary     {summary_path}")
    return 0


class XvfbUnavailable(RuntimeError):
    """No Xvfb binary, or it would not start."""


class virtual_display:  # noqa: N801 - used as a context manager, reads like a function
    """A private Xvfb X server for the duration of a ``with`` block; yields ``":N"``.

    The server picks a free display number itself (``-displayfd``), so parallel runs do not
    collide, and is terminated on exit.
    """

    def __init__(self, size: str = "1600x1200x24") -> None:
        self.size = size
        self.process: subprocess.Popen | None = None
        self.log = None

    def __enter__(self) -> str:
        xvfb = shutil.which("Xvfb")
        if xvfb is None:
            raise XvfbUnavailable(NO_XVFB_MESSAGE)
        read_fd, write_fd = os.pipe()
        # Xvfb's chatter goes to a file: a pipe nobody reads could fill up and stall it.
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [xvfb, "-displayfd", str(write_fd), "-screen", "0", self.size, "-nolisten", "tcp"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()  # Xvfb writes it once it accepts connections
        if not number:
            self.process.wait(timeout=10)
            self.log.seek(0)
            err = self.log.read().decode(errors="replace").strip()[-500:]
            self.log.close()
            raise XvfbUnavailable(f"Xvfb did not start: {err}")
        return f":{number}"

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()
