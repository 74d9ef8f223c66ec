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
    from alpaca_vault.server.commands.doctor_vault import check_credentials, check_sealed_values, check_tokens

    db = await _check_database(report, settings, cmd)
    try:
        keyring = _guarded(report, "key ring", lambda: _check_key_ring(report, settings, cmd))
        if db is not None:
            await _guarded_async(
                report, "sealed values", check_sealed_values(report, db, keyring, settings, cmd)
            )
            await _guarded_async(report, "credentials", check_credentials(report, db, cmd))
            await _guarded_async(report, "tokens", check_tokens(report, db, cmd))
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
    # The credentials the vault check listed: an unreachable live endpoint fails only if one would use it.
    # Only when the credential check did list them (it is silent when it cannot read across users).
    listed = any(c.check in ("credential", "credentials") for c in report.checks)
    live_stored = not listed or any(
        c.check == "credential" and c.details.get("environment") == "live" for c in report.checks
    )
    for (name, url), (status, what) in zip(targets.items(), results, strict=True):
        variable = f"ALPACA_VAULT_{name.upper()}"
        if status is None and name == "live_url" and not live_stored:
            # E.g. offline against the simulator, with PAPER_URL and DATA_URL pointed at it (README).
            report.add(
                "alpaca",
                "warn",
                f"could not reach Alpaca at {url} ({what}); no live credential is stored, so nothing needs it yet",
                f"check the network before storing a live credential, or set {variable} to the right URL",
                setting=variable,
                url=url,
            )
        elif status is None:
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
