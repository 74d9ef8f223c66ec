"""MCP middleware: a per-call secret scope and the last-line result scrubber."""

from __future__ import annotations

import re
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from alpaca_vault.server.redaction import scrub_known
from alpaca_vault.vault.exposure import exposed_values, exposure_scope, register_exposed

# Tool arguments that carry secrets. They are registered before the SDK even
# validates the arguments, because a validation error echoes the input values.
SECRET_ARGUMENT_NAMES = frozenset({"api_key", "secret_key"})
_MIN_SECRET_LENGTH = 6  # shorter "secrets" would turn ordinary words into [REDACTED]
# pydantic's error text echoes (a truncated repr of) the rejected input; truncation can cut a
# secret into pieces no exact-match scrubber recognises, so error texts never carry input values.
_INPUT_VALUE = re.compile(r"input_value=.*?, input_type=", re.DOTALL)
_PYDANTIC_URL = re.compile(r"\n? *For further information visit https://errors\.pydantic\.dev\S*")


def strip_input_values(text: str) -> str:
    return _PYDANTIC_URL.sub("", _INPUT_VALUE.sub("input_type=", text))


async def secret_scope_middleware(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Give every ``tools/call`` its own exposure scope and scrub what it returns.

    Whatever the vault unsealed during the call (and any secret the caller
    sent as an argument) is replaced by ``[REDACTED]`` in the result and in
    a protocol error's message. Log records are scrubbed against the same
    scope as they are created (see ``server.logs``).
    """
    if ctx.method != "tools/call":
        return await call_next(ctx)
    with exposure_scope():
        arguments = (ctx.params or {}).get("arguments")
        if isinstance(arguments, dict):
            for name in SECRET_ARGUMENT_NAMES:
                value = arguments.get(name)
                if isinstance(value, str) and len(value) >= _MIN_SECRET_LENGTH:
                    register_exposed(value)
        try:
            result = await call_next(ctx)
        except MCPError as exc:
            secrets = frozenset(exposed_values())
            if secrets:
                exc.error.message = scrub_known(exc.error.message, secrets)
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
                {**block, "text": strip_input_values(block["text"])} if block.get("type") == "text" else block
                for block in dumped.get("content", [])
            ]
        cleaned = scrub_known(dumped, secrets)
        return type(result).model_validate(cleaned) if isinstance(result, BaseModel) else cleaned
