"""Changes made from the terminal are on record: credential, user, token and key commands write events."""

from __future__ import annotations

import json
import secrets

from tests.cli.conftest import Cli


async def test_admin_commands_write_their_events_with_actor_cli(cli: Cli) -> None:
    api, secret = f"PKEV{secrets.token_hex(8).upper()}", f"SKEVSECRET{secrets.token_urlsafe(24)}"
    steps = [
        cli(
            "credentials",
            "add",
            "paper-a",
            "--environment",
            "paper",
            "--no-validate",
            input=f"{api}\n{secret}\n",
        ),
        cli("credentials", "remove", "paper-a"),
        cli("users", "add", "bob"),
        cli("tokens", "create", "--user", "bob", "--name", "laptop"),
    ]
    token_id = json.loads(cli("tokens", "list", "--json").stdout)[0]["id"]
    steps += [
        cli("tokens", "revoke", token_id),
        cli("users", "remove", "bob", "--yes"),
        cli("keys", "rotate"),
    ]
    for step in steps:
        assert step.returncode == 0, step.stderr
    events = json.loads(cli("audit", "list", "--json", "--limit", "50").stdout)
    by_action = {e["action"]: e for e in events}
    assert {
        "credential.store",
        "credential.delete",
        "user.add",
        "token.create",
        "token.revoke",
        "user.remove",
        "key.rotate",
    } <= by_action.keys()
    assert {e["actor"] for e in events} == {"cli"}
    assert by_action["credential.store"]["credential"] == "paper-a"
    assert by_action["token.create"]["details"]["token_name"] == "laptop"
    assert by_action["user.remove"]["user"] is None  # the user is gone; its record stays
    assert by_action["user.remove"]["user_id"] == by_action["user.add"]["user_id"]
    dump = json.dumps(events)
    assert api not in dump and secret not in dump
    assert steps[3].stdout.strip() and steps[3].stdout.strip() not in dump  # the bearer token itself
    verified = cli("audit", "verify")
    assert verified.returncode == 0 and "every chain is intact" in verified.stdout


async def test_an_admin_change_whose_event_cannot_be_written_does_not_happen(cli: Cli) -> None:
    """Attack stopped: making the audit table unwritable to add a user or mint a token unrecorded.

    The event is written in the change's own transaction, so the refusal rolls the change back."""
    from alpaca_vault.db import Database
    from tests.audit.test_fail_closed import DROP_TRIGGER, REFUSING_TRIGGER, _run

    assert cli("users", "add", "bob").returncode == 0
    db = Database.create(cli.effective_url)
    backend = "postgresql" if db.is_postgres else "sqlite"
    try:
        await _run(db, REFUSING_TRIGGER[backend])
        refused = [
            cli("users", "add", "carol"),
            cli("tokens", "create", "--user", "bob", "--name", "unrecorded"),
            cli("users", "remove", "bob", "--yes"),
        ]
        for step in refused:
            assert step.returncode == 1, step.stdout + step.stderr
            assert "could not be written" in step.stderr and "nothing was changed" in step.stderr, step.stderr
            assert "Traceback" not in step.stderr
        assert not refused[1].stdout.strip()  # no token was printed
        users = {u["name"]: u for u in json.loads(cli("users", "list", "--json").stdout)}
        assert set(users) == {"bob"} and users["bob"]["tokens"] == 0  # nothing changed
        await _run(db, DROP_TRIGGER[backend])
    finally:
        await db.dispose()
    assert cli("tokens", "create", "--user", "bob").returncode == 0
    assert cli("audit", "verify").returncode == 0
