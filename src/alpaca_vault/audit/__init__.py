"""The audit trail: every decrypt and every order on record, in a per-user chain of keyed MACs.

``AuditLog.append`` writes one event (fail closed: it raises ``AuditUnavailable``
and the caller must not go on); ``AuditLog.verify`` walks each chain;
``AuditLog.events`` lists and exports. See docs/audit.md.
"""

from alpaca_vault.audit.chain import Actor, ChainKeys
from alpaca_vault.audit.log import AuditEventInfo, AuditLog, AuditUnavailable, ChainProblem, VerifyReport
from alpaca_vault.db.models import AuditAction

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
