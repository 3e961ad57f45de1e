"""``atlas-annotate``: the command line. Thin: each command lives in
``napari_atlas_annotate/commands/<name>.py`` with ``configure(parser)`` and ``run(args)``,
imported only when that command runs (so ``info`` never pays for torch or Qt).
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> one-line help. Module: napari_atlas_annotate.commands.<name>.
COMMANDS: dict[str, str] = {
    "demo": "make a demo project from synthetic phantoms and open it in napari",
    "phantoms": "write deterministic synthetic CT / lumbar MRI phantoms with truth",
    "info": "describe a DICOM file/folder or NIfTI file: series, shape, spacing, affine",
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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    name = argv[0]
    if name not in COMMANDS:
        top.error(f"unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}")
    module = importlib.import_module(f"napari_atlas_annotate.commands.{name}")
    parser = argparse.ArgumentParser(prog=f"atlas-annotate {name}", description=COMMANDS[name])
    module.configure(parser)
    args = parser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        # Domain errors carry which file, what is wrong and what to do: show them plainly.
        print(f"atlas-annotate {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
