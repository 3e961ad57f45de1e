"""``atlas-annotate``: the command line. Thin: each command lives in
``napari_atlas_annotate/commands/<name>.py`` (``-`` in a name spelled ``_``) with
``configure(parser)`` and ``run(args)``,
imported only when that command runs (so ``info`` never pays for torch or Qt).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import math
import os
import sqlite3
import sys
import warnings

#: command name -> one-line help. Module: napari_atlas_annotate.commands.<name> (- as _).
COMMANDS: dict[str, str] = {
    "demo": "make a demo project from synthetic phantoms and open it in napari",
    "phantoms": "write deterministic synthetic CT / lumbar MRI phantoms with truth",
    "info": "describe a DICOM file/folder or NIfTI file: series, shape, spacing, affine",
    "init": "create an annotation project (organs or spine)",
    "add": "add cases to a project: DICOM folders, NIfTI files or a phantom manifest.json",
    "remove": "take cases nobody has labelled out of a project (kept in the audit trail)",
    "import": "import labels or grades made elsewhere as an annotator's version of a case",
    "open": "open a project in napari with the annotator dock",
    "status": "cases, states per annotator, edit counts, time on task, rounds",
    "history": "one case's label versions (who, from what, edits, voxels changed) and audit trail",
    "propose": "run the helper model on cases and store its proposals",
    "train": "retrain the helper model on submitted and final labels (one round)",
    "models": "list the project's model versions, or roll back to an earlier round",
    "campaign": "simulate a whole annotation campaign on phantoms (propose/correct/retrain)",
    "review": "disagreement between annotators: metrics, consensus, HTML report",
    "export": "export labels (AbdomenAtlas, nnU-Net v2, DICOM SEG, MONAI, 3D Slicer) or grades "
    "(RSNA CSVs, a Kaggle submission of the grader's)",
    "score-rsna": "score RSNA 2024 submission.csv files against a train.csv of grades",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="atlas-annotate",
        description="Annotation campaigns for CT organs and lumbar MRI grades.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items())
        + "\n\nRun 'atlas-annotate COMMAND --help' for a command's options.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    return parser


def _at_least(convert, low, *, strict: bool, what: str):
    """An argparse type: ``convert(text)``, finite and at least ``low`` (above, if strict)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            bound = "above" if strict else "at least"
            raise argparse.ArgumentTypeError(f"must be {bound} {low}, not {text}")
        return value

    return parse


#: argparse type: a whole number of at least 1 (epochs, threads).
positive_int = _at_least(int, 1, strict=False, what="a whole number")
#: argparse type: a whole number of at least 0 (voxel tolerances).
non_negative_int = _at_least(int, 0, strict=False, what="a whole number")
#: argparse type: a number above 0 (minutes).
positive_float = _at_least(float, 0, strict=True, what="a number")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as a user reads them on the command line: no source file or code line."""
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (2 for a domain error)."""
    shown = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        with warnings.catch_warnings():
            # the same message from two places (a folder scanned, then loaded) shows once
            warnings.filterwarnings("once", category=UserWarning)
            code = _run(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``atlas-annotate status P | head``): stop quietly. Point
        # stdout at devnull so the interpreter's final flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a real file (captured, closed)
            pass
        return 1
    finally:
        warnings.formatwarning = shown
    return code


def _run(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        top.error(f"unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}")
    module_name = f"napari_atlas_annotate.commands.{name.replace('-', '_')}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"atlas-annotate {name}: not available in this build.", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog=f"atlas-annotate {name}", description=COMMANDS[name])
    module.configure(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        # Ctrl-C: one line, not a traceback from wherever the command was. What was
        # stored before stays (saves are atomic; a stopped round leaves no model behind).
        print(f"atlas-annotate {name}: interrupted (Ctrl-C).", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        # Domain errors carry which file, what is wrong and what to do: show them plainly.
        print(f"atlas-annotate {name}: error: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.OperationalError) as exc:
        if not disk_full(exc):
            raise
        # saves are atomic and transactions roll back: what was stored before stays
        print(
            f"atlas-annotate {name}: error: the disk is full ({exc}). What was stored before "
            "is kept; free space on the disk holding the project (or the output folder), "
            "then run the command again.",
            file=sys.stderr,
        )
        return 2


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk (or the user's quota) is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    said = str(exc)
    return "database or disk is full" in said or (
        isinstance(exc, OSError) and "requested and" in said and "written" in said
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
