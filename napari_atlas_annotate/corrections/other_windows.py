"""One annotator, one case, two windows: refuse to store what would drop the other's work.

The same annotator with a case open in a second window (or viewer) logs edits and submits
versions the first window's label or grade sheet does not contain; storing it would fold
those edits into a version without them, or overwrite a newer one. Before a submit, the
editor (the organ annotator dock, the grade sheet session) asks :func:`check_no_unseen_work`.
"""

from __future__ import annotations

from collections.abc import Collection

from ..project import LabelVersion, Project, ProjectError


def check_no_unseen_work(
    project: Project,
    case_id: str,
    annotator: str,
    *,
    own_events: Collection[int],
    seen_event_id: int | None,
    base: LabelVersion | None,
    holder: str,
    reopen: str,
    content: str | None = None,
    tools: Collection[str] | None = None,
) -> None:
    """Raise :class:`ProjectError` if, since this window opened ``case_id``, ``annotator``
    logged edits it did not make (of ``tools``, all by default) or submitted a corrected
    version (of ``content``) newer than its ``base``.

    ``holder`` names what this window holds ("this sheet") and ``reopen`` how to load the
    case again with the saved work of both, for the message.
    """
    logged = project.events(case_id, annotator, after_id=seen_event_id)
    elsewhere = [e for e in logged if e.id not in own_events and (tools is None or e.tool in tools)]
    filters = {"content": content} if content else {}
    latest = project.latest_version(case_id, annotator=annotator, kinds=("corrected",), **filters)
    newer = latest is not None and (base is None or latest.id > base.id)
    if not elsewhere and not newer:
        return
    what = []
    if newer:
        what.append(f"version {latest.id} was submitted")
    if elsewhere:
        what.append(f"{len(elsewhere)} edit(s) were logged")
    raise ProjectError(
        f"case {case_id}: since you opened it here, {' and '.join(what)} as {annotator} "
        f"from another window; {holder} does not contain that work, so nothing was stored "
        f"(submitting would overwrite it). Close the other window, then {reopen}: it comes "
        "back with the saved work of both."
    )
