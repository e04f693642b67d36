"""Error lines that echo what the user typed stay short and on one line.

A 300-character department code or a value with a line break in it, quoted
back in ``iqms: error: no department ...``, would flood the terminal or split
the one error line in two. The root command remembers the arguments it was
given; every error line passes through :func:`one_line`, which shortens long
arguments wherever the message repeats them and shows control characters
escaped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

ECHO_LIMIT = 80  # arguments up to this long are echoed whole (paths, names) ...
ECHO_SHOWN = 40  # ... longer ones show this many characters and their length

_arguments: list[str] = []


def remember(arguments: Iterable[str]) -> None:
    """Note the command line of this run (called by the root command)."""
    _arguments[:] = [a for a in arguments if isinstance(a, str)]


def shorten(value: str) -> str:
    """``value`` as an error shows it: control characters escaped, a long one cut (a file
    path is shown whole: the user needs all of it to see what was wrong)."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)
    if len(text) <= ECHO_LIMIT or (os.sep in text or "/" in text):
        return text
    return f"{text[:ECHO_SHOWN]}... ({len(value)} characters)"


def one_line(message: str, values: Iterable[str] = ()) -> str:
    """``message`` with long or unprintable arguments shortened, as a single line."""
    candidates = {*_arguments, *values}
    for value in sorted(candidates, key=len, reverse=True):
        for option_value in _split_option(value):
            short = shorten(option_value)
            if short == option_value:
                continue
            for form in {option_value, repr(option_value)[1:-1]}:
                if form:
                    message = message.replace(form, short)
    return " ".join(message.split("\n")).replace("\r", " ")


def _split_option(argument: str) -> list[str]:
    """``--name=VALUE`` is echoed as VALUE; anything else as it is."""
    if argument.startswith("--") and "=" in argument:
        return [argument, argument.partition("=")[2]]
    return [argument]
