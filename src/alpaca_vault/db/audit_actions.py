"""The audit actions, in a module without SQLAlchemy: the list_audit_events tool declares them in its schema,
which is built before the first tool call (and so before the database layer is imported)."""

from __future__ import annotations

from typing import Literal, get_args

# The one list of audit actions: the audit log records only these; the audit tool and the CLI filter by them.
AuditAction = Literal[
    "credential.unseal",
    "credential.store",
    "credential.update",
    "credential.delete",
    "credential.validate",
    "order.intent",
    "order.accepted",
    "order.rejected",
    "order.unknown",
    "order.reconciled",
    "order.replace",
    "order.cancel",
    "order.cancel_all",
    "position.close",
    "token.create",
    "token.revoke",
    "user.add",
    "user.remove",
    "key.rotate",
    # #14: a call the trading guard refused (details name the rule), and an owner's policy change.
    "guard.refused",
    "policy.change",
    # #14 item 5 (console2): a person's answer on an order approval page (details: outcome, client_order_id).
    "order.approval",
    # #15: a short-sale locate request (details: symbol, qty), recorded before it is sent.
    "locate.request",
]
AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)
