"""`alpaca-vault` with the audit hooks taken out, for bench/audit_cost.py's "before" numbers only.

The server has no setting that turns auditing off (it must not): this launcher patches the hook
installer in its own process and then runs the normal CLI.
"""

from __future__ import annotations

import sys

from alpaca_vault.server.cli import main
from alpaca_vault.tools import audit_hooks

audit_hooks.AuditHooks.install = lambda self, hooks: None  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["alpaca-vault", *sys.argv[1:]]
    main()
