"""Row writers for exports: CSV with a header row, or JSON lines."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from typing import IO, Any, Protocol

FORMATS = ("csv", "jsonl")


class RowWriter(Protocol):
    def write(self, rows: Sequence[dict[str, Any]]) -> None: ...


class CsvWriter:
    """CSV with a header row; nested values (audit details) become JSON text."""

    def __init__(self, stream: IO[str], columns: Sequence[str]) -> None:
        self._columns = list(columns)
        self._writer = csv.writer(stream, lineterminator="\n")
        self._writer.writerow(self._columns)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self._writer.writerows([[_cell(row.get(c)) for c in self._columns] for row in rows])


class JsonLinesWriter:
    """One JSON object per line."""

    def __init__(self, stream: IO[str], columns: Sequence[str]) -> None:
        self._stream = stream
        self._columns = list(columns)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self._stream.writelines(
            json.dumps({c: row.get(c) for c in self._columns}, ensure_ascii=False) + "\n"
            for row in rows
        )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def writer_for(fmt: str, stream: IO[str], columns: Sequence[str]) -> RowWriter:
    if fmt == "csv":
        return CsvWriter(stream, columns)
    if fmt == "jsonl":
        return JsonLinesWriter(stream, columns)
    raise ValueError(f"unknown export format {fmt!r}")
