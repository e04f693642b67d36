"""Calls heard in the waiting room: a chime made in code and the call spoken offline.

* :mod:`iqms.announce.chime` - a two-tone chime computed with the standard
  library (``wave`` and a little arithmetic): no sound files to ship.
* :mod:`iqms.announce.speech` - what is said ("Ticket A 12, room 3": letters
  spelled, numbers read naturally, in the clinic's language) and saying it
  with espeak-ng, which needs no network.
* :mod:`iqms.announce.announcer` - one queue of calls played one after the
  other through the system's audio player (``aplay``, ``paplay``, ...), so
  two calls never talk over each other; a broken audio device is logged once
  and never stops the board.

The core does not import this package (an import contract checks it).
"""

from iqms.announce.announcer import Announcement, Announcer, find_player
from iqms.announce.chime import CHIME_SECONDS, chime_wav
from iqms.announce.speech import LANGUAGES, call_text, speak_wav

__all__ = [
    "CHIME_SECONDS",
    "LANGUAGES",
    "Announcement",
    "Announcer",
    "call_text",
    "chime_wav",
    "find_player",
    "speak_wav",
]
