"""One voice: the table in tools/errors.py gives every error we raise on purpose its text; anything
else is a bug, logged as one, never dressed as advice; lower rooms never name an MCP tool."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

import alpaca_vault
from alpaca_vault.broker import errors as broker_errors
from alpaca_vault.tools.errors import ERROR_TEXTS, agent_text, as_tool_error
from alpaca_vault.tools.params import InvalidArgument
from alpaca_vault.tools.registry import TOOLS
from alpaca_vault.vault import errors as vault_errors

SRC = Path(alpaca_vault.__file__).parent


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | _subclasses(sub)
    return found


def test_every_broker_error_class_has_its_own_row() -> None:
    classes = {
        c for c in _subclasses(broker_errors.AlpacaError) if c.__module__.startswith("alpaca_vault.broker")
    }
    public = {c for c in classes if not c.__name__.startswith("_")}
    assert public  # the walk found the broker's classes
    missing = sorted(c.__name__ for c in public | {broker_errors.AlpacaError} if c not in ERROR_TEXTS)
    assert missing == []
    assert broker_errors.InvalidRequestError in ERROR_TEXTS


def test_vault_errors_read_with_the_next_step() -> None:
    error = vault_errors.CredentialNotFound(
        "Credential 'x' not found. Available: a, b.", available=["a", "b"]
    )
    assert agent_text(error) == "Credential 'x' not found. Available: a, b. list_credentials shows them all."
    inactive = vault_errors.CredentialInactive("Credential 'a' is deactivated.")
    assert agent_text(inactive) == "Credential 'a' is deactivated. Activate it with update_credential first."
    # A subclass without a row of its own reads as its parent (looked up along the MRO).
    assert agent_text(vault_errors.KeyRingError("No master key.")) == "No master key."


class _Order(BaseModel):
    qty: int


@pytest.mark.parametrize(
    "error",
    [ValueError("fell over at index 3"), KeyError("symbol"), TypeError("NoneType"), AttributeError("x")],
    ids=["ValueError", "KeyError", "TypeError", "AttributeError"],
)
def test_a_programming_bug_is_not_advice(error: Exception, caplog: pytest.LogCaptureFixture) -> None:
    assert agent_text(error) is None
    with caplog.at_level("ERROR", logger="alpaca_vault.tools"):
        text = str(as_tool_error(error, None))
    assert text.startswith("alpaca-vault hit an internal error")
    assert str(error) not in text
    assert caplog.records and caplog.records[-1].exc_text  # logged, with its traceback


def test_errors_raised_on_purpose_keep_their_text() -> None:
    assert (
        agent_text(InvalidArgument("Give qty or percentage, not both."))
        == "Give qty or percentage, not both."
    )
    assert agent_text(broker_errors.InvalidRequestError("bad timeframe")) == "bad timeframe"
    with pytest.raises(ValidationError) as caught:
        _Order(qty="many")  # type: ignore[arg-type]
    assert agent_text(caught.value) == (
        "Invalid arguments: qty: Input should be a valid integer, unable to parse string as an integer"
    )


def _strings(path: Path) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.mark.parametrize("room", ["vault"])
def test_lower_rooms_never_name_an_mcp_tool(room: str) -> None:
    tools = {spec.name for spec in TOOLS}
    named = [
        (str(path.relative_to(SRC)), tool)
        for path in sorted((SRC / room).rglob("*.py"))
        for text in _strings(path)
        for tool in tools
        if tool in text
    ]
    assert named == []
