"""A campaign's progress at a glance: what an annotation lead reads before the case list.

Computed from :meth:`Project.status` (every case, every annotator), so a project of 20,000
cases is summed up in a few lines: how many cases are proposed and final, and per person how
many cases are in each state, their edits and their time on task.

A person's counts are their own work: a final case counts as ``final`` for those who made a
version of it (submitted, imported or, for a lead, finalized it) and as
``final_without_them`` for anyone else, though their queue shows it final (it needs no more
work from anyone).
"""

from __future__ import annotations

from collections import Counter

from ..durations import duration

#: Order in which states are reported (the order a case goes through them).
STATE_ORDER = (
    "in_progress",
    "submitted",
    "imported",
    "final",
    "final_without_them",
    "reopened",
    "new",
)


def reported_state(row: dict) -> str:
    """A person's state of a case as reported (a row of :meth:`Project.status`):
    ``final_without_them`` for a final case they made no version of (finalized from other
    people's work), else the row's state."""
    state = row["state"]
    return "final_without_them" if state == "final" and not row["versions"] else state


def campaign_progress(status: dict) -> dict:
    """Summarise a :meth:`Project.status` dict.

    Returns
    -------
    dict
        ``cases``, ``proposed`` (cases with at least one proposal), ``final`` and
        ``people``: per annotator (leads included) ``role``, ``states`` (cases per state,
        in :data:`STATE_ORDER`, states with no case left out; a final case of which the
        person made no version is ``final_without_them``), ``edits``, ``seconds`` (time
        on task) and ``cases_worked`` (cases with at least one edit).
    """
    people: dict[str, dict] = {}
    for case in status["cases"]:
        for name, row in case["annotators"].items():
            person = people.get(name)
            if person is None:
                person = people[name] = {
                    "role": row["role"],
                    "states": Counter(),
                    "edits": 0,
                    "seconds": 0.0,
                    "cases_worked": 0,
                }
            person["states"][reported_state(row)] += 1
            if row["edits"]:
                person["edits"] += row["edits"]
                person["cases_worked"] += 1
            person["seconds"] += row["seconds"]
    for person in people.values():
        counts = person["states"]
        person["states"] = {state: counts[state] for state in STATE_ORDER if counts[state]}
        person["seconds"] = round(person["seconds"], 1)
    return {
        "cases": len(status["cases"]),
        "proposed": sum(case["proposals"] > 0 for case in status["cases"]),
        "final": sum(bool(case["final"]) for case in status["cases"]),
        "people": dict(sorted(people.items())),
    }


def progress_lines(progress: dict) -> list[str]:
    """:func:`campaign_progress` in words, one line for the project and one per person."""
    n = progress["cases"]
    share = f" ({100 * progress['final'] / n:.1f} %)" if n else ""
    lines = [f"{progress['proposed']} of {n} proposed, {progress['final']} final{share}"]
    for name, person in progress["people"].items():
        who = f"{name} (lead)" if person["role"] == "lead" else name
        states = ", ".join(
            f"{k} {state.replace('_', ' ')}" for state, k in person["states"].items()
        )
        work = f"{person['edits']} edits, {duration(person['seconds'])} on task"
        if person["cases_worked"]:
            per_case = person["seconds"] / person["cases_worked"]
            work += f" ({duration(per_case)} per case worked on)"
        lines.append(f"{who}: {states}; {work}")
    return lines
