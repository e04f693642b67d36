"""Textual consoles on the IQMS core: the shared foundation, and the consoles built on it.

A console is a subclass of :class:`iqms.tui.app.ConsoleApp`. The base does what
every console needs, so a console only adds its own views:

* **one core context**: the base opens the database once (``app.db``) and
  keeps ``app.ctx`` (a :class:`~iqms.core.service.Context` for whoever is
  signed in). Views call core services only, through ``await
  app.core(lambda: service(app.ctx, ...), offline=...)``: a refusal or
  failure becomes one short notification (``errors="raise"`` hands it to a
  form instead), never a traceback; a bug is logged and the console leaves
  with one line.
* **sign-in** is pluggable (:mod:`iqms.tui.auth`): pass
  :class:`~iqms.tui.auth.PasswordLogin` for a person (login screen; a saved
  ``iqms login`` token can be reused; the console locks after
  ``IQMS_TUI_IDLE_LOCK_MINUTES`` idle, Ctrl+L locks at once), or a ready
  :class:`~iqms.core.security.rbac.Principal`, or a callable ``(ctx) ->
  Principal`` (a device key: no login screen, no lock).
  ``ALLOWED_ROLES`` limits who may use the console.
* **live events**: a worker subscribes to ``queue.watch`` and delivers
  :class:`~iqms.tui.messages.TicketChanged`, :class:`~iqms.tui.messages.DoctorChanged`,
  :class:`~iqms.tui.messages.PrinterChanged` and :class:`~iqms.tui.messages.Resync`
  to every screen of the current stack (messages do not bubble; override
  ``deliver`` to watch them at the app). After a reconnect, an offline sync or
  a screen shown again after missing events, screens get a resync and reload.
* **status bar** (:class:`~iqms.tui.widgets.StatusBar`, part of every
  :class:`~iqms.tui.screens.ConsoleScreen`): clinic, who is signed in (or the
  device name), database online/offline, offline operations waiting, clock.
  A heartbeat notices a lost database even when nobody is typing;
  ``status_alert()`` may flag something in it (reception: a kiosk printer).
* **keys**: every binding shown is in the :class:`~iqms.tui.widgets.KeyBar`
  at the bottom, wrapped onto more lines rather than cut off on 80 columns.
  Form fields are :class:`~iqms.tui.widgets.FieldInput` (Enter moves on while
  the key is routed, so fast typing lands in the next field); letter keys of a
  screen are best ``priority=True`` for the same reason, disabled in
  ``check_action`` while a text box has the focus.
* **offline** (``OFFLINE_JOURNAL = True``): core calls run through
  :class:`~iqms.core.sync.connectivity.Connectivity` and the local journal;
  the journal is pushed automatically when the database is back
  (:meth:`ConsoleApp.on_synced` reports the outcome, conflicts included).
  ``offline_departments()`` names the departments to keep ticket numbers for.
* **themes**: ``iqms`` (default), ``iqms-light``, ``iqms-high-contrast``
  (``IQMS_TUI_THEME``; the palette's "Change theme" switches live).
* **command palette** (Ctrl+P): the current screen's actions under their
  descriptions, from the same bindings the footer shows.

A new console::

    class BoardApp(ConsoleApp):
        TITLE = "Waiting-room board"
        ALLOWED_ROLES = frozenset({"display", "admin"})
        MODES = {"board": BoardScreen}          # BoardScreen(ConsoleScreen)

        async def after_sign_in(self, sign_in, *, first):
            if first:
                await self.switch_mode("board")

    BoardApp(settings, auth=device_authenticate).run()

Shared widgets and dialogs: :mod:`iqms.tui.widgets` (status bar, triage tag),
:mod:`iqms.tui.dialogs` (triage category, text, yes/no, list),
:mod:`iqms.tui.format` (waits, due times, estimates, triage colours).
"""
