"""``atlas-annotate demo``: synthetic phantoms, opened in napari (or rendered headless).

Writes a small set of deterministic phantoms (abdominal CTs with organ truth, a lumbar MRI
study) into ``--out`` and opens the first CT with its truth, and the lumbar study, in
napari through this plugin's reader.

Without a display (Linux with neither DISPLAY nor WAYLAND_DISPLAY) it stops with exit code
2 and says what to do. ``--headless`` never opens a window on the user's screen: it starts
a private Xvfb server, renders the same viewers there in a child process, and writes
``demo_screenshot.png`` (CT + truth), ``demo_screenshot_lumbar.png`` and
``demo_summary.json`` (cases, layers, shapes, spacings, seconds taken).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Exit code for "cannot run here as asked" (no display), like argparse's usage errors.
EXIT_NO_DISPLAY = 2
#: Phantoms in the demo set: enough to browse, small enough to write in seconds.
N_CT, N_MRI = 2, 1
#: Longest the headless render may take (napari start-up included).
RENDER_TIMEOUT_S = 300

NO_DISPLAY_MESSAGE = (
    "atlas-annotate demo: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so "
    "napari cannot open a window.\n"
    "  Rerun with --headless to write a screenshot and a summary instead:\n"
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
        help="folder for the demo phantoms and outputs (default: ./atlas-demo)",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no window: render in a private Xvfb and save demo_screenshot.png and "
        "demo_summary.json in --out",
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default: 0)")


def has_display(environ: dict[str, str] | None = None) -> bool:
    """Whether a GUI can open: always off Linux, else DISPLAY or WAYLAND_DISPLAY is set."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def run(args: argparse.Namespace) -> int:
    """Generate the demo phantoms, then open them in napari or render them headless."""
    if not args.headless and not has_display():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_NO_DISPLAY
    if args.headless and shutil.which("Xvfb") is None:
        print(f"atlas-annotate demo: {NO_XVFB_MESSAGE}", file=sys.stderr)
        return EXIT_NO_DISPLAY
    start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"atlas-annotate demo: writing phantoms (seed {args.seed}) to {out} ...")
    demo = generate(out, args.seed)
    generated_s = time.perf_counter() - start
    if args.headless:
        return _run_headless(out, demo, args.seed, generated_s, start)
    return _run_interactive(demo)


def generate(out: Path, seed: int) -> dict[str, Any]:
    """Write the demo phantoms; return the paths to open and a list of cases.

    Returns
    -------
    dict
        ``ct``, ``truth``: first CT case's image and organ label files; ``study``: the
        first lumbar study's DICOM folder (or None); ``cases``: one record per case;
        ``manifest``: the phantom writer's manifest.
    """
    from ..phantoms import write_phantoms

    manifest_path = Path(write_phantoms(out / "phantoms", N_CT, N_MRI, seed, "nifti"))
    manifest = json.loads(manifest_path.read_text())
    return _demo_paths(manifest, manifest_path.parent) | {"manifest": str(manifest_path)}


def _demo_paths(manifest: dict[str, Any], root: Path) -> dict[str, Any]:
    """Pick the first CT (+ truth) and the first lumbar study out of a phantom manifest.

    The manifest lists ``cases``, each with ``id``, ``task`` (``organs`` or ``spine``),
    ``images`` (``path`` relative to the manifest, ``description``) and, for organ cases,
    ``label`` (the truth file).
    """
    cases, ct, truth, study = [], None, None, None
    for entry in manifest["cases"]:
        images = [root / image["path"] for image in entry["images"]]
        record = {
            "id": entry["id"],
            "task": entry.get("task", ""),
            "images": [str(p) for p in images],
            "series": [image.get("description", "") for image in entry["images"]],
        }
        if entry.get("label"):
            record["label"] = str(root / entry["label"])
        cases.append(record)
        if record["task"] == "organs" and ct is None:
            ct, truth = record["images"][0], record.get("label")
        elif record["task"] == "spine" and study is None:
            # A study is the folder holding its series (they may sit in subfolders).
            study = os.path.commonpath(record["images"]) if len(images) > 1 else str(images[0])
    if ct is None:
        raise ValueError(f"{root}: the phantom manifest lists no CT (organs) case")
    return {"ct": ct, "truth": truth, "study": study, "cases": cases}


def _run_interactive(demo: dict[str, Any]) -> int:
    import napari

    from .._napari.demo_scene import show_ct, show_study

    viewer = napari.Viewer(title="atlas-annotate demo: CT abdomen")
    show_ct(viewer, demo["ct"], demo["truth"])
    if demo.get("study"):
        show_study(napari.Viewer(title="atlas-annotate demo: lumbar MRI"), demo["study"])
    print("atlas-annotate demo: close the napari windows to finish.")
    napari.run()
    return 0


def _run_headless(
    out: Path, demo: dict[str, Any], seed: int, generated_s: float, start: float
) -> int:
    screenshot = out / "demo_screenshot.png"
    summary_path = out / "demo_summary.json"
    with tempfile.TemporaryDirectory(prefix="atlas-demo-") as tmp:
        scene = {
            "ct": demo["ct"],
            "truth": demo["truth"],
            "study": demo.get("study"),
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
    summary = {
        "seed": seed,
        "out": str(out),
        "manifest": demo["manifest"],
        "cases": demo["cases"],
        "viewers": render["viewers"],
        "screenshots": render["screenshots"],
        "seconds": {
            "generate": round(generated_s, 2),
            "render": render["seconds"],
            "total": round(time.perf_counter() - start, 2),
        },
    }
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"atlas-annotate demo: screenshot {screenshot}")
    print(f"atlas-annotate demo: summary    {summary_path}")
    return 0


class XvfbUnavailable(RuntimeError):
    """No Xvfb binary, or it would not start."""


class virtual_display:  # noqa: N801 - used as a context manager, reads like a function
    """A private Xvfb X server for the duration of a ``with`` block; yields ``":N"``.

    The server picks a free display number itself (``-displayfd``), so parallel runs do not
    collide, and is terminated on exit.
    """

    def __init__(self, size: str = "1280x1024x24") -> None:
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
