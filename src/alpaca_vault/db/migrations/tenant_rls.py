"""What the revisions share to put a tenant table behind row-level security (PostgreSQL only).

Every tenant table gets RLS enabled and forced with the two policies of revision 0002:
``tenant_isolation`` (a row belongs to the transaction's ``app.user_id``) and ``maintenance``
(the table owner, in a transaction that sets ``app.maintenance = 'on'``).

Frozen like the revisions that call it: a database already upgraded ran exactly this SQL, so a new
policy is a new revision with helpers of its own, never an edit here. The SQL arguments come
quoted by the caller because the first revisions quoted differently (``"user_id"`` in 0002 and
0004, ``user_id`` elsewhere; ``"public".one_time_links`` in 0006), and their SQL stays as it ran.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

CURRENT_USER_ID = "NULLIF(current_setting('app.user_id', true), '')::uuid"
MAINTENANCE_ON = "current_setting('app.maintenance', true) = 'on'"


def ident(name: str) -> str:
    """A PostgreSQL identifier, quoted (names come from the catalog, never from a user)."""
    return '"' + name.replace('"', '""') + '"'


def postgres_schema() -> str | None:
    """The current schema's name, unquoted; None on any other database (SQLite has no RLS)."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    return str(bind.execute(text("SELECT current_schema()")).scalar_one())


def table_owner(schema: str, table: str) -> str:
    """The role that owns ``table`` (unquoted): the role the ``maintenance`` policy admits."""
    return str(
        op.get_bind()
        .execute(
            text(f"SELECT tableowner FROM pg_tables WHERE schemaname = :schema AND tablename = '{table}'"),  # noqa: S608 - a revision's own table name
            {"schema": schema},
        )
        .scalar_one()
    )


def force_tenant_rls(table_sql: str, owner_sql: str, user_column_sql: str = "user_id") -> None:
    """Enable and force RLS on ``table_sql`` with the ``tenant_isolation`` and ``maintenance`` policies."""
    op.execute(f"ALTER TABLE {table_sql} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table_sql} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table_sql} "
        f"USING ({user_column_sql} = {CURRENT_USER_ID}) WITH CHECK ({user_column_sql} = {CURRENT_USER_ID})"
    )
    op.execute(
        f"CREATE POLICY maintenance ON {table_sql} TO {owner_sql} USING ({MAINTENANCE_ON}) WITH CHECK ({MAINTENANCE_ON})"
    )


def drop_tenant_policies(table_sql: str) -> None:
    """Drop the two policies ``force_tenant_rls`` created (RLS itself stays as it is)."""
    op.execute(f"DROP POLICY IF EXISTS maintenance ON {table_sql}")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table_sql}")
