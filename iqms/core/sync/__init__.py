"""Working without the central database, and catching up when it returns.

* :mod:`.journal` - the local SQLite journal of operations made offline and
  the reserved ticket number blocks.
* :mod:`.connectivity` - notices a lost database, falls back to the journal,
  probes with backoff and pushes when the database is back.
* :mod:`.batch` - the batch format a device pushes (validated, versioned).
* :mod:`.apply` / :mod:`.patients` - applying a batch on the server: tickets,
  check-ins, and patients merged by identity.

The operations (push, reserve numbers, conflicts) live in
:mod:`iqms.core.services.sync`.
"""
