"""Command groups whose subcommands are imported only when they run.

``iqms --version`` and ``iqms --help`` must start instantly, so the root group
and ``iqms admin`` name their subcommands here with a one-line help each and
import a command's module (and with it the core, SQLAlchemy, pydantic, ...)
only when that command is invoked, completed, or its own help is shown.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from typer.core import TyperCommand, TyperGroup, TyperOption


def _flags_show_no_type() -> None:
    """On/off flags (``--json``, ``--help``) show no ``<bool>`` in help: they take no value.

    Typer's plain help already leaves the type out for flags; its rich help (the one
    people see) prints ``<bool>`` next to every flag, as if it wanted ``--json true``.
    Options that take a value keep their type.
    """
    show_type = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return show_type(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()


@dataclass(frozen=True)
class LazyCommand:
    """Where a subcommand lives: ``module:attribute`` (a ``typer.Typer`` or a function)."""

    target: str
    help: str
    hidden: bool = False

    def load(self, name: str) -> Any:
        import typer

        module_name, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        if isinstance(obj, typer.Typer):
            command = typer.main.get_group(obj)
        else:
            single = typer.Typer()
            single.command(name=name)(obj)
            command = typer.main.get_command(single)
        command.name = name
        return command


class LazyGroup(TyperGroup):
    """A Typer group that resolves the subcommands named in ``lazy_commands`` on demand."""

    lazy_commands: dict[str, LazyCommand] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, Any] = {}
        self._listing_help = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy_commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = self.lazy_commands.get(cmd_name)
        if spec is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name in self._loaded:
            return self._loaded[cmd_name]
        if self._listing_help:
            # Listing this group's commands in its help: the one-line help is enough.
            return TyperCommand(name=cmd_name, help=spec.help, hidden=spec.hidden)
        command = spec.load(cmd_name)
        self._loaded[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing_help = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing_help = False


def lazy_group(commands: dict[str, LazyCommand], base: type[LazyGroup] = LazyGroup) -> type:
    """A group class for ``typer.Typer(cls=...)`` with these lazily imported subcommands."""
    return type("LazyGroupOf" + base.__name__, (base,), {"lazy_commands": dict(commands)})
