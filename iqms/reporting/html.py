"""The clinic report as one self-contained HTML file (inline CSS and SVG charts)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from iqms import __version__
from iqms.core.services.reports import Breakdown, ClinicReport, Distribution, Outcomes
from iqms.reporting import svg
from iqms.reporting.data import DEFINITIONS, scope_line, volume_series

PRIMARY = "#2563eb"
SECONDARY = "#93c5fd"
HIGHLIGHT = "#f59e0b"
TRIAGE_COLOURS = {1: "#dc2626", 2: "#f97316", 3: "#eab308", 4: "#16a34a", 5: "#2563eb"}

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #111827;
  font: 14px/1.45 Inter, "Segoe UI", Helvetica, Arial, sans-serif; }
header { background: #1e3a8a; color: #fff; padding: 28px 40px 24px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header .scope { opacity: .9; font-size: 15px; }
header .generated { opacity: .7; font-size: 12px; margin-top: 6px; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 40px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 12px;
  margin: -44px 0 24px; }
.kpi { background: #fff; border-radius: 10px; padding: 14px 16px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.kpi .value { font-size: 22px; font-weight: 650; white-space: nowrap; }
.kpi .label { color: #6b7280; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
section.card { background: #fff; border-radius: 10px; padding: 20px 24px; margin-bottom: 22px;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section.card h2 { margin: 0 0 4px; font-size: 18px; }
section.card p.note { margin: 0 0 14px; color: #6b7280; font-size: 13px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 22px; }
h3 { font-size: 14px; margin: 16px 0 6px; color: #374151; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #e5e7eb; text-align: right;
  white-space: nowrap; }
th { color: #6b7280; font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 650; border-top: 2px solid #d1d5db; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin-right: 6px; vertical-align: baseline; }
.good { color: #15803d; font-weight: 600; } .fair { color: #b45309; font-weight: 600; }
.poor { color: #b91c1c; font-weight: 600; }
.empty { color: #6b7280; font-style: italic; }
footer { max-width: 1180px; margin: 0 auto; padding: 0 32px 32px; color: #6b7280;
  font-size: 12px; }
footer dt { font-weight: 600; display: inline; } footer dd { display: inline; margin: 0; }
footer div { margin-bottom: 3px; }
@media print { body { background: #fff; } .kpis { margin-top: 12px; }
  section.card { box-shadow: none; border: 1px solid #e5e7eb; break-inside: avoid; } }
"""


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], total: Sequence[str] = ()) -> str:
    if not rows:
        return "<p class='empty'>No data in this period.</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if total:
        body += "<tr class='total'>" + "".join(f"<td>{c}</td>" for c in total) + "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _dist_cells(d: Distribution) -> list[str]:
    return [f"{d.count:,}", _num(d.mean), _num(d.median), _num(d.p90)]


def _dist_table(
    first: str, rows: list[Breakdown], total: tuple[str, Distribution] | None = None
) -> str:
    return _table(
        [first, "patients", "mean", "median", "90th pct"],
        [[escape(b.label), *_dist_cells(b.minutes)] for b in rows],
        total=[escape(total[0]), *_dist_cells(total[1])] if total and len(rows) > 1 else (),
    )


def _outcome_cells(o: Outcomes) -> list[str]:
    return [
        f"{o.total:,}",
        f"{o.served:,}",
        f"{o.no_show:,}",
        f"{o.cancelled:,}",
        f"{o.transferred:,}",
        f"{o.open:,}",
        _pct(o.no_show_rate),
        _pct(o.cancellation_rate),
    ]


def _kpi(value: str, label: str) -> str:
    return (
        f"<div class='kpi'><div class='value'>{value}</div><div class='label'>{label}</div></div>"
    )


def _grade(pct: float | None) -> str:
    if pct is None:
        return "–"
    cls = "good" if pct >= 90 else "fair" if pct >= 75 else "poor"
    return f"<span class='{cls}'>{pct:.1f}%</span>"


def render_html(r: ClinicReport, *, clinic_name: str) -> str:
    """The whole report as an HTML document with the same tables and charts as the terminal."""
    o = r.outcomes
    seen = sum(t.seen for t in r.triage)
    within = sum(t.within_target for t in r.triage)
    overall_target = 100 * within / seen if seen else None
    kpis = "".join(
        [
            _kpi(f"{o.total:,}", "tickets"),
            _kpi(f"{o.served:,}", "patients seen"),
            _kpi(f"{_num(r.waits.median)} min", "median wait"),
            _kpi(f"{_num(r.waits.p90)} min", "90th pct wait"),
            _kpi("–" if overall_target is None else f"{overall_target:.1f}%", "within target"),
            _kpi(_pct(o.no_show_rate), "no-shows"),
            _kpi(_pct(o.cancellation_rate), "cancelled"),
        ]
    )

    unit, series = volume_series(r)
    volume_chart = svg.bar_chart(
        [label for label, _ in series],
        [svg.Series("tickets", [n for _, n in series], PRIMARY)],
        y_label="tickets",
        show_values=len(series) <= 16,
        label_every=max(1, len(series) // 12),
        description=f"Tickets per {unit}",
    )
    dept_rows = [[f"{escape(d.name)} ({escape(d.code)})", *_outcome_cells(d.outcomes)]
                 for d in r.by_department]  # fmt: skip
    volumes_table = _table(
        ["department", "tickets", "served", "no-show", "cancelled", "transferred", "open",
         "no-show rate", "cancel rate"],
        dept_rows,
        total=["All departments", *_outcome_cells(o)] if len(dept_rows) > 1 else (),
    )  # fmt: skip
    sources = ", ".join(f"{escape(k)} {v:,}" for k, v in r.by_source.items()) or "–"

    hours = r.waits_by_hour
    wait_chart = (
        svg.bar_chart(
            [b.key for b in hours],
            [
                svg.Series("median", [b.minutes.median for b in hours], PRIMARY),
                svg.Series("90th percentile", [b.minutes.p90 for b in hours], SECONDARY),
            ],
            y_label="minutes",
            value_format=lambda v: f"{v:.0f}",
            description="Median and 90th percentile wait by hour of arrival",
        )
        if hours
        else "<p class='empty'>No called patients in this period.</p>"
    )
    triage_chart = svg.hbar_chart(
        [
            (
                f"{t.category} {t.label}",
                t.percent_within,
                TRIAGE_COLOURS[t.category],
                f"{t.within_target:,} of {t.seen:,} · target "
                + (
                    f"{t.target_min} min"
                    if t.target_min == t.target_max
                    else f"{t.target_min}–{t.target_max} min"
                ),
            )
            for t in r.triage
        ],
        description="Percentage of patients seen within the triage target, by category",
    )
    triage_table = _table(
        ["category", "target (min)", "seen", "within target", "%"],
        [
            [
                f"<span class='swatch' style='background:{TRIAGE_COLOURS[t.category]}'></span>"
                f"{t.category} {escape(t.label)}",
                str(t.target_min)
                if t.target_min == t.target_max
                else f"{t.target_min}–{t.target_max}",
                f"{t.seen:,}",
                f"{t.within_target:,}",
                _grade(t.percent_within),
            ]
            for t in r.triage
        ],
    )
    busiest = {h.hour for h in r.busiest_hours}
    arrivals = r.arrivals_by_hour
    arrivals_chart = (
        svg.bar_chart(
            [f"{h.hour:02d}" for h in arrivals],
            [
                svg.Series(
                    "arrivals per open day",
                    [h.per_open_day for h in arrivals],
                    PRIMARY,
                    colors=[HIGHLIGHT if h.hour in busiest else PRIMARY for h in arrivals],
                )
            ],
            legend=[("busiest hours", HIGHLIGHT), ("other hours", PRIMARY)],
            y_label="arrivals per open day",
            value_format=lambda v: f"{v:.1f}",
            description="Arrivals per open day by hour of the day",
        )
        if arrivals
        else "<p class='empty'>No arrivals in this period.</p>"
    )
    busiest_text = (
        ", ".join(
            f"{h.hour:02d}:00–{h.hour + 1:02d}:00 ({h.per_open_day:.1f} arrivals a day)"
            for h in r.busiest_hours
        )
        or "–"
    )
    definitions = "".join(
        f"<div><dt>{escape(k.replace('_', ' '))}:</dt> <dd>{escape(v)}</dd></div>"
        for k, v in DEFINITIONS.items()
    )
    title = f"{clinic_name} — clinic report {r.scope.date_from} to {r.scope.date_to}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>{escape(clinic_name)} · Clinic report</h1>
<div class="scope">{escape(scope_line(r))}</div>
<div class="generated">Generated {r.generated_at:%d %b %Y %H:%M} UTC by IQMS {
        escape(__version__)
    }</div>
</header>
<main>
<div class="kpis">{kpis}</div>

<section class="card">
<h2>Patient volumes</h2>
<p class="note">{r.patients:,} registered patients and {r.walk_ins:,} walk-in tickets over
{r.open_days} open day{"s" if r.open_days != 1 else ""}. By source: {sources}.</p>
{volume_chart}
{volumes_table}
</section>

<section class="card">
<h2>Waiting times</h2>
<p class="note">Minutes from arrival to being called. Bars: median and 90th percentile by hour of
arrival (clinic time).</p>
{wait_chart}
<div class="grid2">
<div><h3>By department</h3>{
        _dist_table("department", r.waits_by_department, total=("All departments", r.waits))
    }</div>
<div><h3>By triage category</h3>{_dist_table("category", r.waits_by_category)}</div>
<div><h3>By doctor</h3>{_dist_table("doctor", r.waits_by_doctor)}</div>
<div><h3>By hour of arrival</h3>{_dist_table("hour", r.waits_by_hour)}</div>
</div>
</section>

<section class="card">
<h2>Seen within the triage target</h2>
<p class="note">Share of called patients whose wait was within their category's target
(department overrides apply).</p>
{triage_chart}
{triage_table}
</section>

<section class="card">
<h2>Service times</h2>
<p class="note">Minutes from the start of the consultation to its end, for served patients.</p>
<div class="grid2">
<div><h3>By department</h3>{
        _dist_table(
            "department", r.service_by_department, total=("All consultations", r.service_times)
        )
    }</div>
<div><h3>By doctor</h3>{_dist_table("doctor", r.service_by_doctor)}</div>
</div>
</section>

<section class="card">
<h2>Busiest hours</h2>
<p class="note">Busiest: {escape(busiest_text)}.</p>
{arrivals_chart}
</section>
</main>
<footer><dl>{definitions}</dl></footer>
</body>
</html>
"""
