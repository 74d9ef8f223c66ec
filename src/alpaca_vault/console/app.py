"""The pages: the one-time key entry (``/connect/``) and the web console (``/console/``).

Server-rendered (Starlette + Jinja2, autoescaped), no JavaScript anywhere: every action is a form
post carrying a CSRF token. ``PageGuard`` (security.py) checks Host and Origin and adds the security
headers to every response, errors included.

The pages reach the vault, broker and link store through ``ConsoleServices``, which the server
builds from its runtime (``services`` is awaited per request, so the pages wait for the vault to
open like a tool call does).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jinja2
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from alpaca_vault.broker.client import AlpacaClient
from alpaca_vault.console.keyentry import KeyEntry, KeyEntryDesk
from alpaca_vault.console.links import LinkError, LinkRecord, LinkStore
from alpaca_vault.console.security import (
    SESSION_COOKIE,
    ConsoleSession,
    PageGuard,
    csrf_ok,
    csrf_token,
    issue_session,
    read_session,
)
from alpaca_vault.console.tokens import AGENT_TOKEN_PREFIX, AGENT_TOKEN_REFUSED, TokenRequestError, UserTokens
from alpaca_vault.db.engine import Database
from alpaca_vault.db.models import AUDIT_ACTIONS, User
from alpaca_vault.vault.credentials import CredentialService
from alpaca_vault.vault.errors import VaultError
from alpaca_vault.vault.keyring import KeyRing

_HERE = Path(__file__).parent
_STYLESHEET = (_HERE / "static" / "console.css").read_text()
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
MAX_FORM_BYTES = 8 * 1024  # two keys and a token fit many times over; anything bigger is refused unread

# Explanations for a link that cannot be used, by LinkError.reason: (HTTP status, heading, text).
_LINK_PROBLEMS = {
    "unknown": (
        404,
        "Link not found",
        "This link is not valid. Ask your assistant (or the console) for a new one.",
    ),
    "wrong_purpose": (404, "Link not found", "This link is not valid here."),
    "used": (
        410,
        "Link already used",
        "This link has already been used; each link works once. Ask for a new one.",
    ),
    "expired": (
        410,
        "Link expired",
        "This link has expired. Ask your assistant (or the console) for a new one.",
    ),
    "inactive_user": (403, "Account inactive", "The account this link belongs to is inactive."),
}


@dataclass
class ConsoleServices:
    """What the pages need, built once by the server from its runtime."""

    db: Database
    keyring: KeyRing
    vault: CredentialService
    broker: AlpacaClient
    links: LinkStore
    key_entry: KeyEntry
    desk: KeyEntryDesk
    tokens: UserTokens
    # A console token's (user id, token id), or None; the session it opens ends with the token.
    verify_token: Callable[[str], Awaitable[tuple[uuid.UUID, uuid.UUID] | None]] | None = None
    # The audit trail (#13): the console records what it changes and shows the user's own events.
    audit: Any = None


@dataclass(frozen=True)
class PageConfig:
    allowed_hosts: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    secure_cookies: bool = False
    session_minutes: int = 30
    key_entry_lifetime: timedelta = timedelta(minutes=10)


ServicesProvider = Callable[[], Awaitable[ConsoleServices]]


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("nav", False)
    context.setdefault("static_prefix", "/connect")
    context.setdefault("title", context.get("heading", "Alpaca Vault"))
    return HTMLResponse(_TEMPLATES.get_template(template).render(**context), status_code=status)


def message(status: int, heading: str, text: str, *, ok: bool = False, **context: Any) -> HTMLResponse:
    context.setdefault("next_href", None)
    context.setdefault("next_label", None)
    return render("message.html", status, heading=heading, message=text, ok=ok, **context)


async def read_form(request: Request) -> dict[str, str] | None:
    """A url-encoded form, bounded in size; None when too large or not a form."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in parsed.items() if v}


def stylesheet(_: Request) -> Response:
    return Response(_STYLESHEET, media_type="text/css")


async def _user_name(db: Database, user_id: uuid.UUID) -> str | None:
    """The signed-in user's name; None when the user is gone or inactive (then the session is over, as
    for their tokens)."""
    async with db.session(user_id, readonly=True) as session:
        found = select(User.name).where(User.id == user_id, User.is_active.is_(True))
        return (await session.execute(found)).scalar_one_or_none()


def _link_problem(error: LinkError, static_prefix: str = "/connect") -> HTMLResponse:
    status, heading, text = _LINK_PROBLEMS.get(error.reason, _LINK_PROBLEMS["unknown"])
    return message(status, heading, text, static_prefix=static_prefix)


# --- /connect: the key entry page ---------------------------------------------------------------------


def connect_app(services: ServicesProvider, config: PageConfig) -> ASGIApp:
    """The key entry page, mounted at ``/connect`` (HTTP) or served alone by the stdio listener."""

    async def entry_context(request: Request, s: ConsoleServices, record: LinkRecord) -> Response | None:
        # A browser signed in to the console as someone else must not store keys into this vault.
        session = read_session(s.keyring, request.cookies.get(SESSION_COOKIE))
        if session is not None and session.user_id != record.user_id:
            return message(
                403,
                "Another user's link",
                "This link belongs to another user than the one signed in to the console here. Nothing was "
                "stored. Sign out first, or ask for a link for your own account.",
            )
        return None

    def entry_page(
        record: LinkRecord, secret: str, s: ConsoleServices, error: str | None, status: int
    ) -> Response:
        return render(
            "entry.html",
            status,
            title="Enter your Alpaca keys",
            secret=secret,
            csrf=csrf_token(s.keyring, f"entry:{record.id}"),
            action=record.details.get("action", "store"),
            name=record.details.get("name", record.bound_to),
            environment=record.details.get("environment", "paper"),
            user_name=record.user_name,
            expires=record.expires_at.strftime("%H:%M"),
            error=error,
        )

    async def show(request: Request) -> Response:
        secret = request.path_params["secret"]
        s = await services()
        try:
            record = await s.links.find(secret, "key_entry")
        except LinkError as error:
            return _link_problem(error)
        refused = await entry_context(request, s, record)
        return refused or entry_page(record, secret, s, None, 200)

    async def submit(request: Request) -> Response:
        secret = request.path_params["secret"]
        s = await services()
        try:
            record = await s.links.find(secret, "key_entry")
        except LinkError as error:
            return _link_problem(error)
        refused = await entry_context(request, s, record)
        if refused is not None:
            return refused
        form = await read_form(request)
        if form is None:
            return message(
                400, "Form not accepted", "The form could not be read. Reload the page and try again."
            )
        if not csrf_ok(s.keyring, f"entry:{record.id}", form.get("csrf")):
            return message(
                403,
                "Form expired or forged",
                "The form's security token is missing or wrong. Reload this page from the link and try again. "
                "Nothing was stored.",
            )
        api_key, secret_key = form.get("api_key", ""), form.get("secret_key", "")
        form.clear()
        result = await s.key_entry.submit(record, api_key, secret_key)
        del api_key, secret_key
        if result.ok:
            return message(200, "Keys stored", result.message, ok=True)
        if result.can_retry:
            return entry_page(record, secret, s, result.message, 422)
        return message(422, "Keys not stored", result.message)

    from alpaca_vault.console.approval import approval_routes

    routes = [
        Route("/static/console.css", stylesheet),
        *approval_routes(services),  # #14: order approval pages, beside the key entry (stdio's listener too)
        Route("/{secret}", show, methods=["GET"]),
        Route("/{secret}", submit, methods=["POST"]),
    ]
    return PageGuard(
        Starlette(routes=routes), allowed_hosts=config.allowed_hosts, allowed_origins=config.allowed_origins
    )


# --- /console: sign-in, credentials, tokens -----------------------------------------------------------


def console_app(services: ServicesProvider, config: PageConfig) -> ASGIApp:
    """The console, mounted at ``/console`` on the HTTP server."""

    def base(session: ConsoleSession, s: ConsoleServices, user_name: str, active: str) -> dict[str, Any]:
        return {
            "nav": True,
            "static_prefix": "/console",
            "csrf": csrf_token(s.keyring, f"console:{session.session_id}"),
            "user_name": user_name,
            "active": active,
        }

    async def signed_in(request: Request) -> tuple[ConsoleServices, ConsoleSession, str] | Response:
        s = await services()
        session = read_session(s.keyring, request.cookies.get(SESSION_COOKIE))
        if session is not None and await s.links.session_ended(session.user_id, session.session_id):
            session = None  # signed out: a copy of the cookie is worth nothing
        if (
            session is not None
            and session.token_id is not None
            and not await s.tokens.still_valid(session.user_id, session.token_id)
        ):
            session = None  # its token was revoked or has expired: so has the session
        name = await _user_name(s.db, session.user_id) if session else None
        if session is None or name is None:
            if request.method == "GET":
                return RedirectResponse("/console/sign-in", status_code=303)
            return message(
                401, "Signed out", "Your console session has ended. Sign in again.", static_prefix="/console"
            )
        return s, session, name

    async def checked_post(
        request: Request,
    ) -> tuple[ConsoleServices, ConsoleSession, str, dict[str, str]] | Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        form = await read_form(request)
        if form is None or not csrf_ok(s.keyring, f"console:{session.session_id}", form.get("csrf")):
            return message(
                403,
                "Form expired or forged",
                "The form's security token is missing or wrong. Reload the page and try again.",
                static_prefix="/console",
            )
        return s, session, name, form

    def set_session(
        response: Response, s: ConsoleServices, user_id: uuid.UUID, token_id: uuid.UUID | None = None
    ) -> Response:
        cookie, _ = issue_session(s.keyring, user_id, config.session_minutes, token_id)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=config.session_minutes * 60,
            path="/",
            httponly=True,
            secure=config.secure_cookies,
            samesite="strict",
        )
        return response

    # sign-in

    async def sign_in_form(request: Request, error: str | None = None, status: int = 200) -> Response:
        s = await services()
        return render(
            "sign_in.html",
            status,
            title="Sign in",
            static_prefix="/console",
            csrf=csrf_token(s.keyring, "sign-in"),
            link_secret=None,
            user_name=None,
            error=error,
        )

    async def sign_in_with_token(request: Request) -> Response:
        s = await services()
        form = await read_form(request)
        if form is None or not csrf_ok(s.keyring, "sign-in", form.get("csrf")):
            return await sign_in_form(
                request, "The form's security token is missing or wrong; try again.", 403
            )
        token = form.pop("token", "").strip()
        # An agent's token never opens the console: the agent may hold it (its MCP client's configuration),
        # and a console session could loosen the agent's own policy, resume a halted credential or mint
        # tokens. Said from the prefix the person typed, before any lookup.
        agents = token.startswith(AGENT_TOKEN_PREFIX)
        found = await s.verify_token(token) if s.verify_token and token and not agents else None
        del token
        if agents:
            return await sign_in_form(request, AGENT_TOKEN_REFUSED, 401)
        if found is None:
            return await sign_in_form(request, "That token is not valid (unknown, revoked or expired).", 401)
        user_id, token_id = found
        return set_session(RedirectResponse("/console/", status_code=303), s, user_id, token_id)

    async def sign_in_link(request: Request) -> Response:
        secret = request.path_params["secret"]
        s = await services()
        try:
            record = await s.links.find(secret, "console_sign_in")
        except LinkError as error:
            return _link_problem(error, "/console")
        if request.method == "GET":
            # A confirmation button, not an automatic sign-in: link previewers must not use the link up.
            return render(
                "sign_in.html",
                title="Sign in",
                static_prefix="/console",
                csrf=csrf_token(s.keyring, f"sign-in:{record.id}"),
                link_secret=secret,
                user_name=record.user_name,
                error=None,
            )
        form = await read_form(request)
        if form is None or not csrf_ok(s.keyring, f"sign-in:{record.id}", form.get("csrf")):
            return message(
                403, "Form expired or forged", "Reload the link and try again.", static_prefix="/console"
            )
        if not await s.links.consume(record, "signed_in"):
            return _link_problem(LinkError("used"), "/console")
        return set_session(RedirectResponse("/console/", status_code=303), s, record.user_id)

    async def sign_out(request: Request) -> Response:
        state = await checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, _ = state
        await s.links.end_session(
            session.user_id, session.session_id, datetime.fromtimestamp(session.expires_at, UTC)
        )
        response = RedirectResponse("/console/sign-in", status_code=303)
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, secure=config.secure_cookies, samesite="strict"
        )
        return response

    # credentials

    async def credentials(request: Request, notice: str | None = None) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        rows = await s.vault.list(session.user_id)
        return render(
            "credentials.html",
            title="Credentials",
            credentials=rows,
            notice=notice,
            **base(session, s, name, "credentials"),
        )

    async def add_credential(request: Request) -> Response:
        state = await checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, form = state
        name = form.get("name", "").strip()
        environment = form.get("environment", "")
        if environment not in ("paper", "live"):
            return message(422, "Not added", "Choose paper or live.", static_prefix="/console")
        try:  # said now, before the key entry page: the vault would refuse the name after the keys
            name = await s.vault.check_new_name(session.user_id, name)
        except VaultError as exc:
            return message(422, "Not added", str(exc), static_prefix="/console")
        ticket = await s.desk.open_entry(session.user_id, name=name, environment=environment)
        # The entry link is this user's own, minted for this browser: go straight to it.
        return RedirectResponse(_path_of(ticket.url), status_code=303)

    async def credential_action(request: Request) -> Response:
        state = await checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, _form = state
        action = request.path_params["action"]
        if action not in _CREDENTIAL_ACTIONS:
            return message(404, "Not found", "No such action.", static_prefix="/console")
        try:
            credential_id = uuid.UUID(request.path_params["credential_id"])
            info = await s.vault.get(session.user_id, str(credential_id))
        except (ValueError, VaultError):
            # Unknown and another user's ids look the same: nothing to probe.
            return message(404, "Not found", "No such credential.", static_prefix="/console")
        if action != "replace" and not await _audited(
            s,
            session.user_id,
            "credential.delete" if action == "delete" else "credential.update",
            credential_id=info.id,
            credential_name=info.name,
            details={"changes": action},
        ):
            return _audit_refusal()
        if action == "replace":
            ticket = await s.desk.open_entry(
                session.user_id, name=info.name, environment=info.environment, replace=info
            )
            return RedirectResponse(_path_of(ticket.url), status_code=303)
        if action == "delete":
            await s.vault.delete(session.user_id, str(info.id))
            notice = f"Deleted credential '{info.name}'."
        else:
            await s.vault.update(session.user_id, str(info.id), is_active=action == "activate")
            notice = f"Credential '{info.name}' is now {'active' if action == 'activate' else 'inactive'}."
        return await _after(request, notice)

    async def _after(request: Request, notice: str) -> Response:
        # Render the list with a notice (POST -> page; a reload asks the browser to re-post, harmlessly refused).
        request.scope["method"] = "GET"
        return await credentials(request, notice)

    # tokens

    async def tokens_page(
        request: Request, new: tuple[str, str] | None = None, notice: str | None = None, status: int = 200
    ) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        rows = await s.tokens.list(session.user_id)
        return render(
            "tokens.html",
            status,
            title="API tokens",
            tokens=rows,
            new_token=new[1] if new else None,
            new_token_name=new[0] if new else None,
            notice=notice,
            **base(session, s, name, "tokens"),
        )

    async def create_token(request: Request) -> Response:
        state = await checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, form = state
        if not await _audited(
            s, session.user_id, "token.create", details={"token_name": form.get("name", "")[:64]}
        ):
            return _audit_refusal()
        try:
            days = int(form.get("expires_in", "90"))
            row, token = await s.tokens.create(session.user_id, form.get("name", ""), days)
        except (ValueError, TokenRequestError) as exc:
            return await tokens_page(
                request,
                notice=str(exc) if isinstance(exc, TokenRequestError) else "Expiry must be a number of days.",
                status=422,
            )
        return await tokens_page(request, new=(row.name, token))

    async def revoke_token(request: Request) -> Response:
        state = await checked_post(request)
        if isinstance(state, Response):
            return state
        s, session, _, _form = state
        try:
            token_id = uuid.UUID(request.path_params["token_id"])
        except ValueError:
            token_id = None
        owned = token_id is not None and any(t.id == token_id for t in await s.tokens.list(session.user_id))
        if owned and not await _audited(
            s, session.user_id, "token.revoke", details={"token_id": str(token_id)}
        ):
            return _audit_refusal()
        row = await s.tokens.revoke(session.user_id, token_id) if token_id else None
        if row is None:
            return message(404, "Not found", "No such token.", static_prefix="/console")
        return await tokens_page(request, notice=f"Revoked token '{row.name}' ({row.prefix}…).")

    # the audit trail (#13): the user's own events, newest first, with filters

    async def audit_page(request: Request) -> Response:
        state = await signed_in(request)
        if isinstance(state, Response):
            return state
        s, session, name = state
        if s.audit is None:
            return render(
                "placeholder.html",
                title="Audit trail",
                heading="Audit trail",
                message="The audit trail is not available on this server.",
                **base(session, s, name, "audit"),
            )
        query = request.query_params
        credential = query.get("credential", "").strip()[:64] or None
        action = query.get("action", "").strip()[:64] or None
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            limit = 50
        limit = limit if limit in (25, 50, 100, 200) else 50
        events = await s.audit.events(session.user_id, credential=credential, action=action, limit=limit)
        names = [c.name for c in await s.vault.list(session.user_id)]
        return render(
            "audit.html",
            title="Audit trail",
            events=events,
            credential_names=names,
            actions=AUDIT_ACTIONS,
            filters={"credential": credential, "action": action, "limit": limit},
            **base(session, s, name, "audit"),
        )

    routes = [
        Route("/static/console.css", stylesheet),
        Route("/", credentials, methods=["GET"]),
        Route("/sign-in", sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in_with_token, methods=["POST"]),
        Route("/sign-in/{secret}", sign_in_link, methods=["GET", "POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/credentials/add", add_credential, methods=["POST"]),
        Route("/credentials/{credential_id}/{action:str}", credential_action, methods=["POST"]),
        Route("/tokens", tokens_page, methods=["GET"]),
        Route("/tokens/create", create_token, methods=["POST"]),
        Route("/tokens/{token_id}/revoke", revoke_token, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]
    from alpaca_vault.console.policies import PageKit, policy_routes

    routes += policy_routes(PageKit(signed_in, checked_post, base))
    app = Starlette(routes=routes)
    return PageGuard(app, allowed_hosts=config.allowed_hosts, allowed_origins=config.allowed_origins)


_CREDENTIAL_ACTIONS = frozenset({"replace", "deactivate", "activate", "delete"})


async def _audited(s: ConsoleServices, user_id: uuid.UUID, action: str, **fields: Any) -> bool:
    """Record a console change before it happens; False (change refused) when the record cannot be written."""
    if s.audit is None:
        return True
    from alpaca_vault.audit.chain import CONSOLE

    try:
        await s.audit.append(user_id, action, CONSOLE, **fields)
    except Exception:  # AuditUnavailable, or anything else: fail closed
        return False
    return True


def _audit_refusal() -> HTMLResponse:
    return message(
        503,
        "Not changed",
        "The audit trail cannot be written right now, so nothing was changed. Try again shortly.",
        static_prefix="/console",
    )


def _path_of(url: str) -> str:
    """The path of an entry URL (same origin as the console, so a relative redirect)."""
    return "/connect/" + url.rsplit("/connect/", 1)[1]
