"""The multi-user deployment fixtures (SQLite, and PostgreSQL as the application role) for auth tests."""

from tests.multiuser.conftest import deployment, deployment_urls, rls_cluster, rls_database

__all__ = ["deployment", "deployment_urls", "rls_cluster", "rls_database"]
