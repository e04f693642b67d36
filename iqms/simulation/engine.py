"""The simulator's :class:`~iqms.simulation.model.Engine` on the real core services.

Reception work (issuing tickets, cancelling at closing time) and clinic setup
run as the internal simulator principal; each doctor calls, starts, serves and
marks no-shows as themselves (a doctor principal), so RBAC and the "own
patients only" rules apply as they do in the doctor console.
"""

from __future__ import annotations

import secrets
import uuid

from iqms.core.enums import DoctorStatus, Role
from iqms.core.errors import Conflict
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import clinic, queue, users
from iqms.simulation.model import DepartmentHandle, DoctorHandle, IssuedTicket
from iqms.simulation.scenario import Scenario


class CoreEngine:
    """Runs the simulated clinic's requests through ``iqms.core.services``."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.backend = ctx.db.backend
        self._doctor_ctx: dict[uuid.UUID, Context] = {}

    async def prepare(self, scenario: Scenario) -> list[DepartmentHandle]:
        handles = []
        for plan in scenario.departments:
            if scenario.use_existing_clinic:
                dept = await clinic.get_department(self.ctx, department=plan.code)
            else:
                try:
                    dept = await clinic.create_department(
                        self.ctx,
                        code=plan.code,
                        name=plan.name,
                        ticket_prefix=plan.prefix,
                        default_service_minutes=plan.default_service_minutes,
                    )
                except Conflict as exc:
                    raise Conflict(
                        f"{exc}; simulate on an empty database (the default) or on the "
                        "existing clinic (use_existing_clinic = true in the scenario)"
                    ) from None
            doctors = []
            for i, doc_plan in enumerate(plan.doctors):
                if scenario.use_existing_clinic and doc_plan.username:
                    out = await clinic.get_doctor(self.ctx, doctor=doc_plan.username)
                else:
                    username = doc_plan.username or f"sim-{plan.code.lower()}-{i + 1}"
                    await users.create(
                        self.ctx,
                        username=username,
                        full_name=doc_plan.name,
                        role=Role.DOCTOR,
                        # never used to log in; long and random so it cannot be guessed
                        password=secrets.token_urlsafe(24)[:40],
                    )
                    out = await clinic.create_doctor(
                        self.ctx, user=username, department=plan.code, room=doc_plan.room
                    )
                principal = Principal(
                    user_id=out.user_id,
                    username=out.username,
                    role=Role.DOCTOR.value,
                    doctor_id=out.id,
                )
                self._doctor_ctx[out.id] = self.ctx.as_principal(principal)
                doctors.append(DoctorHandle(out.id, out.full_name, out.room, doc_plan))
            handles.append(
                DepartmentHandle(
                    id=dept.id,
                    code=dept.code,
                    targets={int(c): float(m) for c, m in dept.targets.items()},
                    doctors=tuple(doctors),
                )
            )
        return handles

    async def issue(self, department: DepartmentHandle, category: int) -> IssuedTicket:
        ticket = await queue.issue(
            self.ctx, department=department.id, triage_category=category, source="kiosk"
        )
        estimate = ticket.estimate
        return IssuedTicket(
            entry_id=ticket.id,
            number=ticket.ticket_number,
            p50_minutes=estimate.p50_minutes if estimate else None,
            p90_minutes=estimate.p90_minutes if estimate else None,
        )

    async def set_available(self, doctor: DoctorHandle, available: bool) -> None:
        await clinic.set_doctor_status(
            self._doctor_ctx[doctor.id],
            status=DoctorStatus.AVAILABLE if available else DoctorStatus.OFF,
        )

    async def call_next(self, doctor: DoctorHandle) -> uuid.UUID | None:
        ticket = await queue.call_next(self._doctor_ctx[doctor.id])
        return ticket.id if ticket is not None else None

    async def start(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None:
        await queue.start(self._doctor_ctx[doctor.id], ticket=entry_id)

    async def serve(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None:
        await queue.serve(self._doctor_ctx[doctor.id], ticket=entry_id)

    async def no_show(self, doctor: DoctorHandle, entry_id: uuid.UUID) -> None:
        await queue.no_show(self._doctor_ctx[doctor.id], ticket=entry_id)

    async def cancel(self, entry_id: uuid.UUID) -> None:
        await queue.cancel(self.ctx, ticket=entry_id, reason="clinic closed")


__all__ = ["CoreEngine"]
