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
