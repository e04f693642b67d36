"""A whole patient journey through the real queue services and the real Twilio client."""

from __future__ import annotations

import random
from datetime import timedelta

from iqms.core.clock import FrozenClock
from iqms.core.enums import NotifyChannel
from iqms.core.notify.twilio_sms import TwilioSmsProvider
from iqms.core.notify.worker import NotificationWorker
from iqms.core.service import Context
from iqms.core.services import queue
from tests.test_notify_support import (
    TWILIO_FROM,
    TWILIO_SID,
    TWILIO_TOKEN,
    RecordingTwilioHttp,
    make_patient,
)
from tests.test_queue_fixtures import small_clinic


async def test_issue_approaching_called_in_order_in_the_patients_language(
    ctx: Context, clock: FrozenClock
) -> None:
    clinic = await small_clinic(ctx)
    smith = clinic.doctors["drsmith"]
    http = RecordingTwilioHttp()
    worker = NotificationWorker(
        ctx.db,
        ctx.settings,
        clock=clock,
        providers={
            NotifyChannel.SMS: TwilioSmsProvider(
                account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN, sender=TWILIO_FROM,
                http_client=http,
            )
        },
        rng=random.Random(3),
    )  # fmt: skip

    oliver = await make_patient(ctx.db, phone="+447911123102", name="Oliver Brown")
    quiet = await make_patient(ctx.db, channel=NotifyChannel.NONE, phone="+447911123108")
    sofia = await make_patient(ctx.db, phone="+34600900104", language="es", name="Sofía Martínez")

    async def step(minutes: float) -> None:
        clock.advance(timedelta(minutes=minutes))
        await worker.run_until_idle()  # the worker keeps up with the clinic

    first = await queue.issue(ctx, department="GEN", patient=oliver.id)
    await step(2)
    await queue.issue(ctx, department="GEN")  # an anonymous walk-in
    await step(2)
    await queue.issue(ctx, department="GEN", patient=quiet.id)
    await step(2)
    await queue.issue(ctx, department="GEN")
    await step(2)
    ticket = await queue.issue(ctx, department="GEN", patient=sofia.id)  # 4 ahead
    await step(5)

    called = await queue.call_next(ctx, doctor=smith.id)  # Oliver; Sofía now has 3 ahead
    assert called is not None and called.id == first.id
    await step(1)
    await queue.start(ctx, ticket=called.id)
    await step(10)
    await queue.serve(ctx, ticket=called.id)
    for _ in range(3):
        nxt = await queue.call_next(ctx, doctor=smith.id)
        assert nxt is not None
        await step(1)
        await queue.start(ctx, ticket=nxt.id)
        await step(8)
        await queue.serve(ctx, ticket=nxt.id)
        await step(1)
    last = await queue.call_next(ctx, doctor=smith.id)
    assert last is not None and last.id == ticket.id
    await step(1)

    to_sofia = [r.data["Body"] for r in http.sent if r.data["To"] == sofia.phone]
    assert len(to_sofia) == 3
    issued, approaching, room = to_sofia
    assert issued.startswith(
        f"Riverside Clinic: su turno es {ticket.ticket_number} para General Practice. "
        "Espera estimada: "
    )
    assert issued.endswith(" min. Le avisaremos cuando se acerque su turno.")
    assert approaching == (
        f"Riverside Clinic: turno {ticket.ticket_number}, ya casi le toca (3 por delante). "
        "Vuelva a la sala de espera, por favor."
    )
    assert (
        room == f"Riverside Clinic: turno {ticket.ticket_number}, pase ahora a Room 1, por favor."
    )

    to_oliver = [r.data["Body"] for r in http.sent if r.data["To"] == oliver.phone]
    assert len(to_oliver) == 2
    assert to_oliver[0].startswith(
        f"Riverside Clinic: your ticket is {first.ticket_number} for General Practice. "
        "Estimated wait about "
    )
    # Nobody was ahead of him: no separate "your turn is near" later.
    assert to_oliver[0].endswith(" min. Your turn is near: please stay in the waiting area.")
    assert (
        to_oliver[1] == f"Riverside Clinic: ticket {first.ticket_number}, please go to Room 1 now."
    )
    # Nobody else got anything: not the walk-ins, not the patient who said no.
    assert {r.data["To"] for r in http.sent} == {oliver.phone, sofia.phone}
    assert all(r.data["From"] == TWILIO_FROM for r in http.sent)
