"""docs/deployment.md's application-role SQL is what `rls.app_role_statements` creates.

Operators paste the docs' statements; the tests and `create_app_role` use the function. A grant
added to one and not the other (as `one_time_links` once was) fails here, not in production with
"permission denied for table ...".
"""

from __future__ import annotations

import re
from pathlib import Path

from alpaca_vault.db.rls import app_role_statements

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
SECTION = "### 3. Create the application role"


def _documented_statements() -> list[str]:
    """The SQL statements of the first ```sql block in step 3, without psql commands and comments."""
    text = DEPLOYMENT.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    block = re.search(r"^```sql\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    assert block is not None, f"no ```sql block after {SECTION!r} in {DEPLOYMENT}"
    lines = [
        line
        for line in block.group(1).splitlines()
        if line.strip() and not line.lstrip().startswith(("--", "\\"))
    ]
    return [_normalise(part) for part in " ".join(lines).split(";") if part.strip()]


def _normalise(statement: str) -> str:
    """One space between words, no trailing ';', and "name" written as name where that means the same."""
    statement = re.sub(r'"([a-z_][a-z0-9_]*)"', r"\1", statement)
    return " ".join(statement.replace(";", " ").split())


def test_the_documented_role_statements_are_app_role_statements() -> None:
    documented = _documented_statements()
    role = re.fullmatch(r"CREATE ROLE (\w+) .*", documented[0])
    assert role is not None, f"the block should start with CREATE ROLE: {documented[0]!r}"
    expected = [_normalise(statement) for statement in app_role_statements(role.group(1))]
    assert documented == expected


def test_every_grant_and_revoke_is_compared() -> None:
    """Nothing in the block escapes the comparison above (a GRANT split by a comment line, say)."""
    documented = _documented_statements()
    assert all(s.startswith(("CREATE ROLE ", "GRANT ", "REVOKE ")) for s in documented), documented
    assert any("one_time_links" in s for s in documented)
    assert any("alpaca_vault_link_lookup(text)" in s for s in documented)
