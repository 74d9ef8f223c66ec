"""What a server serves, tool by tool: the registry's rows as registered, for the middleware stack.

A module of its own, apart from tools/registry.py, so that the server can hold a table before it
imports the tool modules (a stdio server registers its tools after its first tools/list).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alpaca_vault.tools.registry import ToolSpec

# The longest name a registry row may have (tools/registry.py checks it); a longer one names no tool.
MAX_TOOL_NAME_LENGTH = 64


@dataclass(frozen=True)
class RegisteredTool:
    """A row as served: its spec plus what its input schema says (the middleware stack reads these)."""

    spec: ToolSpec
    properties: Mapping[str, Any]
    secret_arguments: frozenset[str]


class ToolTable(Mapping[str, RegisteredTool]):
    """The tools a server serves, by name."""

    def __init__(self, tools: Mapping[str, RegisteredTool]) -> None:
        self._tools = dict(tools)

    def __getitem__(self, name: str) -> RegisteredTool:
        return self._tools[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def fill(self, other: ToolTable) -> None:
        """Take ``other``'s tools: a server that registers its tools late fills the table it handed out."""
        self._tools.update(other._tools)

    def secret_arguments(self, name: str) -> frozenset[str]:
        tool = self._tools.get(name)
        return tool.secret_arguments if tool is not None else frozenset()
