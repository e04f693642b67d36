"""The reception terminal (``iqms reception``): queue, patients and doctors for the front desk.

F1 shows the live queue of the chosen departments in calling order, with the
moves on the selected ticket one key away; F2 finds, registers and edits
patients; F3 shows the doctors, their rooms and whom they are seeing. When
the central database goes away the console keeps issuing tickets (from the
numbers it reserved) and registering patients through the offline journal.
"""
