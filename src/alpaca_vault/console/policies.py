"""The console's trading policy pages (#14): view and edit each credential's policy, halt and resume.

The rules and the error texts are the CLI's (``guard.policy_input.parse_changes``, then
``PolicyStore.update``, which validates the whole policy before anything is written): a bad value
changes nothing and the page says why in the words ``alpaca-vault policy set`` uses. Every change
is a ``policy.change`` audit event written in the same transaction (actor ``console``), so a change
whose record cannot be written does not happen. A credential id that is unknown and one of another
user look the same (404), so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from alpaca_vault.audit.log import AuditUnavailable
from alpaca_vault.console.app import ConsoleServices, message, render
from alpaca_vault.console.security import ConsoleSession
from alpaca_vault.guard.errors import PolicyInputError
from alpaca_vault.guard.policy import SETTING_FIELDS, Policy, apply_changes
from alpaca_vault.guard.policy_input import FLAG_FIELDS, TEXT_OPTIONS, describe, parse_changes, show_text
from alpaca_vault.guard.store import PolicyStore
from alpaca_vault.vault.errors import VaultError

SignedIn = Callable[[Request], Awaitable["tuple[ConsoleServices, ConsoleSession, str] | Response"]]
CheckedPost = Callable[
    [Request], Awaitable["tuple[ConsoleServices, ConsoleSession, str, dict[str, str]] | Response"]
]
Base = Callable[[ConsoleSession, ConsoleServices, str, str], dict[str, Any]]

# The form's fields, in the order of `alpaca-vault policy set --help`: (field, label, hint).
FORM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("max_order_notional", "Max order notional", "USD, or none"),
    ("max_daily_notional", "Max daily notional", "USD per New York day, or none"),
    ("max_orders_per_day", "Max orders per day", "a number, or none"),
    ("max_orders_per_minute", "Max orders per minute", "a number, or none"),
    ("symbols", "Symbols", "comma-separated (AAPL,MSFT,BTC/USD), or any"),
    ("deny_symbols", "Deny symbols", "comma-separated, or none"),
    ("asset_classes", "Asset classes", "us_equity, crypto, us_option (comma-separated)"),
    ("order_types", "Order types", "market, limit, stop, stop_limit, trailing_stop"),
    ("confirm_above_notional", "Confirm above notional", "USD: a person confirms larger orders; or none"),
    ("duplicate_window_seconds", "Duplicate window", "seconds, 0 turns it off"),
)
FLAG_LABELS = {
    "allow_short": "Allow short (sells larger than the position)",
    "allow_extended_hours": "Allow extended-hours orders",
    "confirm_live": "A person confirms every change on a live credential",
}
MAX_FIELD_CHARS = 2000  # a symbol list of a few hundred names fits; the form is bounded anyway


@dataclass(frozen=True)
class PageKit:
    """What every console page shares (console_app's own helpers)."""

    signed_in: SignedIn
    checked_post: CheckedPost
    base: Base


def _not_found() -> Response:
    return message(404, "Not found", "No such credential.", static_prefix="/console")


async def _policy_of(s: ConsoleServices, session: ConsoleSession, request: Request) -> Policy | None:
    """The policy behind the path's credential id, or None (malformed, unknown, or another user's)."""
    try:
        credential_id = uuid.UUID(request.path_params["credential_id"])
        return await PolicyStore(s.db).show(session.user_id, str(credential_id))
    except (ValueError, VaultError):
        return None


def policy_routes(kit: PageKit) -> list[Route]:
    async def overview(request: Request, notice: str | None = None) -> Response:
        state = await kit.signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        policies = await PolicyStore(s.db).show_all(session.user_id)
        return render(
            "policies.html",
            title="Trading policy",
            policies=[(p, describe(p)) for p in policies],
            notice=notice,
            **kit.base(session, s, name, "policies"),
        )

    async def edit_form(
        request: Request,
        error: str | None = None,
        values: dict[str, str] | None = None,
        flags: dict[str, bool] | None = None,
        status: int = 200,
        notice: str | None = None,
    ) -> Response:
        state = await kit.signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        policy = await _policy_of(s, session, request)
        if policy is None:
            return _not_found()
        return render(
            "policy_edit.html",
            status,
            title=f"Trading policy of {policy.credential}",
            policy=policy,
            lines=describe(policy),
            fields=FORM_FIELDS,
            options=TEXT_OPTIONS,
            values=values or show_text(policy),
            flag_labels=FLAG_LABELS,
            flags=flags or {f: bool(getattr(policy, f)) for f in FLAG_FIELDS},
            error=error,
            notice=notice,
            **kit.base(session, s, name, "policies"),
        )

    async def save(request: Request) -> Response:
        state = await kit.checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, form = state
        policy = await _policy_of(s, session, request)
        if policy is None:
            return _not_found()
        texts = {f: form.get(f, "")[:MAX_FIELD_CHARS] for f in TEXT_OPTIONS}
        flags = {f: form.get(f) == "on" for f in FLAG_FIELDS}
        try:
            wanted = apply_changes(policy.settings, parse_changes(texts, flags))
        except PolicyInputError as exc:
            request.scope["method"] = "GET"
            return await edit_form(request, str(exc), texts, flags, 422)
        # Only what differs is a change (and named in the audit event); the rest is the form echoing it.
        changes = {f: getattr(wanted, f) for f in SETTING_FIELDS if getattr(wanted, f) != getattr(policy, f)}
        request.scope["method"] = "GET"
        if not changes:
            return await edit_form(request, notice="Nothing changed: the form matched the policy in force.")
        try:
            await PolicyStore(s.db).update(
                session.user_id, str(policy.credential_id), changes, audit=s.audit, actor=_console_actor()
            )
        except PolicyInputError as exc:
            return await edit_form(request, str(exc), texts, flags, 422)
        except VaultError:  # deleted meanwhile
            return _not_found()
        except AuditUnavailable:  # the record shares the change's transaction: both rolled back
            return _audit_refused()
        return await overview(
            request, f"Updated the trading policy of '{policy.credential}': {', '.join(sorted(changes))}."
        )

    def switch(halted: bool) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            state = await kit.checked_post(request)
            if isinstance(state, Response):
                return state
            s, session, _, _form = state
            policy = await _policy_of(s, session, request)
            if policy is None:
                return _not_found()
            try:
                await PolicyStore(s.db).set_halted(
                    session.user_id, str(policy.credential_id), halted, audit=s.audit, actor=_console_actor()
                )
            except VaultError:
                return _not_found()
            except AuditUnavailable:
                return _audit_refused()
            request.scope["method"] = "GET"
            if halted:
                notice = (
                    f"Halted '{policy.credential}' ({policy.environment}): new orders and replaces are refused "
                    "from the next call on every server; cancels and closes still work."
                )
            else:
                notice = f"Resumed '{policy.credential}' ({policy.environment}): its policy applies again."
            return await overview(request, notice)

        return handler

    return [
        Route("/policies", overview, methods=["GET"]),
        Route("/policies/{credential_id}", edit_form, methods=["GET"]),
        Route("/policies/{credential_id}", save, methods=["POST"]),
        Route("/policies/{credential_id}/halt", switch(True), methods=["POST"]),
        Route("/policies/{credential_id}/resume", switch(False), methods=["POST"]),
    ]


def _console_actor() -> Any:
    from alpaca_vault.audit.chain import CONSOLE

    return CONSOLE


def _audit_refused() -> Response:
    return message(
        503,
        "Not changed",
        "The audit trail cannot be written right now, so nothing was changed. Try again shortly.",
        static_prefix="/console",
    )
