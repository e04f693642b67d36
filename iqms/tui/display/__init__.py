"""The waiting-room display board (``iqms display``).

Large ticket numbers and rooms, the queues of the departments it covers, a
message line staff set, and calls announced with a chime or spoken; numbers
only, never a name. See :mod:`iqms.tui.display.app` (signing in, running all
day) and :mod:`iqms.tui.display.board` (what the screen shows and when).
"""

from iqms.tui.display.app import BoardApp, BoardSignIn
from iqms.tui.display.board import BoardScreen

__all__ = ["BoardApp", "BoardScreen", "BoardSignIn"]
