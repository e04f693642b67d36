"""The queue subsystem: policy, engine, wait estimates and live events.

* :mod:`.policy` - Manchester triage targets, due times, the state machine.
* :mod:`.engine` - numbering, creating tickets, the queue order, the atomic claim.
* :mod:`.eta` - wait estimates from the queue order and recent consultations.
* :mod:`.events` - typed events published in a transaction and delivered on commit.

The permission-checked operations that front ends call live in
:mod:`iqms.core.services.queue`.
"""
