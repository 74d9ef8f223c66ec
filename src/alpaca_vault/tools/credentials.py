"""Credential tools: store, list, validate, update, delete. Metadata in, metadata out; never a secret."""

from __future__ import annotations

import re
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import BaseModel, Field, SecretStr

from alpaca_vault.broker.client import AlpacaKeys
from alpaca_vault.broker.errors import AlpacaAuthError
from alpaca_vault.tools import voice
from alpaca_vault.tools.errors import AccountNotActive, KeyPairRefused
from alpaca_vault.tools.gate import alpaca_call, vault_call
from alpaca_vault.tools.key_entry import CredentialSummary, KeyEntryResult, run_key_entry
from alpaca_vault.tools.params import CredentialName, CredentialRef, Environment, InvalidArgument, KeyArgument
from alpaca_vault.tools.results import Bounded, counted, respond
from alpaca_vault.tools.runtime import runtime
from alpaca_vault.vault.errors import InvalidCredentialInput
from alpaca_vault.vault.exposure import register_exposed
from alpaca_vault.vault.key_ids import check_key_environment


class CredentialResult(BaseModel):
    credential: CredentialSummary
    validated: bool = Field(description="True when Alpaca confirmed the key pair during this call.")


class CredentialList(Bounded):
    credentials: list[CredentialSummary]


class DeletedCredential(BaseModel):
    deleted: CredentialSummary


def _describe(info: CredentialSummary) -> str:
    if info.status == "damaged":
        return (
            f"'{info.name}' [{info.environment}, DAMAGED: its stored keys cannot be opened; "
            f"delete_credential(credential='{info.name}') and store the key pair again]"
        )
    state = "active" if info.is_active else "inactive"
    account = (
        f", account {voice.ident(info.account_number)} ({voice.word(info.account_status, voice.ACCOUNT_STATUSES)})"
        if info.account_number
        else ""
    )
    return f"'{info.name}' [{info.environment}, {state}{account}]"


# What an Alpaca key id or secret can be: printable ASCII without spaces (the vault and the broker
# refuse anything else too; checking here names the argument and keeps a stray character from
# reaching Alpaca's validation as a misleading "401").
_KEY_CHARS = re.compile(r"[\x21-\x7e]{1,256}")


def _clean_key(value: SecretStr, argument: str, outcome: str) -> SecretStr:
    """The key with pasted surrounding whitespace removed; refused (by argument name) if still malformed."""
    plain = value.get_secret_value().strip()
    if not _KEY_CHARS.fullmatch(plain):
        raise InvalidArgument(
            f"{argument} is empty or contains spaces, line breaks or non-ASCII characters, which no Alpaca "
            f"key has. Copy it again exactly as Alpaca shows it. {outcome}"
        )
    if plain != value.get_secret_value():
        register_exposed(plain)  # the scrubber knows the argument as sent; teach it the stripped form too
    return SecretStr(plain)


async def _check_with_alpaca(
    ctx: Context[Any, Any], api_key: SecretStr, secret_key: SecretStr, environment: Environment, budget: str
) -> tuple[str, str]:
    """Ask Alpaca for the account behind a key pair not stored yet; returns (account_number, status).

    ``budget`` names the request budget the check spends: built from ids the server resolved, never from
    a name the caller typed (a name equal to another user's credential id would spend that budget).
    """
    check_key_environment(api_key, environment)
    keys = AlpacaKeys(api_key=api_key, secret_key=secret_key, environment=environment, limiter_key=budget)
    try:
        account = await runtime(ctx).broker.get_account(keys)
    except AlpacaAuthError:
        raise KeyPairRefused(environment) from None
    status = str(account.status)
    if status.upper().removeprefix("ACCOUNTSTATUS.") != "ACTIVE":
        raise AccountNotActive(account.account_number, status)
    return account.account_number, status


# #12: the key arguments exist only for operators who set ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS=true;
# otherwise build_server drops them from the published schema and the argument guard refuses them.
SECRET_ARGUMENTS_SETTING = "ALPACA_VAULT_ALLOW_SECRETS_IN_ARGUMENTS"  # noqa: S105 - a variable name
KEY_ARGUMENTS = ("api_key", "secret_key", "validate")


def _refuse_secret_arguments(ctx: Context[Any, Any], tool: str) -> None:
    """Second wall behind the argument guard: keys as arguments only where the operator allows them."""
    if not runtime(ctx).allow_secrets_in_arguments:
        raise InvalidArgument(
            f"{tool} does not take api_key or secret_key on this server: keys typed into a chat end up in the "
            f"model's context and logs. Nothing was done. Call {tool} without them and the user enters the keys "
            f"on a one-time page. (Operators of non-LLM orchestrators can set {SECRET_ARGUMENTS_SETTING}=true.)"
        )


async def store_credential(
    ctx: Context[Any, Any],
    name: Annotated[
        str, Field(min_length=1, max_length=64, description="A name you will use to refer to it.")
    ],
    environment: Annotated[Environment, Field(description="'paper' or 'live' trading.")] = "paper",
    api_key: Annotated[
        KeyArgument | None,
        Field(description="Alpaca API key id, only where the operator allows keys as arguments."),
    ] = None,
    secret_key: Annotated[
        KeyArgument | None,
        Field(description="Alpaca API secret key, only where the operator allows keys as arguments."),
    ] = None,
    validate: Annotated[
        bool, Field(description="Check keys given as arguments with Alpaca first (account must be ACTIVE).")
    ] = True,
) -> Annotated[CallToolResult, KeyEntryResult] | InputRequiredResult:
    """Add an Alpaca API key pair to the encrypted vault under a name, without the keys entering this chat.

    The user pastes the key id and secret into a one-time page of this server: your client opens it
    (URL elicitation) or you get `entry_url` to hand to the user (status 'pending'; then call
    list_credentials). Alpaca checks the pair first (the account must be ACTIVE; paper keys for paper).
    Never ask the user to type keys into the chat.
    """
    if api_key is None and secret_key is None:
        async with vault_call(ctx) as call:
            # Before a link is made: a name the vault would refuse must not cost the person an entry.
            try:
                name = await call.vault.check_new_name(call.user_id, name)
            except InvalidCredentialInput as exc:
                raise InvalidCredentialInput(f"{exc} No entry link was made.") from None
            return await run_key_entry(ctx, call.user_id, name=name, environment=environment)
    _refuse_secret_arguments(ctx, "store_credential")
    if api_key is None or secret_key is None:
        raise InvalidArgument(
            "Give both api_key and secret_key, or neither (then the user enters them on a page)."
        )
    api_key = _clean_key(api_key, "api_key", "Nothing was stored.")
    secret_key = _clean_key(secret_key, "secret_key", "Nothing was stored.")
    check_key_environment(api_key, environment)
    async with vault_call(ctx) as call:
        account_number = account_status = None
        if validate:
            account_number, account_status = await _check_with_alpaca(
                ctx, api_key, secret_key, environment, f"new-key-pair:{call.user_id}"
            )
        info = call.returned(
            await call.vault.store(
                call.user_id,
                name,
                environment,
                api_key,
                secret_key,
                account_number=account_number,
                account_status=account_status,
                validated=validate,
            )
        )
    summary = CredentialSummary.of(info)
    note = "validated with Alpaca" if validate else "NOT validated (validate=false)"
    return respond(
        KeyEntryResult(status="stored", credential=CredentialSummary.of(info), validated=validate),
        f"Stored credential {_describe(summary)}, {note}. Refer to it as credential='{summary.name}'.",
    )


async def list_credentials(ctx: Context[Any, Any]) -> Annotated[CallToolResult, CredentialList]:
    """List your stored Alpaca credentials: name, environment, account, status. Never keys or secrets."""
    async with vault_call(ctx) as call:
        infos = call.returned(await call.vault.list(call.user_id))
    items = [CredentialSummary.of(i) for i in infos]
    if not items:
        summary = (
            "No credentials stored yet. Call store_credential(name=...) and the user enters the keys on a "
            "one-time page (never in this chat), or they run `alpaca-vault credentials add NAME` on the terminal."
        )
    else:
        summary = f"{counted(len(items), 'credential')}: " + "; ".join(_describe(i) for i in items)
    return respond(CredentialList(credentials=items), summary)


async def validate_credential(
    ctx: Context[Any, Any], credential: CredentialRef = None
) -> Annotated[CallToolResult, CredentialResult]:
    """Check a stored credential with Alpaca now and record the account number and status."""
    async with alpaca_call(ctx, credential) as call:
        account = await call.send(call.broker.get_account)
    await call.vault.record_validation(
        call.user_id,
        call.resolved.id,
        account_number=account.account_number,
        account_status=str(account.status),
    )
    fresh = CredentialSummary.of(await call.vault.get(call.user_id, str(call.resolved.id)))
    summary = f"Alpaca accepted credential {_describe(fresh)}."
    if str(account.status).upper() != "ACTIVE":
        status = voice.word(account.status, voice.ACCOUNT_STATUSES)
        summary += f" Warning: the account is {status}, not ACTIVE, so it cannot trade."
    return respond(CredentialResult(credential=fresh, validated=True), summary)


async def update_credential(
    ctx: Context[Any, Any],
    credential: Annotated[CredentialName, Field(description="Credential name or id to change.")],
    new_name: Annotated[str | None, Field(min_length=1, max_length=64, description="Rename it.")] = None,
    is_active: Annotated[
        bool | None, Field(description="false deactivates it (tools refuse to use it); true re-activates.")
    ] = None,
    replace_keys: Annotated[
        bool,
        Field(
            description="true: the user enters a new key pair on a one-time page (as with store_credential)."
        ),
    ] = False,
    api_key: Annotated[
        KeyArgument | None,
        Field(description="Replacement key id, only where the operator allows keys as arguments."),
    ] = None,
    secret_key: Annotated[
        KeyArgument | None,
        Field(description="Replacement secret, only where the operator allows keys as arguments."),
    ] = None,
    validate: Annotated[bool, Field(description="Check a replacement key pair with Alpaca first.")] = True,
) -> Annotated[CallToolResult, KeyEntryResult] | InputRequiredResult:
    """Rename, activate/deactivate, or replace the key pair of a stored credential.

    replace_keys=true opens a one-time key entry page for the new pair, exactly like store_credential:
    the keys never pass through this chat.
    """
    keys_given = api_key is not None or secret_key is not None
    if keys_given:
        _refuse_secret_arguments(ctx, "update_credential")
    if (api_key is None) != (secret_key is None):
        raise InvalidArgument("Give both api_key and secret_key to replace a key pair, or neither.")
    if replace_keys and keys_given:
        raise InvalidArgument("Use replace_keys=true or api_key and secret_key, not both.")
    if new_name is None and is_active is None and not keys_given and not replace_keys:
        raise InvalidArgument("Nothing to change: give new_name, is_active, or replace_keys=true.")
    if api_key is not None and secret_key is not None:
        api_key = _clean_key(api_key, "api_key", "Nothing was changed.")
        secret_key = _clean_key(secret_key, "secret_key", "Nothing was changed.")
    async with vault_call(ctx, credential=credential) as call:
        current = await call.vault.get(call.user_id, str(call.resolved.id))
        if replace_keys and ctx.request_state is not None:
            # The 2026-07-28 retry: the entry is open already; its link says which credential it replaces.
            return await run_key_entry(ctx, call.user_id, name=current.name, environment=current.environment)
        validated = False
        account_number = account_status = None
        if api_key is not None and secret_key is not None and validate:
            account_number, account_status = await _check_with_alpaca(
                ctx, api_key, secret_key, current.environment, f"new-key-pair:{call.user_id}:{current.id}"
            )
            validated = True
        info = current
        if new_name is not None or is_active is not None or api_key is not None:
            info = call.returned(
                await call.vault.update(
                    call.user_id,
                    str(current.id),
                    name=new_name,
                    is_active=is_active,
                    api_key=api_key,
                    secret_key=secret_key,
                )
            )
        if validated:
            await call.vault.record_validation(
                call.user_id, info.id, account_number=account_number, account_status=account_status
            )
            info = await call.vault.get(call.user_id, str(info.id))
        if replace_keys:
            return await run_key_entry(
                ctx, call.user_id, name=info.name, environment=info.environment, replace=info
            )
    summary = CredentialSummary.of(info)
    return respond(
        KeyEntryResult(status="stored", credential=CredentialSummary.of(info), validated=validated),
        f"Updated {_describe(summary)}.",
    )


async def delete_credential(
    ctx: Context[Any, Any],
    credential: Annotated[CredentialName, Field(description="Credential name or id to delete permanently.")],
) -> Annotated[CallToolResult, DeletedCredential]:
    """Delete a stored credential and its encrypted keys permanently. Orders at Alpaca are not affected."""
    async with vault_call(ctx, credential=credential) as call:
        info = call.returned(await call.vault.delete(call.user_id, str(call.resolved.id)))
    summary = CredentialSummary.of(info)
    return respond(DeletedCredential(deleted=summary), f"Deleted credential {_describe(summary)}.")
