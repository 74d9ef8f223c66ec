"""The audit trail: every decrypt and every order on record, in a per-user chain of keyed MACs.

``AuditLog.append`` writes one event (fail closed: it raises ``AuditUnavailable``
and the caller must not go on); ``AuditLog.verify`` walks each chain;
``AuditLog.events`` lists and exports. See docs/audit.md.
"""

# Re-exports resolve on first use (PEP 562), as in vault/ and db/: the tools name AuditUnavailable
# (audit.errors), and answering tools/list must not wait for SQLAlchemy and the models (#15 cold start).

from __future__ import annotations

from typing import TYPE_CHECKING

from alpaca_vault.lazy_exports import exports_on_first_use

if TYPE_CHECKING:
    from alpaca_vault.audit.chain import Actor, ChainKeys
    from alpaca_vault.audit.errors import AuditUnavailable
    from alpaca_vault.audit.log import AuditEventInfo, AuditLog, ChainProblem, VerifyReport
    from alpaca_vault.db.models import AuditAction

_EXPORTS = {
    "Actor": "alpaca_vault.audit.chain",
    "AuditAction": "alpaca_vault.db.models",
    "AuditEventInfo": "alpaca_vault.audit.log",
    "AuditLog": "alpaca_vault.audit.log",
    "AuditUnavailable": "alpaca_vault.audit.errors",
    "ChainKeys": "alpaca_vault.audit.chain",
    "ChainProblem": "alpaca_vault.audit.log",
    "VerifyReport": "alpaca_vault.audit.log",
}

__all__ = [
    "Actor",
    "AuditAction",
    "AuditEventInfo",
    "AuditLog",
    "AuditUnavailable",
    "ChainKeys",
    "ChainProblem",
    "VerifyReport",
]


__getattr__ = exports_on_first_use(__name__, _EXPORTS)
