"""The doctor console (``iqms doctor``): call, see and finish patients from the consulting room.

* header: the doctor, their room (``m`` changes it), status (``p`` pauses and
  resumes), the department;
* the patient called or in the room: ticket, name and age, triage category
  and its target, the wait, recalls, reception's note, the consultation clock;
* my queue: the tickets this doctor would call next (their own and the
  department pool) in calling order, with waits and estimates, and the
  waiting count per category, live from queue events;
* the day so far: patients seen, mean consultation length, no-shows.

Keys: ``n`` call next, ``s`` start, ``d`` done (from called it records the
start at the same moment), ``r`` recall, ``x`` no-show, ``b`` back to the
queue, ``h`` hold, ``t`` transfer, ``c``/Enter call the selected ticket.
"""

from iqms.tui.doctor.app import DoctorConsole

__all__ = ["DoctorConsole"]
