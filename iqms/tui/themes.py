"""The consoles' colour themes: a calm dark default, a light one and a high-contrast one.

The high-contrast theme is for bright rooms, old monitors and weaker eyes:
pure black and white, yellow for focus, and no dimmed text. Textual's own
themes (``textual-dark``, ``nord``, ...) work too; ``IQMS_TUI_THEME`` picks one.
"""

from __future__ import annotations

from textual.theme import Theme

IQMS_DARK = Theme(
    name="iqms",
    primary="#4fa3e0",
    secondary="#8fb8de",
    accent="#ffb454",
    warning="#ffaf00",
    error="#ff5f5f",
    success="#5fd75f",
    foreground="#e6e6e6",
    background="#101820",
    surface="#17222d",
    panel="#22313f",
    dark=True,
)

IQMS_LIGHT = Theme(
    name="iqms-light",
    primary="#005fa3",
    secondary="#3d6f99",
    accent="#b35900",
    warning="#9a6700",
    error="#c00000",
    success="#1a7f37",
    foreground="#111111",
    background="#f7f7f2",
    surface="#ffffff",
    panel="#e4e8ec",
    dark=False,
)

IQMS_HIGH_CONTRAST = Theme(
    name="iqms-high-contrast",
    primary="#ffff00",
    secondary="#00ffff",
    accent="#ffff00",
    warning="#ffff00",
    error="#ff4040",
    success="#00ff00",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1c1c1c",
    boost="#ffffff",
    dark=True,
    variables={
        "text-muted": "#ffffff",
        "text-disabled": "#bfbfbf",
        "block-cursor-background": "#ffff00",
        "block-cursor-foreground": "#000000",
        "block-cursor-text-style": "bold",
        "footer-key-foreground": "#ffff00",
        "footer-description-foreground": "#ffffff",
        "input-selection-background": "#ffff00 50%",
        "border": "#ffffff",
        "border-blurred": "#bfbfbf",
    },
)

THEMES = (IQMS_DARK, IQMS_LIGHT, IQMS_HIGH_CONTRAST)
DEFAULT_THEME = IQMS_DARK.name
HIGH_CONTRAST = IQMS_HIGH_CONTRAST.name

__all__ = ["DEFAULT_THEME", "HIGH_CONTRAST", "THEMES"]
