"""What the side-by-side benches share: the package as of a git ref, and a child run.

A bench times our code and a baseline commit in one run: each version runs in a child
process with its package first on ``PYTHONPATH`` and prints one ``RESULT <json>`` line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def baseline_code(ref: str, folder: Path) -> Path:
    """The package as of git ``ref``, extracted into ``folder`` (put it on PYTHONPATH)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "napari_atlas_annotate"],
        check=True,
        capture_output=True,
    ).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_child(argv: list[str], env: dict, what: str = "child") -> dict:
    """Run a child bench process; the JSON of its last ``RESULT`` line."""
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise RuntimeError(f"{what} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])
