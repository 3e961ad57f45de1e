"""What the side-by-side benches share: the package as of a git ref, and a child run.

A bench times our code and a baseline commit in one run: each version runs in a child
process with its package first on ``PYTHONPATH`` and prints one ``RESULT <json>`` line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
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


def child_env(code: Path | None, threads: int = 1) -> dict:
    """The environment of a child run: ``threads`` OpenMP/MKL threads, and the package of
    ``code`` (a baseline from :func:`baseline_code`) or of this checkout first on the path."""
    n = str(threads)
    return dict(os.environ, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n, PYTHONPATH=str(code or REPO))


def head_commit() -> str:
    """This checkout's short commit id (what 'ours' is in a bench's table)."""
    done = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip()


def code_versions(work: Path, ref: str) -> dict[str, Path | None]:
    """``{'ours': None, 'baseline': <package of ref>}`` (reused from ``work`` when there)."""
    base = work / f"baseline_{ref}"
    return {"ours": None, "baseline": base if base.is_dir() else baseline_code(ref, base)}


def session_on_copy(script: str, work: Path, name: str, code: Path | None, args: list[str]):
    """Run ``script --child PROJECT *args`` with one code version on a fresh copy of
    ``work/data/project`` (deleted after); the child's RESULT."""
    project = work / f"project_{name}"
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(work / "data" / "project", project)
    argv = [sys.executable, script, "--child", str(project), *args]
    try:
        return run_child(argv, child_env(code), f"{name} session")
    finally:
        shutil.rmtree(project, ignore_errors=True)


def interleaved(versions: dict, repeat: int, session) -> dict[str, list[dict]]:
    """``session(name, code)`` ``repeat`` times per version, taking turns so that every
    version sees the same machine load; each version's results in order."""
    tries: dict[str, list[dict]] = {name: [] for name in versions}
    for _ in range(repeat):
        for name, code in versions.items():
            tries[name].append(session(name, code))
    return tries


def print_seconds_per_action(tries: dict[str, list[dict]], ref: str) -> None:
    """The best session mean per version of each run's ``seconds`` (wall) and ``cpu``
    lists, the worst single action of the best session, and baseline / ours."""
    commit = head_commit()
    print(f"{'':28s}{'wall':>10s}{'cpu':>10s}{'worst':>10s}")
    best = {}
    for name, found in tries.items():
        wall = min(sum(r["seconds"]) / len(r["seconds"]) for r in found)
        cpu = min(sum(r["cpu"]) / len(r["cpu"]) for r in found)
        worst = min(max(r["seconds"]) for r in found)
        best[name] = (wall, cpu)
        label = f"ours ({commit})" if name == "ours" else f"baseline ({ref})"
        print(f"{label:28s}{wall:10.3f}{cpu:10.3f}{worst:10.3f}")
    (ow, oc), (bw, bc) = best["ours"], best["baseline"]
    print(f"{'baseline / ours':28s}{bw / ow:9.2f}x{bc / oc:9.2f}x")


def init_project(project: Path, task: str, env: dict) -> None:
    """``atlas-annotate init PROJECT --task TASK`` with the code version ``env`` puts first."""
    subprocess.run(
        [sys.executable, "-m", "napari_atlas_annotate.cli", "init", str(project), "--task", task],
        check=True,
        capture_output=True,
        env=env,
    )


def profile_text(profiler, top: int, orders: tuple[str, ...] = ("cumulative", "tottime")) -> str:
    """The ``top`` lines of a cProfile run, sorted each way in ``orders``."""
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).strip_dirs()
    for order in orders:
        stats.sort_stats(order).print_stats(top)
    return text.getvalue()


def peak_rss_mb() -> float:
    """This process's peak RSS (``VmHWM``, MB). Not ``ru_maxrss``: Linux carries that over
    ``exec`` from the parent, which made the 300x512x512 phantom (about 1.2 GB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def project_digest(project_folder: str, annotator: str) -> str:
    """What an add left in a project: its cases, their images, and the content of each
    version ``annotator`` has (a mask's voxels; a grade sheet's file)."""
    from napari_atlas_annotate.project import Project

    h = hashlib.sha256()
    with Project(project_folder) as project:
        for case in sorted(project.cases(), key=lambda c: c.id):
            refs = [(r.path, r.description, r.series, r.stack) for r in case.images]
            h.update(json.dumps([case.id, refs]).encode())
            for version in project.versions(case.id, annotator=annotator):
                if version.content == "mask":
                    h.update(project.read_mask(version).tobytes())
                else:
                    h.update((Path(project_folder) / version.path).read_bytes())
    return h.hexdigest()[:16]


def timed_add(argv: list[str], project_folder: str, annotator: str, profile: int = 0) -> dict:
    """Run ``atlas-annotate add`` in this process (a child run): its exit code, seconds,
    peak RSS, cases added, summary lines, a digest of what it printed and of what it left
    in the project (:func:`project_digest`), and with ``profile`` the top of cProfile."""
    import contextlib
    import time

    from napari_atlas_annotate.cli import main

    out = io.StringIO()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        if profiler:
            profiler.enable()
        code = main(argv)
        if profiler:
            profiler.disable()
    seconds = time.perf_counter() - start
    lines = out.getvalue().splitlines()
    result = {
        "code": code,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "added": next((int(line.split()[1]) for line in lines if line.startswith("added ")), 0),
        "summary": [line for line in lines if not line.startswith(" ")],
        "digest": project_digest(project_folder, annotator),
        "output": hashlib.sha256(out.getvalue().encode()).hexdigest()[:16],
    }
    if profiler:
        result["profile"] = profile_text(profiler, profile)
    return result


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    """The shortest of ``repeat`` timed calls of ``fn`` (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out
