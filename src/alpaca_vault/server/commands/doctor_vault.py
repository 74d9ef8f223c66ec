"""`alpaca-vault doctor`'s checks of what the vault holds: sealed values and the key ids they name,
the per-user data keys, credentials (damaged, expiring, never validated) and API tokens.

Read-only like every doctor check: nothing is decrypted (a sealed value's key id is in its clear header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alpaca_vault.server.commands.doctor import EXPIRY_WARNING_DAYS, Report, _count

if TYPE_CHECKING:
    from alpaca_vault.db import Database
    from alpaca_vault.server.settings import Settings
    from alpaca_vault.vault import KeyRing


async def check_sealed_values(
    report: Report, db: Database, keyring: KeyRing | None, settings: Settings, cmd: str
) -> None:
    """Which master keys the stored values need, from the clear headers: nothing is decrypted.

    Master keys wrap each user's data key (data_keys.sealed_key, ``v1.<kid>``); values still in the
    old form (no data key) are sealed under a master key directly (``v1.<kid>``); values under a data
    key (``v2.<data key id>``) need whichever master key wraps that data key.
    """
    from sqlalchemy import select

    from alpaca_vault.db import Credential, DataKey, User
    from alpaca_vault.db.rls import maintenance_session

    try:
        async with maintenance_session(db) as session:
            wrapped = (
                await session.execute(
                    select(DataKey.user_id, DataKey.sealed_key).where(DataKey.sealed_key.is_not(None))
                )
            ).all()
            old_form = (
                await session.execute(
                    select(
                        Credential.user_id, Credential.name, Credential.api_key, Credential.secret_key
                    ).where(Credential.data_key_id.is_(None))
                )
            ).all()
            count = len((await session.execute(select(Credential.id))).all())
            user_names = dict((await session.execute(select(User.id, User.name))).all())
    except Exception as exc:
        report.add(
            "sealed values",
            "warn",
            f"cannot read across users: {(str(exc).splitlines() or [type(exc).__name__])[0][:200]}",
            "run doctor with the database URL of the tables' owner",
        )
        return
    needed: dict[str, int] = {}  # master kid -> how many sealed items need it
    holders: dict[str, list[str]] = {}  # master kid -> which rows need it (named for the operator)
    damaged = 0  # not sealed values at all (#10 item 8): no key opens them, so none is needed for them

    def need(kid: str, holder: str) -> None:
        needed[kid] = needed.get(kid, 0) + 1
        if holder not in holders.setdefault(kid, []):
            holders[kid].append(holder)

    for user_id, value in wrapped:
        if value is not None and value.damaged:
            damaged += 1
        elif value is not None:
            need(value.kid, f"the data key of user '{user_names.get(user_id, user_id)}'")
    for user_id, name, *values in old_form:
        for value in values:
            if value.damaged:
                damaged += 1
            elif not value.under_data_key:
                need(value.kid, f"credential '{name}' of user '{user_names.get(user_id, user_id)}'")

    def needed_by(kids: list[str]) -> str:
        rows = [holder for kid in kids for holder in holders.get(kid, [])]
        shown = ", ".join(rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
        return f" (needed by {shown})" if shown else ""

    if damaged:
        report.add(
            "damaged values",
            "warn",
            f"{damaged} stored value(s) are not sealed values at all (truncated or overwritten): no key opens "
            "them; `keys rotate` skips and names them",
            f"{cmd} keys rotate (it names each damaged row and the commands that replace it)",
            damaged=damaged,
        )
    if keyring is None:
        if needed:
            report.add(
                "sealed values",
                "fail",
                f"{_count(count, 'credential')} stored, but the master key that protects them is missing "
                f"({settings.data_dir / 'master.key'} is gone): none of them can be opened",
                "restore master.key from your backup into the data dir (mode 600), or set "
                "ALPACA_VAULT_ENCRYPTION_KEYS to the keys that sealed them; do not start the server "
                "before that (it would make a new, different key)",
                kids=sorted(needed),
            )
        else:
            report.add("sealed values", "ok", "nothing sealed yet")
        return
    unknown = sorted(kid for kid in needed if kid not in keyring.kids)
    older = sorted(kid for kid in needed if kid in keyring.kids and kid != keyring.primary_kid)
    if unknown:
        report.add(
            "sealed values",
            "fail",
            f"{sum(needed[k] for k in unknown)} sealed item(s) need master key {', '.join(unknown)}, which the "
            f"key ring does not have{needed_by(unknown)}: the credentials behind them cannot be opened",
            "add the missing key to ALPACA_VAULT_ENCRYPTION_KEYS (or master.key), after the primary",
            kids=unknown,
        )
    elif older:
        report.add(
            "sealed values",
            "warn",
            f"{sum(needed[k] for k in older)} sealed item(s) still under older master key {', '.join(older)}"
            f"{needed_by(older)}: keep it in the ring until they are rotated",
            f"{cmd} keys rotate",
            kids=older,
        )
    else:
        report.add(
            "sealed values",
            "ok",
            f"{_count(count, 'credential')}; every master-key seal is under the primary {keyring.primary_kid}",
        )
    await check_envelope(report, db, cmd)


async def check_envelope(report: Report, db: Database, cmd: str) -> None:
    """Values sealed in the old form (master key directly, no per-user data key): #16's report."""
    from alpaca_vault.vault.rotation import old_form_report

    old = await old_form_report(db)
    if old.credentials:
        report.add(
            "envelope",
            "warn",
            f"{_count(old.credentials, 'credential')} of {_count(old.users, 'user')} still sealed in the old "
            "form (directly under the master key, without a per-user data key; cannot be crypto-shredded)",
            f"{cmd} keys rotate",
            credentials=old.credentials,
            users=old.users,
        )


async def check_credentials(report: Report, db: Database, cmd: str) -> None:
    from sqlalchemy import select

    from alpaca_vault.db import Credential, User
    from alpaca_vault.db.rls import maintenance_session

    try:
        async with maintenance_session(db) as session:
            rows = (
                await session.execute(
                    select(User.name, Credential)
                    .join(User, User.id == Credential.user_id)
                    .order_by(User.name, Credential.name)
                )
            ).all()
    except Exception:
        return  # reported by the sealed-values check
    if not rows:
        report.add(
            "credentials",
            "info",
            "none stored",
            f"{cmd} credentials add NAME --environment paper",
            credentials=[],
        )
        return
    listed = []
    for user, c in rows:
        entry = {
            "user": user,
            "name": c.name,
            "environment": c.environment,
            "active": c.is_active,
            "account_status": c.account_status,
            "last_validated_at": c.last_validated_at.isoformat() if c.last_validated_at else None,
            "last_used_at": c.last_used_at.isoformat() if c.last_used_at else None,
        }
        listed.append(entry)
        who = f"--user {user} " if user != "local" else ""
        label = f"{user}/{c.name} ({c.environment}{'' if c.is_active else ', inactive'})"
        when = f"validated {_when(c.last_validated_at)}, last used {_when(c.last_used_at)}"
        if c.is_active and c.last_validated_at is None:
            report.add(
                "credential",
                "warn",
                f"{label}: never validated with Alpaca; last used {_when(c.last_used_at)}",
                f"{cmd} credentials validate {who}{c.name}",
                **entry,
            )
        elif c.is_active and c.account_status and c.account_status.upper() != "ACTIVE":
            report.add(
                "credential",
                "warn",
                f"{label}: account was {c.account_status} when {when}",
                f"{cmd} credentials validate {who}{c.name}",
                **entry,
            )
        else:
            report.add("credential", "ok", f"{label}: {when}", **entry)


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


async def check_tokens(report: Report, db: Database, cmd: str) -> None:
    from datetime import timedelta

    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.accounts.tokens import CONSOLE_TOKEN_PREFIX
    from alpaca_vault.db.models import utcnow

    try:
        tokens = await AccountAdmin(db).list_tokens()
    except Exception:
        return
    now = utcnow()
    counts = {"active": 0, "expired": 0, "revoked": 0}
    soon: list[str] = []
    renew_for = "NAME"
    renew_kind = ""  # " --console" when the token to renew is a console sign-in token (avc_)
    for t in tokens:
        state = t.status(now)
        counts[state] += 1
        if (
            state == "active"
            and t.expires_at is not None
            and t.expires_at - now < timedelta(days=EXPIRY_WARNING_DAYS)
        ):
            soon.append(f"{t.user}/{t.name} ({t.prefix}, {_when(t.expires_at)})")
            renew_for = t.user
            renew_kind = " --console" if t.prefix.startswith(CONSOLE_TOKEN_PREFIX) else ""
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"
    users = sorted({t.user for t in tokens if t.status(now) == "active"})
    message = f"HTTP bearer tokens: {summary}" + (
        f" (users with an active token: {', '.join(users)})" if users else ""
    )
    report.add("tokens", "ok", message, counts=counts)
    if soon:
        report.add(
            "tokens",
            "warn",
            f"expiring within {EXPIRY_WARNING_DAYS} days: {', '.join(soon)}",
            f"{cmd} tokens create --user {renew_for}{renew_kind} (then `{cmd} tokens revoke ID` for the old one)",
        )
