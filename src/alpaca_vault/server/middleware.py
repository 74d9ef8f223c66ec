"""MCP middleware, declared in one place: ``build_middleware_stack`` lists it in order.

Each piece reads what it needs of a tool from the registry's table (secret arguments from the
input schemas, argument hints from the rows): no tool knowledge is written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from alpaca_vault.guard.confirm import confirmation_middleware
from alpaca_vault.secret_text import redact_secret_runs
from alpaca_vault.server.redaction import scrub_known
from alpaca_vault.tools.table import MAX_TOOL_NAME_LENGTH, ToolTable
from alpaca_vault.vault.exposure import exposed_values, exposure_scope, register_exposed

_MIN_SECRET_LENGTH = 6  # shorter "secrets" would turn ordinary words into [REDACTED]
# pydantic's error text echoes (a truncated repr of) the rejected input; truncation can cut a
# secret into pieces no exact-match scrubber recognises, so error texts never carry input values.
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=", re.DOTALL)
_PYDANTIC_URL = re.compile(r"\n? *For further information visit https://errors\.pydantic\.dev\S*")


_SDK_VALIDATION = re.compile(
    r"^Error executing tool (?P<tool>\S+): \d+ validation errors? for \S+\n(?P<body>.*)\Z", re.S
)
_ERROR_DETAIL = re.compile(r"\s*\[type=[^\]]*\]\s*$")


def strip_input_values(text: str) -> str:
    """Remove pydantic's echoed inputs, and turn the SDK's argument-validation report into one line."""
    text = _PYDANTIC_URL.sub("", _INPUT_VALUE.sub("input_type=", text))
    match = _SDK_VALIDATION.match(text)
    if match is None:
        return text
    lines = [line for line in match["body"].splitlines() if line.strip()]
    problems = []
    for field, message in zip(lines[::2], lines[1::2], strict=False):
        detail = _ERROR_DETAIL.sub("", message.strip()).removeprefix("Value error, ")  # our checks' own words
        problems.append(f"{field.strip()}: {detail}")
    return f"Invalid arguments for {match['tool']}: " + "; ".join(problems) + "."


def build_middleware_stack(tools: ToolTable) -> list[ServerMiddleware[Any]]:
    """The middleware around every request, outermost first. The order matters:

    1. ``secret_scope``: a fresh exposure scope per ``tools/call``; the tool's secret arguments are
       registered before the SDK validates them (its errors echo inputs); whatever the vault unseals
       joins them; the result, and a protocol error, is scrubbed of them on the way out.
    2. ``argument_guard``: arguments a tool does not define are refused (never silently dropped),
       with the row's hints; inside the scope, so even a refusal is scrubbed.
    3. ``confirmation``: gives the trading guard (deep in the gate) the request it runs in, so it can
       ask the person (form elicitation), and returns a pending question as the call's
       ``InputRequiredResult`` on 2026-07-28; inside the scope, so its questions are scrubbed too.
    """
    return [secret_scope(tools.secret_arguments), argument_guard(tools), confirmation_middleware]


def argument_guard(tools: ToolTable) -> ServerMiddleware[Any]:
    """Refuse ``tools/call`` arguments a tool does not define, instead of silently dropping them.

    A dropped ``stop_loss`` would turn a protected bracket order into a plain one; the agent must
    hear about it, with the row's hint when it used a name borrowed from Alpaca's REST API.
    """

    async def guard(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        params = ctx.params or {}
        arguments = params.get("arguments")
        name = params.get("name")
        if isinstance(name, str) and len(name) > MAX_TOOL_NAME_LENGTH:
            # The SDK's "Unknown tool: <name>" would send the whole name back (a megabyte, if that is sent).
            text = (
                f"Unknown tool: a name of {len(name):,} characters (tool names have at most "
                f"{MAX_TOOL_NAME_LENGTH}). Nothing was done; tools/list names the tools."
            )
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        tool = tools.get(str(name))
        if not isinstance(arguments, dict) or tool is None:
            return await call_next(ctx)
        properties = tool.properties
        unknown = sorted(str(name) for name in arguments if name not in properties)
        if not unknown:
            return await call_next(ctx)
        if tool.secret_arguments & set(unknown):
            # #12: a key pair as arguments where the operator has not allowed it; say why, not just "unknown".
            name = params.get("name")
            text = (
                f"{name} does not take api_key or secret_key on this server: keys typed into a chat end up in the "
                f"model's context and logs. Nothing was done. Call {name} without them; the user then enters the "
                "keys on a one-time page (your client opens it, or the result has entry_url to hand to the user). "
                "Operators of orchestrators that are not language models can set "
                "ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS=true."
            )
            return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)
        hints = [f"{name} -> {tool.spec.hints[name]}" for name in unknown if name in tool.spec.hints]
        text = (
            f"Unknown argument(s) for {params.get('name')}: {', '.join(unknown)}. Nothing was done. "
            + (f"Did you mean: {'; '.join(hints)}? " if hints else "")
            + f"Valid arguments: {', '.join(properties)}."
        )
        return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    return guard


def secret_scope(secret_arguments: Callable[[str], frozenset[str]]) -> ServerMiddleware[Any]:
    """Give every ``tools/call`` its own exposure scope and scrub what it returns.

    Whatever the vault unsealed during the call (and any secret the caller sent as an argument:
    ``secret_arguments(tool)`` names them) is replaced by ``[REDACTED]`` in the result and in a
    protocol error's message. Log records are scrubbed against the same scope as they are created
    (see ``server.logs``).
    """

    async def scope(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call":
            return await call_next(ctx)
        with exposure_scope():
            params = ctx.params or {}
            arguments = params.get("arguments")
            if isinstance(arguments, dict):
                for name in secret_arguments(str(params.get("name"))):
                    value = arguments.get(name)
                    if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
                        register_exposed(value)
            return await _scrubbed(ctx, call_next)

    return scope


async def _scrubbed(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Run the call; scrub the exposure scope's secrets from its result or protocol error."""
    try:
        result = await call_next(ctx)
    except MCPError as exc:
        secrets = frozenset(exposed_values())
        if secrets:
            exc.error.message = redact_secret_runs(exc.error.message, secrets)
            exc.error.data = scrub_known(exc.error.data, secrets)
            exc.args = (exc.error.code, exc.error.message, exc.error.data)
        raise
    secrets = frozenset(exposed_values())
    if result is None:
        return result
    # Handlers return either a result model or its plain-dict form; both are scrubbed alike.
    if isinstance(result, BaseModel):
        is_error = bool(getattr(result, "is_error", False))
    else:
        is_error = bool(result.get("isError"))
    if not is_error:
        # The common case: one serialisation to look for a secret; rebuild only if one is there.
        if not secrets:
            return result
        text = result.model_dump_json(by_alias=True) if isinstance(result, BaseModel) else str(result)
        escapable = any('"' in s or "\\" in s for s in secrets)  # JSON would escape these
        if not escapable and not any(secret in text for secret in secrets):
            return result
    dumped = (
        result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(result, BaseModel)
        else result
    )
    if not isinstance(dumped, dict):
        return result
    if is_error:
        dumped["content"] = [
            # Errors carry third-party text: runs of eight or more characters from an exposed secret
            # go too, not only whole secrets (issue #10, point 5).
            {**block, "text": redact_secret_runs(strip_input_values(block["text"]), secrets)}
            if block.get("type") == "text"
            else block
            for block in dumped.get("content", [])
        ]
    cleaned = scrub_known(dumped, secrets)
    return type(result).model_validate(cleaned) if isinstance(result, BaseModel) else cleaned
