"""A ticket number in very large block letters, as big as the space allows.

Textual's ``Digits`` has no letters beyond A-F, and ticket prefixes can be any
letter, so the kiosk draws numbers from a classic 5x7 dot-matrix font. Each
dot is a square of half-block characters (a terminal cell is twice as tall as
it is wide, so a half-block is about square); the widget picks the largest
whole scale at which the number fits its size.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7

_FONT_ROWS = {
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "-": "..... ..... ..... ##### ..... ..... .....",
    " ": "..... ..... ..... ..... ..... ..... .....",
}
FONT: dict[str, tuple[str, ...]] = {ch: tuple(rows.split()) for ch, rows in _FONT_ROWS.items()}
_HALF = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}


def size_at(text: str, scale: int) -> tuple[int, int]:
    """Columns and rows that ``text`` takes at ``scale`` (a gap of one dot between letters)."""
    count = max(1, len(text))
    width = count * GLYPH_WIDTH * scale + (count - 1) * scale
    return width, (GLYPH_HEIGHT * scale + 1) // 2


def render_lines(text: str, scale: int) -> list[str]:
    """``text`` in block letters at ``scale`` (1 = one half-block per dot)."""
    glyphs = [FONT.get(ch, FONT[" "]) for ch in text.upper()]
    dots: list[list[bool]] = []
    for row in range(GLYPH_HEIGHT):
        line: list[bool] = []
        for i, glyph in enumerate(glyphs):
            if i:
                line.extend([False] * scale)
            for cell in glyph[row]:
                line.extend([cell == "#"] * scale)
        dots.extend([line] * scale)
    if len(dots) % 2:
        dots.append([False] * len(dots[0]))
    return [
        "".join(_HALF[top, bottom] for top, bottom in zip(upper, lower, strict=True))
        for upper, lower in zip(dots[::2], dots[1::2], strict=True)
    ]


def best_scale(text: str, width: int, height: int, *, largest: int = 8) -> int:
    """The largest scale at which ``text`` fits ``width`` x ``height`` cells (at least 1)."""
    for scale in range(largest, 1, -1):
        columns, rows = size_at(text, scale)
        if columns <= width and rows <= height:
            return scale
    return 1


class BigNumber(Widget):
    """A ticket number in block letters, centred, as large as the widget's size allows."""

    DEFAULT_CSS = """
    BigNumber {
        width: 100%;
        height: 12;
        color: $text;
        text-style: bold;
    }
    """

    text: reactive[str] = reactive("", layout=True)

    def __init__(self, text: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.text = text

    def render(self) -> Text:
        width, height = self.content_size
        scale = best_scale(self.text, width, height)
        lines = render_lines(self.text, scale)
        pad_top = max(0, (height - len(lines)) // 2)
        columns = len(lines[0]) if lines else 0
        pad_left = " " * max(0, (width - columns) // 2)
        body = "\n" * pad_top + "\n".join(pad_left + line for line in lines)
        return Text(body, no_wrap=True, overflow="crop")


__all__ = ["FONT", "BigNumber", "best_scale", "render_lines", "size_at"]
