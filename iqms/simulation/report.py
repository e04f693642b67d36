"""The simulation report for people: a few tables on a rich console."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table

from iqms.core.enums import TriageCategory


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}"
    return f"{value}{suffix}"


def render_report(report: Mapping[str, Any], console: Console, *, brief: bool = False) -> None:
    """Print the report; ``brief`` leaves out the per-doctor and queue-length tables."""
    patients = report["patients"]
    console.print(
        f"[bold]Simulated day[/bold]: {report['scenario']} on {report['day']} "
        f"({report['opens']}-{report['closes']}, seed {report['seed']}, {report['backend']})"
    )
    console.print(
        f"{patients['arrived']} patients arrived: {patients['served']} seen, "
        f"{patients['no_show']} did not answer their call, {patients['unserved']} still waiting "
        f"when the last doctor left (last patient done {report['last_patient_done']})."
    )

    waits = Table(title="Waits until called, by triage category (minutes)", header_style="bold")
    for col in ("category", "patients", "mean", "median", "p90", "max", "within target"):
        waits.add_column(col, justify="right" if col != "category" else "left")
    for key in ("1", "2", "3", "4", "5", "all"):
        w = report["waits_minutes"][key]
        label = "all" if key == "all" else f"{key} {TriageCategory(int(key)).label}"
        arrived = patients["arrived"] if key == "all" else patients["by_category"].get(key, 0)
        waits.add_row(
            label,
            str(arrived),
            _fmt(w["mean"]),
            _fmt(w["median"]),
            _fmt(w["p90"]),
            _fmt(w["max"]),
            _fmt(report["within_target_pct"][key], "%"),
        )
    console.print(waits)

    mae = report["estimate_mae_minutes"]
    bias = report["estimate_bias_minutes"]
    acc = Table(
        title=f"Wait estimate made at arrival vs actual wait ({report['estimates_compared']} patients)",
        header_style="bold",
    )
    for col in ("predictor", "mean absolute error", "mean error (bias)"):
        acc.add_column(col, justify="right" if col != "predictor" else "left")
    acc.add_row("IQMS estimate (median)", _fmt(mae["iqms"], " min"), _fmt(bias["iqms"], " min"))
    acc.add_row(
        "queue length (n+1)/(servers x rate)",
        _fmt(mae["queue_length"], " min"),
        _fmt(bias["queue_length"], " min"),
    )
    acc.add_row(
        "last to enter service",
        _fmt(mae["last_to_enter_service"], " min"),
        _fmt(bias["last_to_enter_service"], " min"),
    )
    console.print(acc)
    if report.get("iqms_p90_coverage_pct") is not None:
        console.print(
            f"Actual wait within the IQMS 90% bound: {report['iqms_p90_coverage_pct']:.1f}% of patients."
        )
    console.print(
        f"Doctors busy {_fmt(report['overall_utilisation_pct'], '%')} of their time on duty; "
        f"queue length mean {_fmt(report['queue_length']['mean'])}, "
        f"max {_fmt(report['queue_length']['max'])}."
    )
    if brief:
        return

    docs = Table(title="Doctors", header_style="bold")
    for col in ("doctor", "department", "room", "patients", "on duty (min)", "busy"):
        docs.add_column(
            col, justify="right" if col in {"patients", "on duty (min)", "busy"} else "left"
        )
    for d in report["doctor_utilisation"]:
        docs.add_row(
            d["doctor"],
            d["department"],
            d["room"],
            str(d["patients"]),
            _fmt(d["on_duty_minutes"]),
            _fmt(d["utilisation_pct"], "%"),
        )
    console.print(docs)

    queue = report["queue_length"]
    q = Table(title="Patients waiting over the day", header_style="bold")
    q.add_column("time")
    codes = list(queue["by_department"])
    for code in codes:
        q.add_column(code, justify="right")
    q.add_column("total", justify="right")
    q.add_column("", justify="left")
    peak = max(queue["total"] or [0]) or 1
    for i, time in enumerate(queue["times"]):
        total = queue["total"][i]
        bar = "#" * round(30 * total / peak)
        q.add_row(time, *[str(queue["by_department"][c][i]) for c in codes], str(total), bar)
    console.print(q)


__all__ = ["render_report"]
