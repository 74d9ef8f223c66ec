"""Imports point down only: the picture of docs/ARCHITECTURE.md, pinned for every pair of rooms.

    server -> {console, tools} -> guard -> {vault, broker};  {guard, vault, accounts} -> audit -> db
    {server, console} -> accounts;  server -> simulator (the CLI runs it)
    broker imports none of vault/audit/db; db never imports vault; simulator imports nothing of ours.

A room may import what its arrows reach, directly or through other rooms; nothing else. Every import
counts, including those only made for type checking.
"""

from __future__ import annotations

import ast
import itertools
from functools import cache
from pathlib import Path

import pytest

import alpaca_vault

SRC = Path(alpaca_vault.__file__).parent
ROOMS = ("server", "console", "tools", "accounts", "guard", "vault", "broker", "audit", "db", "simulator")
ARROWS: dict[str, set[str]] = {
    "server": {"console", "tools", "accounts", "simulator"},
    "console": {"guard", "accounts"},
    "tools": {"guard"},
    "guard": {"vault", "broker", "audit"},
    "vault": {"audit"},
    "accounts": {"audit"},
    "audit": {"db"},
    "broker": set(),
    "db": set(),
    "simulator": set(),
}


def reachable(room: str) -> set[str]:
    seen: set[str] = set()
    todo = list(ARROWS[room])
    while todo:
        nxt = todo.pop()
        if nxt not in seen:
            seen.add(nxt)
            todo.extend(ARROWS[nxt])
    return seen


@cache
def imports_of(room: str) -> dict[str, set[str]]:
    """Room imported -> the modules of ``room`` that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((SRC / room).rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    names = [".".join([*base, node.module] if node.module else base)]
                else:
                    names = [node.module or ""]
            for name in names:
                parts = name.split(".")
                if len(parts) >= 2 and parts[0] == "alpaca_vault" and parts[1] in ROOMS and parts[1] != room:
                    found.setdefault(parts[1], set()).add(module)
    return found


def test_the_picture_holds_its_promises() -> None:
    assert not {"vault", "audit", "db"} & reachable("broker")
    assert "vault" not in reachable("db")
    assert reachable("simulator") == set()
    for room in ROOMS:
        assert room not in reachable(room), f"{room} reaches itself: the picture has a cycle"


def test_every_room_is_in_the_picture() -> None:
    on_disk = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert on_disk <= set(ROOMS), on_disk - set(ROOMS)
    assert imports_of("tools")["guard"]  # the scan sees real imports


@pytest.mark.parametrize(
    ("room", "other"),
    [(a, b) for a, b in itertools.permutations(ROOMS, 2) if b not in reachable(a)],
    ids=lambda value: value,
)
def test_no_import_against_the_arrows(room: str, other: str) -> None:
    if not (SRC / room).is_dir():
        pytest.skip(f"{room}/ does not exist yet")
    offenders = sorted(imports_of(room).get(other, set()))
    assert offenders == [], f"{room} must not import {other}: {offenders}"
