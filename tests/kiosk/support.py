"""What the kiosk tests share: a kiosk signed in with its own device key."""

from __future__ import annotations

from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import devices


async def kiosk(ctx: Context, name: str = "entrance") -> Context:
    """A context acting as a new kiosk, signed in with the key ``iqms admin devices add`` gave."""
    issued = await devices.add(ctx, name=name, role="kiosk")
    anonymous = ctx.as_principal(Principal.anonymous())
    return ctx.as_principal(await devices.authenticate(anonymous, key=issued.key))
