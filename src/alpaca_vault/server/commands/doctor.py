"""`alpaca-vault doctor`: check this installation and say, for each problem, the command that fixes it.

It only reads: it never creates the data dir, the vault file or the key file, never upgrades the
schema and never decrypts a credential (the key id of a sealed value is in its clear header).
Exit status 1 when any check failed; warnings alone exit 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

if TYPE_CHECKING:
    from alpaca_vault.db import Database
    from alpaca_vault.server.settings import Settings
    from alpaca_vault.vault import KeyRing

Status = Literal["ok", "info", "warn", "fail"]
_MARK = {"ok": "ok  ", "info": "info", "warn": "warn", "fail": "FAIL"}
# Seconds each Alpaca URL gets to answer: doctor is interactive, so a dead endpoint must not stall it.
PROBE_TIMEOUT = 5.0
EXPIRY_WARNING_DAYS = 7


@dataclass
class Check:
    """One finding. ``fix`` is a command (or a concrete action) whenever status is warn or fail."""

    check: str
    status: Status
    message: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(
        self, check: str, status: Status, message: str, fix: str | None = None, /, **details: Any
    ) -> None:
        self.checks.append(Check(check, status, message, fix, details))

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]


def register(app: typer.Typer) -> None:
    app.command(name="doctor")(doctor)


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check settings, data dir, database and migrations, key ring, Alpaca URLs, credentials and tokens."""
    report = asyncio.run(diagnose())
    if as_json:
        from alpaca_vault import __version__

        typer.echo(
            json.dumps(
                {
                    "version": __version__,
                    "ok": not report.failed,
                    "problems": len(report.failed),
                    "checks": [asdict(c) for c in report.checks],
                },
                indent=2,
                default=str,
            )
        )
    else:
        _print(report)
    if report.failed:
        raise typer.Exit(1)


def _print(report: Report) -> None:
    from alpaca_vault import __version__

    typer.echo(f"alpaca-vault {__version__} doctor")
    width = max(len(c.check) for c in report.checks)
    for c in report.checks:
        typer.echo(f"[{_MARK[c.status]}] {c.check.ljust(width)}  {c.message}")
        if c.fix:
            typer.echo(f"       {' ' * width}  fix: {c.fix}")
    problems, warnings = len(report.failed), sum(c.status == "warn" for c in report.checks)
    if problems:
        typer.echo(
            f"\n{_count(problems, 'problem')} found"
            + (f", {_count(warnings, 'warning')}." if warnings else ".")
        )
    elif warnings:
        typer.echo(f"\nNo problems; {_count(warnings, 'warning')}.")
    else:
        typer.echo("\nNo problems found.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def diagnose() -> Report:
    """Every check, in the order a person would fix things."""
    from alpaca_vault.server.hints import program
    from alpaca_vault.server.settings import SettingsError, load_settings

    report = Report()
    cmd = program()
    try:
        settings = load_settings()
    except SettingsError as exc:
        report.add(
            "settings", "fail", str(exc).replace("\n", " "), "set the variables named above to valid values"
        )
        return report
    _guarded(report, "command", lambda: _check_program(report, cmd))
    _guarded(report, "settings", lambda: _check_settings(report, settings))
    _guarded(report, "data dir", lambda: _check_data_dir(report, settings, cmd))
    db = await _check_database(report, settings, cmd)
    try:
        keyring = _guarded(report, "key ring", lambda: _check_key_ring(report, settings, cmd))
        if db is not None:
            await _guarded_async(
                report, "sealed values", _check_sealed_values(report, db, keyring, settings, cmd)
            )
            await _guarded_async(report, "credentials", _check_credentials(report, db, cmd))
            await _guarded_async(report, "tokens", _check_tokens(report, db, cmd))
    finally:
        if db is not None:
            await db.dispose()
    await _guarded_async(report, "alpaca", _check_alpaca(report, settings))
    _guarded(report, "live trading", lambda: _check_live_trading(report, settings))
    return report


def _crashed(report: Report, check: str, exc: Exception) -> None:
    # One line, never the exception's text: a check must not print what it was reading.
    report.add(check, "fail", f"the check itself failed ({type(exc).__name__})", "report this as a bug")


def _guarded(report: Report, check: str, run: Any) -> Any:
    try:
        return run()
    except Exception as exc:
        _crashed(report, check, exc)
        return None


async def _guarded_async(report: Report, check: str, run: Any) -> None:
    try:
        await run
    except Exception as exc:
        _crashed(report, check, exc)


def _check_program(report: Report, cmd: str) -> None:
    from alpaca_vault.server.hints import COMMAND

    if cmd == COMMAND:
        report.add("command", "ok", f"`{COMMAND}` on PATH is this installation")
    else:
        report.add(
            "command",
            "info",
            f"`{COMMAND}` is not on PATH (or is another installation); hints name {cmd}",
            f'export PATH="{Path(cmd.strip(chr(39))).parent}:$PATH"',
        )


def _check_settings(report: Report, settings: Settings) -> None:
    from alpaca_vault.server.settings import Settings

    defaults = Settings.model_construct()
    changed: dict[str, str] = {}
    for name in Settings.model_fields:
        value, default = getattr(settings, name), getattr(defaults, name, None)
        if value == default:
            continue
        changed[f"ALPACA_VAULT_{name.upper()}"] = _shown_setting(name, value)
    if changed:
        listed = ", ".join(f"{k}={v}" for k, v in changed.items())
        report.add("settings", "ok", f"valid; differ from defaults: {listed}", changed=changed)
    else:
        report.add("settings", "ok", "valid; all defaults", changed={})


def _shown_setting(name: str, value: Any) -> str:
    """A setting as it may be printed: never a key, never a database password."""
    if name == "encryption_keys":
        count = len([k for k in value.get_secret_value().replace("\n", ",").split(",") if k.strip()])
        return f"<{count} key{'s' if count != 1 else ''}, hidden>"
    if name == "database_url":
        return _safe_url(value)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL never reaches here (settings validate it); print nothing of it anyway
        return "<unprintable URL>"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _check_data_dir(report: Report, settings: Settings, cmd: str) -> None:
    path = settings.data_dir
    if not path.exists():
        status: Status = "info" if settings.is_embedded_sqlite else "ok"
        report.add(
            "data dir", status, f"{path} does not exist yet (made on first use)", path=str(path), exists=False
        )
        return
    if not path.is_dir():
        report.add(
            "data dir",
            "fail",
            f"{path} is not a directory",
            "point ALPACA_VAULT_DATA_DIR at a directory, or move that file away",
            path=str(path),
        )
        return
    mode = _mode(path)
    if not os.access(path, os.W_OK):
        report.add(
            "data dir",
            "fail",
            f"{path} is not writable by this user",
            f"chown {os.getuid()} {path}",
            path=str(path),
        )
    elif mode & (stat.S_IRWXG | stat.S_IRWXO):
        report.add(
            "data dir",
            "warn",
            f"{path} can be read by other users (mode {mode:04o})",
            f"chmod 700 {path}",
            path=str(path),
            mode=f"{mode:04o}",
        )
    else:
        report.add("data dir", "ok", f"{path} (mode {mode:04o})", path=str(path), mode=f"{mode:04o}")


async def _check_database(report: Report, settings: Settings, cmd: str) -> Database | None:
    """Reachable, and at the newest migration. Returns the open database for the later checks."""
    from alpaca_vault.db import Database
    from alpaca_vault.db.migrate import current_revision, head_revision

    url = settings.effective_database_url
    shown = _safe_url(url)
    if (
        settings.is_embedded_sqlite
        and not (settings.data_dir / "vault.db").exists()
        and not settings.database_url
    ):
        report.add(
            "database", "info", f"{shown}: no vault yet (created on first use)", url=shown, exists=False
        )
        return None
    db = Database.create(url)
    try:
        current = await current_revision(db)
    except Exception as exc:  # unreachable, refused, wrong password: the driver's first line says which
        await db.dispose()
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
        report.add(
            "database",
            "fail",
            f"{shown}: cannot connect ({reason[:200]})",
            "check ALPACA_VAULT_DATABASE_URL and that the database server is running",
            url=shown,
        )
        return None
    head = head_revision()
    if current == head:
        report.add(
            "database", "ok", f"{shown} at migration {head} (latest)", url=shown, revision=current, head=head
        )
    else:
        where = "has no tables yet" if current is None else f"is at migration {current}, behind {head}"
        report.add(
            "database",
            "fail",
            f"{shown} {where}",
            f"{cmd} db upgrade",
            url=shown,
            revision=current,
            head=head,
        )
        if current is None:
            await db.dispose()
            return None
    return db


def _check_key_ring(report: Report, settings: Settings, cmd: str) -> KeyRing | None:
    from alpaca_vault.vault import KeyRing, KeyRingError
    from alpaca_vault.vault.keyring import KEY_FILE_NAME

    keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    key_file = settings.data_dir / KEY_FILE_NAME
    try:
        # Never create the key file here: a missing one is exactly what doctor must report.
        keyring = KeyRing.load(keys, settings.data_dir, create_key_file=False)
    except KeyRingError as exc:
        from alpaca_vault.server.hints import runnable

        missing_file = keys is None and not key_file.exists()
        if missing_file and settings.is_embedded_sqlite:
            # Whether that is a problem depends on what is sealed: checked with the credentials.
            report.add(
                "key ring",
                "info",
                f"no key file {key_file} yet (made on first use)",
                source=str(key_file),
                exists=False,
            )
            return None
        fix = (
            f"chmod 600 {key_file}"
            if "chmod 600" in str(exc)
            else f"set ALPACA_VAULT_ENCRYPTION_KEYS (`{cmd} keys generate` makes a key)"
        )
        report.add(
            "key ring",
            "fail",
            runnable(str(exc)),
            fix,
            source=str(key_file) if keys is None else "environment",
        )
        return None
    details: dict[str, Any] = {"source": keyring.source, "kids": keyring.kids, "primary": keyring.primary_kid}
    where = "ALPACA_VAULT_ENCRYPTION_KEYS" if keys else str(key_file)
    if not keys:
        details["mode"] = f"{_mode(key_file):04o}"
        where += f" (mode {details['mode']})"
    report.add(
        "key ring",
        "ok",
        f"{_count(len(keyring.kids), 'key')} from {where}; primary {keyring.primary_kid}"
        + (f", also {', '.join(keyring.kids[1:])}" if len(keyring.kids) > 1 else ""),
        **details,
    )
    return keyring


async def _check_sealed_values(
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
    await _check_envelope(report, db, cmd)


async def _check_envelope(report: Report, db: Database, cmd: str) -> None:
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


async def _check_credentials(report: Report, db: Database, cmd: str) -> None:
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


async def _check_tokens(report: Report, db: Database, cmd: str) -> None:
    from datetime import timedelta

    from alpaca_vault.accounts import AccountAdmin
    from alpaca_vault.db.models import utcnow

    try:
        tokens = await AccountAdmin(db).list_tokens()
    except Exception:
        return
    now = utcnow()
    counts = {"active": 0, "expired": 0, "revoked": 0}
    soon: list[str] = []
    renew_for = "NAME"
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
            f"{cmd} tokens create --user {renew_for} (then `{cmd} tokens revoke ID` for the old one)",
        )


async def _check_alpaca(report: Report, settings: Settings) -> None:
    """Does each configured Alpaca URL answer at all? Any HTTP status counts: only silence is a problem."""
    import httpx2

    targets = {"paper_url": settings.paper_url, "live_url": settings.live_url, "data_url": settings.data_url}

    async def probe(client: httpx2.AsyncClient, url: str) -> tuple[int | None, str]:
        try:
            response = await client.get(url + "/")
        except httpx2.TimeoutException:
            return None, f"no answer within {PROBE_TIMEOUT:.0f} s"
        except httpx2.HTTPError as exc:
            return None, type(exc).__name__.replace("Error", " error").strip().lower()
        return response.status_code, "answers"

    async with httpx2.AsyncClient(timeout=PROBE_TIMEOUT, trust_env=False, follow_redirects=False) as client:
        results = await asyncio.gather(*(probe(client, url) for url in targets.values()))
    for (name, url), (status, what) in zip(targets.items(), results, strict=True):
        variable = f"ALPACA_VAULT_{name.upper()}"
        if status is None:
            report.add(
                "alpaca",
                "fail",
                f"could not reach Alpaca at {url} ({what})",
                f"check the network (and any proxy or firewall), or set {variable} to the right URL",
                setting=variable,
                url=url,
            )
        else:
            report.add(
                "alpaca", "ok", f"{url} answers (HTTP {status})", setting=variable, url=url, status=status
            )


def _check_live_trading(report: Report, settings: Settings) -> None:
    if settings.allow_live_trading:
        report.add(
            "live trading",
            "warn",
            "ON: live credentials can place, replace, cancel and close orders with real money",
            "unset ALPACA_VAULT_ALLOW_LIVE_TRADING unless that is intended",
            enabled=True,
        )
    else:
        report.add("live trading", "ok", "off: live credentials can only read", enabled=False)
