"""The clinic report in a terminal: rich tables and plotext bar charts."""

from __future__ import annotations

from collections.abc import Sequence

import plotext
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from iqms.core.services.reports import Breakdown, ClinicReport, Distribution, Outcomes
from iqms.reporting.data import scope_line, volume_series

CHART_HEIGHT = 14


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def bar_chart(
    labels: Sequence[str], values: Sequence[float], *, title: str, width: int, labeled: bool = True
) -> Text:
    """A vertical bar chart drawn by plotext, as rich Text (colours kept on terminals)."""
    fig = plotext.figure
    fig.clear()
    fig.theme("simple")
    fig.draw(fig.bar(list(labels), [round(v, 1) for v in values], labeled=labeled))
    fig.title(title)
    fig.plot_size(max(40, width), CHART_HEIGHT)
    text = Text.from_ansi(str(fig.build()))
    fig.clear()
    return text


def _distribution_table(title: str, rows: list[tuple[str, Distribution]], first: str) -> Table:
    table = _table(title)
    table.add_column(first, no_wrap=True, overflow="ellipsis", max_width=28)
    for name in ("patients", "mean", "median", "p90"):
        table.add_column(name, justify="right")
    for label, d in rows:
        table.add_row(label, f"{d.count:,}", _num(d.mean), _num(d.median), _num(d.p90))
    return table


def _breakdown_rows(rows: list[Breakdown]) -> list[tuple[str, Distribution]]:
    return [(b.label, b.minutes) for b in rows]


def _outcome_cells(o: Outcomes) -> list[str]:
    return [
        f"{o.total:,}",
        f"{o.served:,}",
        f"{o.no_show:,} ({_pct(o.no_show_rate)})" if o.no_show else "0",
        f"{o.cancelled:,} ({_pct(o.cancellation_rate)})" if o.cancelled else "0",
        f"{o.transferred:,}",
        f"{o.open:,}",
    ]


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )


def render(r: ClinicReport, console: Console, *, clinic_name: str) -> None:
    """Print the whole report: summary, tables, and charts where a chart says more."""
    width = min(console.width, 110) - 2
    console.print(Text(f"Clinic report — {clinic_name}: {scope_line(r)}", style="bold"))
    console.print()

    o = r.outcomes
    seen = sum(t.seen for t in r.triage)
    within = 100 * sum(t.within_target for t in r.triage) / seen if seen else None
    summary = Table.grid(padding=(0, 4))
    for _ in range(3):
        summary.add_column()
    summary.add_row(
        f"[bold]{o.total:,}[/] tickets",
        f"[bold]{o.served:,}[/] served",
        f"[bold]{r.open_days}[/] open days",
    )
    summary.add_row(f"[bold]{r.patients:,}[/] patients", f"[bold]{r.walk_ins:,}[/] walk-ins", "")
    summary.add_row(
        f"median wait [bold]{_num(r.waits.median)}[/] min",
        f"90th pct [bold]{_num(r.waits.p90)}[/] min",
        f"within target [bold]{_num(within)}%[/]" if within is not None else "",
    )
    summary.add_row(
        f"no-shows [bold]{_pct(o.no_show_rate)}[/]",
        f"cancelled [bold]{_pct(o.cancellation_rate)}[/]",
        "",
    )
    console.print(Panel(summary, title="Summary", title_align="left", expand=False))

    volumes = _table("Patient volumes (rates: share of tickets with an outcome)")
    volumes.add_column("department", no_wrap=True, overflow="ellipsis", max_width=22)
    for name in ("tickets", "served", "no-shows", "cancelled", "moved", "open"):
        volumes.add_column(name, justify="right", no_wrap=True)
    for d in r.by_department:
        volumes.add_row(d.name, *_outcome_cells(d.outcomes))
    if len(r.by_department) > 1:
        volumes.add_section()
        volumes.add_row("[bold]all departments[/]", *_outcome_cells(o))
    console.print(volumes)
    if r.by_source:
        console.print(
            "  by source: " + ", ".join(f"{k} {v:,}" for k, v in r.by_source.items()),
            highlight=False,
        )
    unit, series = volume_series(r)
    if any(n for _, n in series):
        console.print(
            bar_chart(
                [label for label, _ in series],
                [n for _, n in series],
                title=f"Tickets per {unit}",
                width=width,
                labeled=len(series) <= 16,
            )
        )
    console.print()

    waits = [("all patients", r.waits)]
    console.print(
        Group(
            _distribution_table("Waits (minutes), arrival to call", waits, "scope"),
            _distribution_table(
                "Waits by department", _breakdown_rows(r.waits_by_department), "department"
            ),
            _distribution_table(
                "Waits by triage category", _breakdown_rows(r.waits_by_category), "category"
            ),
            _distribution_table("Waits by doctor", _breakdown_rows(r.waits_by_doctor), "doctor"),
        )
    )
    if r.waits_by_hour:
        console.print(
            bar_chart(
                [b.key for b in r.waits_by_hour],
                [b.minutes.median or 0 for b in r.waits_by_hour],
                title="Median wait (minutes) by hour of arrival",
                width=width,
            )
        )
        console.print(
            _distribution_table(
                "Waits by hour of arrival", _breakdown_rows(r.waits_by_hour), "hour"
            )
        )
    console.print()

    triage = _table("Seen within the triage target")
    for name, justify in (
        ("category", "left"),
        ("target (min)", "right"),
        ("seen", "right"),
        ("within target", "right"),
        ("%", "right"),
    ):
        triage.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in r.triage:
        target = (
            str(t.target_min) if t.target_min == t.target_max else f"{t.target_min}–{t.target_max}"
        )
        pct = t.percent_within
        style = "" if pct is None else ("green" if pct >= 90 else "yellow" if pct >= 75 else "red")
        triage.add_row(
            f"{t.category} {t.label}",
            target,
            f"{t.seen:,}",
            f"{t.within_target:,}",
            Text(_num(pct), style=style),
        )
    console.print(triage)
    console.print()

    console.print(
        Group(
            _distribution_table(
                "Service times (minutes)", [("all consultations", r.service_times)], "scope"
            ),
            _distribution_table(
                "Service times by department",
                _breakdown_rows(r.service_by_department),
                "department",
            ),
            _distribution_table(
                "Service times by doctor", _breakdown_rows(r.service_by_doctor), "doctor"
            ),
        )
    )
    console.print()

    if r.arrivals_by_hour:
        console.print(
            bar_chart(
                [f"{h.hour:02d}" for h in r.arrivals_by_hour],
                [h.per_open_day for h in r.arrivals_by_hour],
                title="Arrivals per open day by hour",
                width=width,
            )
        )
        busiest = ", ".join(
            f"{h.hour:02d}:00–{h.hour + 1:02d}:00 ({h.per_open_day:.1f} a day)"
            for h in r.busiest_hours
        )
        console.print(f"Busiest hours: {busiest}", highlight=False)
