"""The command palette's list of the console's own actions, built from its key bindings.

Whatever the footer offers on the current screen (its bindings and the app's,
as enabled right now) is also in the palette under its description, with its
key as help, so an action can be found by name and its key learnt there.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ActionsProvider(Provider):
    """Commands for the active bindings of the screen the palette was opened from."""

    def _actions(self) -> Iterator[tuple[str, str, str, object]]:
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or not active.enabled or binding.action in seen:
                continue
            if binding.action in ("command_palette",):
                continue
            seen.add(binding.action)
            shown = binding.key_display or self.app.get_key_display(binding)
            yield binding.description, binding.action, f"key: {shown or key}", active.node

    def _runner(self, action: str, node: object):  # type: ignore[no-untyped-def]
        return partial(self.app.run_action, action, node)  # type: ignore[arg-type]

    async def discover(self) -> Hits:
        for description, action, help_text, node in self._actions():
            yield DiscoveryHit(description, self._runner(action, node), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, action, help_text, node in self._actions():
            score = matcher.match(description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(description),
                    self._runner(action, node),
                    text=description,
                    help=help_text,
                )


__all__ = ["ActionsProvider"]
