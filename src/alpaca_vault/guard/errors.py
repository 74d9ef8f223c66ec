"""Guard errors: messages safe to show an agent or a terminal, naming the rule and the way forward."""

from __future__ import annotations

from dataclasses import dataclass, field


class GuardError(Exception):
    """Base class; ``str(error)`` is the user-facing message."""


class PolicyInputError(GuardError, ValueError):
    """A policy value is not acceptable (the message says which and what is allowed); nothing changed."""


@dataclass(frozen=True)
class Refusal:
    """One failed check: which rule, its limit, the order's value, and what to do instead."""

    rule: str
    message: str
    limit: str | None = None
    value: str | None = None


class PolicyRefused(GuardError):
    """The credential's trading policy refuses the call; nothing was sent to Alpaca."""

    def __init__(self, refusals: list[Refusal], *, credential: str, environment: str) -> None:
        self.refusals = refusals
        self.credential = credential
        self.environment = environment
        super().__init__(
            f"Refused by the trading policy of '{credential}' ({environment}); nothing was sent to Alpaca. "
            + " ".join(r.message for r in refusals)
        )

    @property
    def rules(self) -> list[str]:
        return [r.rule for r in self.refusals]


@dataclass
class ConfirmationDeclined(GuardError):
    """The person declined (or cancelled) the confirmation; nothing was sent to Alpaca."""

    credential: str
    environment: str
    action: str = "decline"
    detail: str = field(default="")

    def __str__(self) -> str:
        verb = "declined" if self.action == "decline" else "cancelled"
        return (
            f"The user {verb} this order on '{self.credential}' ({self.environment}); nothing was sent to "
            "Alpaca. Do not retry it unless the user asks for it again."
        )
