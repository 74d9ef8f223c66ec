"""The audit trail's failure, in a module of its own: the tools' error table names it without loading
the database layer (audit.log) before the first tool call."""

from __future__ import annotations


class AuditUnavailable(Exception):
    """The audit event could not be written, so the action it records must not happen."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"the audit record for {action} could not be written ({reason})")
        self.action = action
        self.reason = reason
