"""Textual consoles: reception, doctor, waiting-room display."""
