"""The lead's review report: one self-contained ``index.html`` with inline SVG plots.

No plotting library is needed (matplotlib is not a dependency): the few plots a lead
needs are drawn here as SVG. Sections: summary, Dice distribution per class (box and
points per annotator pair and case) with a per-class table (organ projects), weighted
kappa per condition and pooled confusion matrix (spine projects), the most disputed
cases, and each reader against the lead's final labels.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..classes import class_colors
from ..spine_grades import CONDITIONS, GRADES
from .cases import CaseReview
from .final_agreement import ReaderSummary
from .kappa import kappa_from_confusion

_CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#d9e2ec; --bg:#f5f7fa; --accent:#2f6fb0; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:var(--ink); background:var(--bg); }
header { background:#102a43; color:#fff; padding:22px 36px 18px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header p { margin:0; color:#bcccdc; }
main { padding:20px 36px 40px; max-width:1180px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:16px 20px;
          margin:0 0 18px; }
h2 { font-size:16px; margin:0 0 10px; font-weight:600; }
p.note { color:var(--muted); margin:4px 0 10px; font-size:12.5px; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-bottom:18px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px;
        min-width:150px; }
.card b { display:block; font-size:22px; }
.card span { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:right; }
th { color:var(--muted); font-weight:600; background:#fafbfc; }
td.l, th.l { text-align:left; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:6px; }
.tag { font-size:11px; padding:1px 6px; border-radius:9px; background:#e3f8e6; color:#1b5e20; }
.two { display:grid; grid-template-columns: 1fr 1fr; gap:18px; }
svg text { font-family: inherit; }
"""


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    return f"{value:.{digits}f}"


def _rgb(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _kappa_color(k: float | None) -> str:
    """Landis and Koch bands: poor/fair (red) .. almost perfect (green)."""
    if k is None:
        return "#ffffff"
    if k >= 0.8:
        return "#c8ecd0"
    if k >= 0.6:
        return "#e6f4c8"
    if k >= 0.4:
        return "#fff1c2"
    return "#fbd5d0"


def _dice_color(d: float) -> str:
    return "#c8ecd0" if d >= 0.9 else "#fff1c2" if d >= 0.8 else "#fbd5d0"


# -- SVG plots ----------------------------------------------------------------------------
def dice_boxplot_svg(values: dict[str, list[tuple[str, float]]], colors: dict[str, str]) -> str:
    """Horizontal box plot per class with every (case, pair) Dice drawn as a point."""
    names = [n for n in values if values[n]]
    if not names:
        return "<p class='note'>No class was labelled by any annotator.</p>"
    all_values = [v for n in names for _, v in values[n]]
    lo = min(0.5, math.floor(min(all_values) * 10) / 10)
    row, left, right, top = 30, 120, 30, 14
    width, height = 1060, top + row * len(names) + 40
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + (v - lo) / (1.0 - lo) * plot_w

    parts = [
        f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' aria-label='Dice per class'>"
    ]
    ticks = np.round(np.linspace(lo, 1.0, int(round((1.0 - lo) / 0.1)) + 1), 2)
    for t in ticks:
        parts.append(
            f"<line x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{top - 4}' "
            f"y2='{height - 34}' stroke='#e4e7eb'/>"
        )
        parts.append(
            f"<text x='{x(t):.1f}' y='{height - 18}' font-size='11' fill='#616e7c' "
            f"text-anchor='middle'>{t:.1f}</text>"
        )
    parts.append(
        f"<text x='{left + plot_w / 2:.0f}' y='{height - 3}' font-size='11' "
        "fill='#616e7c' text-anchor='middle'>Dice between annotator pairs "
        "(one point per case and pair)</text>"
    )
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        cy = top + row * i + row / 2
        vals = np.array([v for _, v in values[name]])
        q1, med, q3 = np.percentile(vals, [25, 50, 75])
        color = colors.get(name, "#7b8794")
        parts.append(
            f"<text x='{left - 10}' y='{cy + 4:.1f}' font-size='12' "
            f"text-anchor='end'>{html.escape(name)}</text>"
        )
        parts.append(
            f"<line x1='{x(vals.min()):.1f}' x2='{x(vals.max()):.1f}' y1='{cy:.1f}' "
            f"y2='{cy:.1f}' stroke='#9aa5b1'/>"
        )
        parts.append(
            f"<rect x='{x(q1):.1f}' y='{cy - 8:.1f}' width='{max(x(q3) - x(q1), 1.5):.1f}'"
            f" height='16' fill='{color}' fill-opacity='0.28' stroke='{color}'/>"
        )
        parts.append(
            f"<line x1='{x(med):.1f}' x2='{x(med):.1f}' y1='{cy - 8:.1f}' "
            f"y2='{cy + 8:.1f}' stroke='#1f2933' stroke-width='2'/>"
        )
        for (label, v), jitter in zip(values[name], rng.uniform(-6, 6, len(vals)), strict=True):
            parts.append(
                f"<circle cx='{x(v):.1f}' cy='{cy + jitter:.1f}' r='3' fill='{color}' "
                f"stroke='#1f2933' stroke-width='0.5'><title>{html.escape(label)}: "
                f"{v:.3f}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def disputed_bars_svg(reviews: Sequence[CaseReview], top_n: int = 12) -> str:
    """Horizontal bars of the disagreement score of the most disputed cases."""
    shown = list(reviews[:top_n])
    if not shown:
        return ""
    row, left, right, top = 24, 120, 70, 6
    width, height = 1060, top + row * len(shown) + 8
    peak = max(max(r.disagreement for r in shown), 1e-6)
    parts = [
        f"<svg viewBox='0 0 {width} {height}' width='100%' role='img' "
        "aria-label='Most disputed cases'>"
    ]
    for i, r in enumerate(shown):
        y = top + row * i
        w = (width - left - right) * max(r.disagreement, 0.0) / peak
        color = (
            "#d64545"
            if r.disagreement > 0.2
            else "#f0b429"
            if r.disagreement > 0.1
            else ("#3ebd93")
        )
        parts.append(
            f"<text x='{left - 10}' y='{y + 15}' font-size='12' text-anchor='end'>"
            f"{html.escape(r.case_id)}</text>"
        )
        parts.append(
            f"<rect x='{left}' y='{y + 3}' width='{max(w, 1):.1f}' height='{row - 8}' "
            f"rx='3' fill='{color}'/>"
        )
        parts.append(
            f"<text x='{left + w + 6:.1f}' y='{y + 15}' font-size='12' "
            f"fill='#323f4b'>{r.disagreement:.3f}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# -- sections -----------------------------------------------------------------------------
def _mask_sections(reviews: Sequence[CaseReview], class_names: list[str]) -> str:
    values: dict[str, list[tuple[str, float]]] = {n: [] for n in class_names}
    hd: dict[str, list[float]] = {n: [] for n in class_names}
    dv: dict[str, list[float]] = {n: [] for n in class_names}
    for r in reviews:
        m = r.masks
        for name in m.classes:
            if not any(v > 0 for v in m.volume_ml[name].values()):
                continue  # nobody labelled it: Dice 1 by convention, not informative
            for pair, d in m.dice[name].items():
                values.setdefault(name, []).append((f"{r.case_id} {pair}", d))
                h = m.hd95[name][pair]
                if h is not None:
                    hd.setdefault(name, []).append(h)
                dv.setdefault(name, []).append(abs(m.volume_diff_ml[name][pair]))
    by_pair: dict[str, dict[str, list[float]]] = {}
    for r in reviews:
        m = r.masks
        for name in m.classes:
            if not any(v > 0 for v in m.volume_ml[name].values()):
                continue
            for pair, d in m.dice[name].items():
                entry = by_pair.setdefault(pair, {"dice": [], "hd": [], "cases": []})
                entry["dice"].append(d)
                entry["cases"].append(r.case_id)
                if m.hd95[name][pair] is not None:
                    entry["hd"].append(m.hd95[name][pair])
    pair_rows = "".join(
        f"<tr><td class='l'>{html.escape(pair)}</td><td>{len(set(e['cases']))}</td>"
        f"<td style='background:{_dice_color(float(np.median(e['dice'])))}'>"
        f"{np.median(e['dice']):.3f}</td>"
        f"<td>{100.0 * np.mean(np.asarray(e['dice']) < 0.8):.0f} %</td>"
        f"<td>{_fmt(float(np.median(e['hd'])) if e['hd'] else None, 1)}</td></tr>"
        for pair, e in sorted(by_pair.items())
    )
    pair_table = (
        "<table><tr><th class='l'>annotator pair</th><th>cases</th><th>median Dice</th>"
        "<th>class-cases with Dice &lt; 0.8</th><th>median HD95 (mm)</th></tr>"
        + pair_rows
        + "</table>"
    )
    palette = class_colors(class_names)
    colors = {n: _rgb(palette[i]) for i, n in enumerate(class_names, start=1)}
    rows = []
    for name in class_names:
        vals = [v for _, v in values.get(name, [])]
        if not vals:
            continue
        med = float(np.median(vals))
        rows.append(
            f"<tr><td class='l'><span class='swatch' style='background:{colors[name]}'></span>"
            f"{html.escape(name)}</td><td>{len(vals)}</td>"
            f"<td style='background:{_dice_color(med)}'>{med:.3f}</td>"
            f"<td style='background:{_dice_color(min(vals))}'>{min(vals):.3f}</td>"
            f"<td>{_fmt(float(np.median(hd[name])) if hd.get(name) else None, 1)}</td>"
            f"<td>{_fmt(max(hd[name]) if hd.get(name) else None, 1)}</td>"
            f"<td>{_fmt(float(np.median(dv[name])), 2)}</td></tr>"
        )
    table = (
        "<table><tr><th class='l'>class</th><th>pairs</th><th>median Dice</th><th>min Dice</th>"
        "<th>median HD95 (mm)</th><th>max HD95 (mm)</th><th>median |&Delta;V| (ml)</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return (
        "<section><h2>Dice per class</h2><p class='note'>Box: quartiles and median over "
        "cases and annotator pairs; whiskers: range. Classes nobody labelled in a case are "
        "left out.</p>" + dice_boxplot_svg(values, colors) + "</section>"
        "<section><h2>Agreement per class</h2><p class='note'>HD95: symmetric 95th-percentile "
        "surface distance in mm (undefined when only one annotator labelled the class). "
        "&Delta;V: volume difference between the pair in millilitres. Inter-radiologist Dice "
        "above 0.9 is typical for most abdominal organs (0.85 gallbladder, 0.81 pancreas)."
        "</p>" + table + "</section>"
        "<section><h2>Agreement per annotator pair</h2><p class='note'>Over every class "
        "either annotator labelled, in every case both annotated: a pair that stands out "
        "points at one annotator's habits rather than at hard cases.</p>"
        + pair_table
        + "</section>"
    )


def _grade_sections(reviews: Sequence[CaseReview]) -> str:
    pairs = sorted({p for r in reviews for p in r.grades.confusion["overall"]})
    scopes = [*CONDITIONS, "overall"]
    pooled = {s: {p: np.zeros((3, 3), np.int64) for p in pairs} for s in scopes}
    for r in reviews:
        for s in scopes:
            for p, m in r.grades.confusion[s].items():
                pooled[s][p] += np.asarray(m)
    head = "".join(f"<th>{html.escape(p)}</th>" for p in pairs)
    rows = []
    for s in scopes:
        cells = []
        for p in pairs:
            k = kappa_from_confusion(pooled[s][p])
            cells.append(f"<td style='background:{_kappa_color(k)}'>{_fmt(k)}</td>")
        label = "<b>overall</b>" if s == "overall" else html.escape(s.replace("_", " "))
        rows.append(f"<tr><td class='l'>{label}</td>{''.join(cells)}</tr>")
    kappa_table = f"<table><tr><th class='l'>condition</th>{head}</tr>{''.join(rows)}</table>"
    conf = []
    for p in pairs:
        m = pooled["overall"][p]
        a, b = p.split("|", 1)
        body = "".join(
            f"<tr><th class='l'>{html.escape(a)}: {g}</th>"
            + "".join(
                f"<td style='background:{'#dbe9f6' if i == j else '#ffffff'}'>{m[i, j]}</td>"
                for j in range(3)
            )
            + "</tr>"
            for i, g in enumerate(GRADES)
        )
        conf.append(
            f"<div><p class='note'>Confusion over all cells, {html.escape(p)}</p><table><tr>"
            f"<th class='l'></th>{''.join(f'<th>{html.escape(b)}: {g}</th>' for g in GRADES)}"
            f"</tr>{body}</table></div>"
        )
    return (
        "<section><h2>Quadratic weighted kappa per condition</h2><p class='note'>Pooled over "
        "all reviewed studies (5 levels per condition per study). Colours: &ge;0.8 almost "
        "perfect, 0.6&ndash;0.8 substantial, 0.4&ndash;0.6 moderate, below fair.</p>"
        + kappa_table
        + "</section><section><h2>Grade confusion</h2><div class='two'>"
        + "".join(conf)
        + "</div></section>"
    )


def _disputed_section(reviews: Sequence[CaseReview], top_n: int) -> str:
    rows = []
    for rank, r in enumerate(reviews[:top_n], start=1):
        if r.masks is not None:
            worst = min(
                (
                    (d, name, pair)
                    for name in r.masks.classes
                    if any(v > 0 for v in r.masks.volume_ml[name].values())
                    for pair, d in r.masks.dice[name].items()
                ),
                default=None,
            )
            detail = (
                f"{html.escape(worst[1])} Dice {worst[0]:.3f} ({html.escape(worst[2])})"
                if worst
                else "&ndash;"
            )
        else:
            cells = r.grades.disputed_cells()
            detail = (
                f"{len(cells)} disputed cell(s): "
                + html.escape(", ".join(cells[:3]))
                + (" &hellip;" if len(cells) > 3 else "")
            )
        status = "<span class='tag'>final</span>" if r.final_version else ""
        rows.append(
            f"<tr><td>{rank}</td><td class='l'>{html.escape(r.case_id)} {status}</td>"
            f"<td class='l'>{html.escape(', '.join(r.annotators))}</td>"
            f"<td>{r.disagreement:.3f}</td><td class='l'>{detail}</td></tr>"
        )
    if reviews and reviews[0].masks is not None:
        score = "1 &minus; min Dice over the classes someone labelled and annotator pairs"
    else:
        score = "1 &minus; min overall weighted kappa over annotator pairs"
    return (
        f"<section><h2>Most disputed cases</h2><p class='note'>Ranked by disagreement "
        f"({score}).</p>"
        + disputed_bars_svg(reviews, top_n)
        + "<table><tr><th>#</th><th class='l'>case</th><th class='l'>annotators</th>"
        "<th>disagreement</th><th class='l'>worst</th></tr>" + "".join(rows) + "</table>"
        "</section>"
    )


def _notes_section(reviews: Sequence[CaseReview]) -> str:
    """Every note readers left for the lead, by case in ranking order ('' when none)."""
    rows = [
        f"<tr><td class='l'>{html.escape(r.case_id)}</td><td class='l'>{html.escape(who)}</td>"
        f"<td class='l'>{html.escape(note)}</td></tr>"
        for r in reviews
        for who, note in r.notes.items()
    ]
    if not rows:
        return ""
    return (
        "<section><h2>Readers' notes</h2><p class='note'>What readers wrote for the lead "
        "when they submitted, most disputed case first.</p><table><tr><th class='l'>case</th>"
        "<th class='l'>reader</th><th class='l'>note</th></tr>" + "".join(rows) + "</table>"
        "</section>"
    )


def readers_section(summaries: Sequence[ReaderSummary], finals: int) -> str:
    """Each reader against the lead's final labels ('' when nothing is final yet)."""
    if not summaries:
        return ""
    if summaries[0].grades:
        head = "<th>cells</th><th>kept as graded</th><th>kappa</th>" + "".join(
            f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in CONDITIONS
        )
        rows = [
            f"<tr><td class='l'>{html.escape(s.reader)}</td><td>{len(s.cases)}</td>"
            f"<td>{s.cells}</td><td>{_fmt(None if s.kept_share is None else 100 * s.kept_share, 0)}"
            f" %</td><td style='background:{_kappa_color(s.kappa)}'>{_fmt(s.kappa)}</td>"
            + "".join(
                f"<td style='background:{_kappa_color(s.kappa_by_condition.get(c))}'>"
                f"{_fmt(s.kappa_by_condition.get(c))}</td>"
                for c in CONDITIONS
            )
            + "</tr>"
            for s in summaries
        ]
        what = (
            "share of grade cells the final kept as the reader graded them, and quadratic "
            "weighted kappa against the final, over all conditions and per condition"
        )
    else:
        names = [n for n in dict.fromkeys(n for s in summaries for n in s.dice)]
        head = "<th>ml changed a case</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = [
            f"<tr><td class='l'>{html.escape(s.reader)}</td><td>{len(s.cases)}</td>"
            f"<td>{_fmt(s.changed_ml_per_case, 1)}</td>"
            + "".join(
                f"<td style='background:{_dice_color(s.dice[n])}'>{s.dice[n]:.3f}</td>"
                if n in s.dice
                else "<td>&ndash;</td>"
                for n in names
            )
            + "</tr>"
            for s in summaries
        ]
        what = (
            "median Dice per class of the reader's labels against the final ones, over the "
            "cases where either has the class, and the millilitres the final differs from the "
            "reader's labels, per case"
        )
    return (
        f"<section><h2>Readers against the final labels</h2><p class='note'>Over the {finals} "
        f"final case(s), each compared with the reader's version it was decided from: {what}. "
        "A reader whose labels the lead changed most points at where feedback helps.</p>"
        f"<table><tr><th class='l'>reader</th><th>final cases</th>{head}</tr>"
        + "".join(rows)
        + "</table></section>"
    )


def render_report(
    reviews: Sequence[CaseReview],
    skipped: Sequence[dict],
    *,
    title: str,
    task: str,
    class_names: list[str] | None = None,
    top_n: int = 12,
    readers: str = "",
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    annotators = sorted({a for r in reviews for a in r.annotators})
    n_final = sum(1 for r in reviews if r.final_version)
    cards = [
        ("cases reviewed", len(reviews)),
        ("annotators", len(annotators)),
        ("final", n_final),
        ("skipped (< 2 readers)", len(skipped)),
    ]
    if reviews:
        cards.append(("median disagreement", f"{np.median([r.disagreement for r in reviews]):.3f}"))
    body = (
        "<div class='cards'>"
        + "".join(f"<div class='card'><span>{k}</span><b>{v}</b></div>" for k, v in cards)
        + "</div>"
    )
    if not reviews:
        body += "<section><p>No case has labels from two annotators yet.</p></section>"
    elif task == "spine":
        body += _grade_sections(reviews) + _disputed_section(reviews, top_n)
    else:
        body += _mask_sections(reviews, class_names or reviews[0].masks.classes)
        body += _disputed_section(reviews, top_n)
    body += readers + _notes_section(reviews)
    subtitle = (
        f"{'lumbar MRI grades' if task == 'spine' else 'CT organ masks'} &middot; "
        f"annotators: {html.escape(', '.join(annotators) or 'none')}"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Review: {html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Annotation review &mdash; {html.escape(title)}</h1><p>{subtitle}</p>"
        f"</header><main>{body}</main></body></html>"
    )


def write_report(
    out_dir: str | Path,
    reviews: Sequence[CaseReview],
    skipped: Sequence[dict],
    *,
    title: str,
    task: str,
    class_names: list[str] | None = None,
    readers: str = "",
) -> Path:
    """Write ``out_dir/index.html`` (self-contained: inline CSS and SVG) and return its path.

    ``readers``: :func:`readers_section`'s HTML, when the lead's finals are compared."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    path.write_text(
        render_report(
            reviews, skipped, title=title, task=task, class_names=class_names, readers=readers
        ),
        encoding="utf-8",
    )
    return path
