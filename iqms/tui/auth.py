"""How a console learns who is using it: a person's login, or a device that is already known.

A console is given one :class:`Authenticator`:

* :class:`PasswordLogin` - a person at a desk (reception, doctor): the login
  screen asks for username and password (the same accounts, lockout and
  tokens as ``iqms login``); a saved CLI login may be reused; the console
  locks after a while without input.
* :class:`PresetPrincipal` - somebody already authenticated (a test, a
  command that resolved a token itself): no login screen, no idle lock.
* :class:`DeviceAuth` - a kiosk or a waiting-room board authenticating with a
  device credential through a callable ``(ctx) -> Principal``: no login
  screen, no idle lock.

``as_authenticator`` turns a ready :class:`~iqms.core.security.rbac.Principal`
or such a callable into the right authenticator, so a console can be handed
either without knowing these classes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Union

from iqms.core.errors import AuthenticationFailed, IQMSError
from iqms.core.security.rbac import Principal
from iqms.core.service import Context
from iqms.core.services import auth


@dataclass(frozen=True)
class SignIn:
    """Who is signed in: the principal, a name for the status bar, the login token if any."""

    principal: Principal
    display_name: str
    token: str | None = None

    @property
    def label(self) -> str:
        """``Rita Reception (staff)``; a device shows its name only."""
        role = self.principal.role
        if self.principal.user_id is None or role == "kiosk":
            return self.display_name
        return f"{self.display_name} ({role})"


class Authenticator:
    """Base: how a console signs in. ``interactive`` consoles show a login screen and lock."""

    interactive: bool = False
    #: a message for the login screen (e.g. why a saved login could not be reused)
    notice: str | None = None

    async def resume(self, ctx: Context) -> SignIn | None:
        """Sign in without asking anyone (a saved login, a device key); None to ask."""
        return None

    async def login(self, ctx: Context, *, username: str, password: str) -> SignIn:
        """Sign in with a username and password (interactive consoles only)."""
        raise AuthenticationFailed("this console does not take a username and password")


async def _display_name(ctx: Context, principal: Principal) -> str:
    try:
        me = await auth.whoami(ctx.as_principal(principal))
    except IQMSError:
        return principal.username
    return me.full_name or principal.username


class PasswordLogin(Authenticator):
    """A person's login: username and password, or the login saved by ``iqms login``."""

    interactive = True

    def __init__(self, *, saved_token: str | None = None) -> None:
        self.saved_token = saved_token

    async def resume(self, ctx: Context) -> SignIn | None:
        if not self.saved_token:
            return None
        token, self.saved_token = self.saved_token, None  # tried once: a lock asks again
        try:
            principal = await auth.authenticate(
                ctx.as_principal(Principal.anonymous()), token=token
            )
        except AuthenticationFailed as exc:
            self.notice = f"The saved login cannot be used: {exc}. Please log in."
            return None
        return SignIn(principal, await _display_name(ctx, principal), token)

    async def login(self, ctx: Context, *, username: str, password: str) -> SignIn:
        result = await auth.login(
            ctx.as_principal(Principal.anonymous()), username=username, password=password
        )
        return SignIn(result.principal, result.user.full_name or result.user.username, result.token)


class PresetPrincipal(Authenticator):
    """An already authenticated principal (no login screen, no idle lock)."""

    def __init__(self, principal: Principal, *, display_name: str | None = None) -> None:
        self.principal = principal
        self.display_name = display_name

    async def resume(self, ctx: Context) -> SignIn | None:
        name = self.display_name or await _display_name(ctx, self.principal)
        return SignIn(self.principal, name)


class DeviceAuth(Authenticator):
    """A device (kiosk, board) that authenticates itself, e.g. with a device key."""

    def __init__(
        self,
        authenticate: Callable[[Context], Awaitable[Principal]],
        *,
        display_name: str | None = None,
    ) -> None:
        self.authenticate = authenticate
        self.display_name = display_name

    async def resume(self, ctx: Context) -> SignIn | None:
        principal = await self.authenticate(ctx.as_principal(Principal.anonymous()))
        return SignIn(principal, self.display_name or principal.username)


AuthSource = Union[Authenticator, Principal, Callable[[Context], Awaitable[Principal]]]  # noqa: UP007


def as_authenticator(source: AuthSource) -> Authenticator:
    """An :class:`Authenticator` from an authenticator, a ready principal or a callable."""
    if isinstance(source, Authenticator):
        return source
    if isinstance(source, Principal):
        return PresetPrincipal(source)
    if callable(source):
        return DeviceAuth(source)
    raise TypeError(f"cannot authenticate a console with {source!r}")


__all__ = [
    "AuthSource",
    "Authenticator",
    "DeviceAuth",
    "PasswordLogin",
    "PresetPrincipal",
    "SignIn",
    "as_authenticator",
]
