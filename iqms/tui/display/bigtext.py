"""Large letters for a board read from across the room: a pixel font drawn with half blocks.

Textual's ``Digits`` knows only digits and A-F; ticket numbers use any letter
(``K-017``) and rooms are words. :class:`BigText` draws a 5x7 pixel font with
half-block characters at the largest scale that fits its box (each pixel one
column by half a row at scale 1, so letters keep their shape), and falls back
to plain bold text when even the smallest scale does not fit or the text has a
character the font does not know. The same widget serves an 80x24 monitor and
a 200x50 television.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widget import Widget

# Each glyph: 7 rows of equal width, '#' for a lit pixel.
_FONT_ROWS: dict[str, tuple[str, ...]] = {
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": ("###", ".#.", ".#.", ".#.", ".#.", ".#.", "###"),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "-": ("...", "...", "...", "###", "...", "...", "..."),
    " ": ("...", "...", "...", "...", "...", "...", "..."),
    ":": (".", ".", "#", ".", "#", ".", "."),
    ".": (".", ".", ".", ".", ".", ".", "#"),
    "/": ("....#", "....#", "...#.", "..#..", ".#...", "#....", "#...."),
    "→": (".....", "..#..", "...#.", "#####", "...#.", "..#..", "....."),
}

GLYPH_HEIGHT = 7
#: the characters :class:`BigText` can draw large (lower case is drawn as upper case)
SUPPORTED = frozenset(_FONT_ROWS)

_GLYPHS: dict[str, list[list[bool]]] = {
    ch: [[c == "#" for c in row] for row in rows] for ch, rows in _FONT_ROWS.items()
}
for _ch, _rows in _FONT_ROWS.items():
    assert len(_rows) == GLYPH_HEIGHT and len({len(r) for r in _rows}) == 1, _ch


def can_draw(text: str) -> bool:
    """True when every character of ``text`` is in the font (case-insensitive)."""
    return bool(text) and all(ch in SUPPORTED for ch in text.upper())


def pixel_width(text: str) -> int:
    """Width of ``text`` in font pixels (glyphs and the one-pixel gaps between them)."""
    chars = text.upper()
    return sum(len(_GLYPHS[ch][0]) for ch in chars) + max(len(chars) - 1, 0)


def size_at(text: str, scale: int) -> tuple[int, int]:
    """Columns and rows ``text`` takes at ``scale``."""
    return pixel_width(text) * scale, math.ceil(GLYPH_HEIGHT * scale / 2)


def best_scale(text: str, width: int, height: int, *, max_scale: int = 8) -> int:
    """The largest scale at which ``text`` fits ``width`` x ``height`` cells (0: none does)."""
    if not can_draw(text):
        return 0
    for scale in range(max_scale, 0, -1):
        w, h = size_at(text, scale)
        if w <= width and h <= height:
            return scale
    return 0


def render_lines(text: str, scale: int) -> list[str]:
    """``text`` drawn at ``scale`` as lines of half-block characters."""
    chars = text.upper()
    pixels: list[list[bool]] = [[] for _ in range(GLYPH_HEIGHT)]
    for index, ch in enumerate(chars):
        glyph = _GLYPHS[ch]
        for y in range(GLYPH_HEIGHT):
            if index:
                pixels[y].append(False)
            pixels[y].extend(glyph[y])
    # Scale: each pixel becomes `scale` columns and `scale` half-rows.
    half_rows = [[bit for bit in row for _ in range(scale)] for row in pixels for _ in range(scale)]
    if len(half_rows) % 2:
        half_rows.append([False] * len(half_rows[0]))
    lines = []
    for top, bottom in zip(half_rows[0::2], half_rows[1::2], strict=True):
        lines.append("".join(_CELL[(a, b)] for a, b in zip(top, bottom, strict=True)))
    return lines


_CELL = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


class BigText(Widget):
    """Text as large as its box allows; plain bold text when it cannot be drawn large."""

    DEFAULT_CSS = """
    BigText {
        height: 1fr;
        width: 1fr;
    }
    """

    def __init__(
        self,
        text: str = "",
        *,
        max_scale: int = 8,
        align: str = "left",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._text = text
        self._plain = False
        self.max_scale = max_scale
        self.align = align

    @property
    def text(self) -> str:
        return self._text

    def update(self, text: str, *, plain: bool = False) -> None:
        """Show ``text`` (``plain``: as ordinary text, e.g. a sentence rather than a number)."""
        if (text, plain) != (self._text, self._plain):
            self._text, self._plain = text, plain
            self.refresh()

    @property
    def scale(self) -> int:
        """The scale the text is drawn at now (0: plain text)."""
        if self._plain:
            return 0
        size = self.content_size
        return best_scale(self._text, size.width, size.height, max_scale=self.max_scale)

    def render(self) -> Text:
        size = self.content_size
        scale = self.scale
        if scale == 0:
            lines = [self._text]
            width = len(self._text)
            style = "bold"
        else:
            lines = render_lines(self._text, scale)
            width = len(lines[0])
            style = ""
        pad_top = max((size.height - len(lines)) // 2, 0)
        if self.align == "center":
            indent = max((size.width - width) // 2, 0)
        elif self.align == "right":
            indent = max(size.width - width, 0)
        else:
            indent = 0
        body = "\n" * pad_top + "\n".join(" " * indent + line for line in lines)
        return Text(body, style=style, no_wrap=True, overflow="ellipsis", end="")


__all__ = [
    "SUPPORTED",
    "BigText",
    "best_scale",
    "can_draw",
    "pixel_width",
    "render_lines",
    "size_at",
]
