"""A small ESC/POS decoder for tests: the text a printer would print, with sizes, QR codes, cuts.

It understands the commands a ticket uses and refuses anything else (so a test
notices when the output changes shape). Text bytes are read through the code
page the stream selected (``ESC t n``), as the printer would.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from importlib import resources

ESC, GS, DLE, LF = 0x1B, 0x1D, 0x10, 0x0A


def _code_pages(profile: str) -> dict[int, str]:
    """Code page numbers of a printer profile (the printer's manual, as python-escpos ships it)."""
    data = json.loads((resources.files("escpos") / "capabilities.json").read_text("utf-8"))
    return {int(n): name for n, name in data["profiles"][profile]["codePages"].items()}


def _codec(name: str) -> str:
    return codecs.lookup(name.lower().replace("iso_8859-", "iso8859_").replace("-", "_")).name


@dataclass
class Line:
    text: str
    width: int = 1
    height: int = 1
    bold: bool = False
    align: str = "left"
    invert: bool = False

    @property
    def size(self) -> int:
        return self.width * self.height


@dataclass
class Decoded:
    lines: list[Line] = field(default_factory=list)
    qr: list[str] = field(default_factory=list)
    cuts: int = 0
    status_queries: list[int] = field(default_factory=list)
    code_pages: list[str] = field(default_factory=list)
    resets: int = 0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def flat(self) -> str:
        """The printed text as one line (wrapped sentences joined again)."""
        return " ".join(line.text.strip() for line in self.lines if line.text.strip())

    @property
    def printed(self) -> list[Line]:
        """Lines with something on them."""
        return [line for line in self.lines if line.text.strip()]

    @property
    def largest(self) -> Line:
        return max(self.printed, key=lambda line: line.size)

    def line(self, contains: str) -> Line:
        matches = [line for line in self.lines if contains in line.text]
        assert matches, f"no printed line contains {contains!r}; printed:\n{self.text}"
        return matches[0]


class _State:
    def __init__(self, pages: dict[int, str]) -> None:
        self.pages = pages
        self.reset()

    def reset(self) -> None:
        self.width = self.height = 1
        self.bold = self.invert = False
        self.align = "left"
        self.page = self.pages.get(0, "CP437")


def decode(data: bytes, profile: str = "TM-T88V") -> Decoded:
    """Decode the bytes sent to a printer (status queries included) into what it prints."""
    pages = _code_pages(profile)
    out = Decoded()
    st = _State(pages)
    pending: list[str] = []  # decoded text of the current line
    raw = bytearray()  # printable bytes not yet decoded (current code page)
    attrs: dict[str, object] | None = None

    def flush_raw() -> None:
        if raw:
            pending.append(bytes(raw).decode(_codec(st.page)))
            raw.clear()

    def end_line() -> None:
        nonlocal attrs
        flush_raw()
        text = "".join(pending)
        a = attrs or {"width": st.width, "height": st.height, "bold": st.bold,
                      "align": st.align, "invert": st.invert}  # fmt: skip
        out.lines.append(Line(text, **a))  # type: ignore[arg-type]
        pending.clear()
        attrs = None

    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == LF:
            end_line()
            i += 1
        elif b == DLE and i + 2 < n and data[i + 1] == 0x04:
            out.status_queries.append(data[i + 2])
            i += 3
        elif b == ESC:
            cmd = data[i + 1]
            if cmd == ord("@"):
                flush_raw()
                st.reset()
                out.resets += 1
                i += 2
            elif cmd == ord("t"):
                flush_raw()
                st.page = pages[data[i + 2]]
                out.code_pages.append(st.page)
                i += 3
            elif cmd == ord("!"):
                mode = data[i + 2]
                st.width = 2 if mode & 0x20 else 1
                st.height = 2 if mode & 0x10 else 1
                st.bold = bool(mode & 0x08)
                i += 3
            elif cmd == ord("E"):
                st.bold = bool(data[i + 2] & 1)
                i += 3
            elif cmd == ord("a"):
                st.align = {0: "left", 1: "center", 2: "right"}[data[i + 2] % 48]
                i += 3
            elif cmd in (ord("-"), ord("M"), ord("{"), ord("3"), ord("d")):
                if cmd == ord("d"):
                    end_line()
                i += 3
            elif cmd == ord("2"):
                i += 2
            else:
                raise ValueError(f"unknown command ESC {cmd:#04x} at byte {i}")
        elif b == GS:
            cmd = data[i + 1]
            if cmd == ord("!"):
                size = data[i + 2]
                st.width, st.height = (size >> 4) + 1, (size & 0x0F) + 1
                i += 3
            elif cmd == ord("B"):
                st.invert = bool(data[i + 2] & 1)
                i += 3
            elif cmd == ord("b"):
                i += 3
            elif cmd == ord("V"):
                m = data[i + 2]
                out.cuts += 1
                i += 4 if m in (65, 66) else 3
            elif cmd == ord("(") and data[i + 2] == ord("k"):
                length = data[i + 3] | (data[i + 4] << 8)
                body = data[i + 5 : i + 5 + length]
                if len(body) != length:
                    raise ValueError(f"truncated 2D code command at byte {i}")
                cn, fn = body[0], body[1]
                if cn == ord("1") and fn == 80:  # store the QR data (after the m byte)
                    out.qr.append(body[3:].decode("utf-8"))
                i += 5 + length
            else:
                raise ValueError(f"unknown command GS {cmd:#04x} at byte {i}")
        elif b < 0x20 or b == 0x7F:
            raise ValueError(f"unexpected control byte {b:#04x} at byte {i}")
        else:
            if attrs is None and not pending and not raw:
                attrs = {"width": st.width, "height": st.height, "bold": st.bold,
                         "align": st.align, "invert": st.invert}  # fmt: skip
            raw.append(b)
            i += 1
    if raw or pending:
        end_line()
    return out
