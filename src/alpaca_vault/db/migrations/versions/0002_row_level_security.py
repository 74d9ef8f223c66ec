"""row-level security on every tenant table (PostgreSQL only)

Each tenant table gets RLS enabled *and forced* (so the table owner is bound
too) with two policies:

* ``tenant_isolation`` (every role): a row is visible and writable only when
  its user id equals the transaction's ``app.user_id`` setting, which
  ``Database.session(user_id)`` sets in every transaction. With no setting,
  ``current_setting('app.user_id', true)`` is NULL or '' and nothing matches.
* ``maintenance`` (the table owner only): all rows, but only in a transaction
  that sets ``app.maintenance = 'on'``. The admin commands (users, tokens)
  run as the owner and opt in; a server misconfigured to connect as the owner
  still gets tenant isolation.

Bearer tokens are verified before the caller is known, so two SECURITY
DEFINER functions, owned by the table owner, look up exactly one token by its
hash and one user id by name, returning only the fields needed to decide.
Their search_path is pinned and the tables are schema-qualified, so a caller
cannot substitute objects; they switch the owner's maintenance opt-in on for
their one query only. EXECUTE is revoked from PUBLIC; the application
role is granted it (see docs/deployment.md).

SQLite has no RLS: this revision does nothing there (the application's own
user_id filters are the wall).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 05:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from alpaca_vault.db.migrations.tenant_rls import (
    drop_tenant_policies,
    force_tenant_rls,
    ident,
    postgres_schema,
    table_owner,
)

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, the column holding the owning user's id)
TENANT_TABLES = (("users", "id"), ("credentials", "user_id"), ("api_tokens", "user_id"))


def upgrade() -> None:
    schema = postgres_schema()
    if schema is None:
        return
    s, o = ident(schema), ident(table_owner(schema, "users"))
    for table, column in TENANT_TABLES:
        force_tenant_rls(f"{s}.{ident(table)}", o, ident(column))

    # plpgsql, not a SET clause: PostgreSQL lets only superusers attach a custom setting to a
    # function. The opt-in is switched on for the one query and restored before returning.
    op.execute(
        f"""
        CREATE FUNCTION {s}.alpaca_vault_token_lookup(p_token_hash text)
        RETURNS TABLE (token_id uuid, user_id uuid, token_hash text, expires_at timestamptz,
                       revoked_at timestamptz, last_used_at timestamptz, user_active boolean)
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            previous text := coalesce(current_setting('app.maintenance', true), '');
        BEGIN
            PERFORM set_config('app.maintenance', 'on', true);
            RETURN QUERY
                SELECT t.id, t.user_id, t.token_hash::text, t.expires_at, t.revoked_at, t.last_used_at,
                       u.is_active
                FROM {s}.api_tokens AS t JOIN {s}.users AS u ON u.id = t.user_id
                WHERE t.token_hash = p_token_hash;
            PERFORM set_config('app.maintenance', previous, true);
        END
        $$
        """  # noqa: S608 - identifiers quoted by ident, no user input
    )
    op.execute(
        f"""
        CREATE FUNCTION {s}.alpaca_vault_user_id(p_name text)
        RETURNS uuid
        LANGUAGE plpgsql STABLE SECURITY DEFINER
        SET search_path = pg_catalog, pg_temp
        AS $$
        DECLARE
            previous text := coalesce(current_setting('app.maintenance', true), '');
            found uuid;
        BEGIN
            PERFORM set_config('app.maintenance', 'on', true);
            SELECT u.id INTO found FROM {s}.users AS u WHERE u.name = p_name;
            PERFORM set_config('app.maintenance', previous, true);
            RETURN found;
        END
        $$
        """  # noqa: S608 - identifiers quoted by ident, no user input
    )
    op.execute(f"REVOKE ALL ON FUNCTION {s}.alpaca_vault_token_lookup(text) FROM PUBLIC")
    op.execute(f"REVOKE ALL ON FUNCTION {s}.alpaca_vault_user_id(text) FROM PUBLIC")


def downgrade() -> None:
    schema = postgres_schema()
    if schema is None:
        return
    s = ident(schema)
    op.execute(f"DROP FUNCTION IF EXISTS {s}.alpaca_vault_user_id(text)")
    op.execute(f"DROP FUNCTION IF EXISTS {s}.alpaca_vault_token_lookup(text)")
    for table, _column in reversed(TENANT_TABLES):
        t = f"{s}.{ident(table)}"
        drop_tenant_policies(t)
        op.execute(f"ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {t} DISABLE ROW LEVEL SECURITY")
