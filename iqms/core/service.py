"""The service layer's plumbing: the call context and the ``@operation`` decorator.

Front ends call core services as ``await queue.call_next(ctx, doctor_id=...)``.
Each operation declares its permission; the decorator checks it before doing
anything, then runs the body in one transaction (audit records, events and
notification rows commit or roll back together with the change). An operation
called from inside another joins the caller's transaction.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from iqms.core.clock import Clock, SystemClock, service_date
from iqms.core.config import Settings
from iqms.core.db import Database
from iqms.core.errors import IQMSError
from iqms.core.security.rbac import Permission, Principal, require

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Context:
    """Everything an operation needs: database, caller, settings, clock."""

    db: Database
    principal: Principal
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    session: AsyncSession | None = None
    # Callbacks run after the transaction committed (e.g. in-process event fan-out).
    after_commit: list[Callable[[], Any]] = field(default_factory=list)
    # Callbacks run when the transaction did not commit (e.g. forget in-process state it set).
    after_rollback: list[Callable[[], Any]] = field(default_factory=list)

    def bind(self, session: AsyncSession) -> Context:
        return replace(self, session=session, after_commit=[], after_rollback=[])

    def as_principal(self, principal: Principal) -> Context:
        return replace(self, principal=principal)

    @property
    def s(self) -> AsyncSession:
        """The session of the running operation."""
        if self.session is None:
            raise RuntimeError("no transaction: call this from inside an @operation")
        return self.session

    def now(self):  # type: ignore[no-untyped-def]
        return self.clock.now()

    def today(self):  # type: ignore[no-untyped-def]
        return service_date(self.clock.now(), self.settings.tz)


# name -> operation; the every-operation-has-a-permission test walks this and the modules.
OPERATIONS: dict[str, Callable[..., Any]] = {}


def operation(
    permission: Permission | None,
    *,
    readonly: bool = False,
    public: bool = False,
) -> Callable[[Callable[..., Awaitable[R]]], Callable[..., Awaitable[R]]]:
    """Declare a core service operation guarded by ``permission``.

    ``public=True`` (with ``permission=None``) marks the few entry points that
    run before anyone is authenticated, such as login.
    """
    if permission is None and not public:
        raise TypeError("an operation must name a permission or be marked public")

    def decorate(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__} must be async")

        @functools.wraps(fn)
        async def wrapper(ctx: Context, /, *args: Any, **kwargs: Any) -> R:
            if permission is not None:
                require(ctx.principal, permission)
            if ctx.session is not None:
                return await fn(ctx, *args, **kwargs)
            inner: Context | None = None
            try:
                async with ctx.db.transaction(readonly=readonly) as session:
                    inner = ctx.bind(session)
                    result = await fn(inner, *args, **kwargs)
            except BaseException:
                for callback in inner.after_rollback if inner is not None else ():
                    callback()
                raise
            for callback in inner.after_commit:
                callback()
            return result

        wrapper.__iqms_permission__ = permission  # type: ignore[attr-defined]
        wrapper.__iqms_public__ = public  # type: ignore[attr-defined]
        OPERATIONS[f"{fn.__module__}.{fn.__qualname__}"] = wrapper
        return wrapper

    return decorate


@contextlib.asynccontextmanager
async def savepoint(ctx: Context) -> AsyncIterator[None]:
    """A nested transaction of the running operation (``SAVEPOINT``).

    If it rolls back, the in-process state changed inside it is forgotten too
    (its ``after_rollback`` callbacks run), while the operation goes on.
    """
    marker = len(ctx.after_rollback)
    try:
        async with ctx.s.begin_nested():
            yield
    except BaseException:
        for callback in ctx.after_rollback[marker:]:
            callback()
        del ctx.after_rollback[marker:]
        raise


def is_operation(obj: object) -> bool:
    return hasattr(obj, "__iqms_permission__")


__all__ = ["OPERATIONS", "Context", "IQMSError", "is_operation", "operation", "savepoint"]
