"""Users and API tokens (stored hashed): shared by the HTTP auth edge, the CLI and the console.

``AccountAdmin`` manages users and tokens across users (the ``users`` / ``tokens`` commands);
``TokenAuthenticator`` checks a presented token. Imports point down only: accounts -> audit -> db.
"""

from alpaca_vault.accounts.admin import (
    AccountAdmin,
    AccountError,
    IssuedToken,
    TokenNotFound,
    TokenRecord,
    UserExists,
    UserNotFound,
    UserRecord,
    check_user_name,
)
from alpaca_vault.accounts.tokens import (
    DISPLAY_PREFIX_LENGTH,
    TOKEN_PREFIX,
    AuthenticatedToken,
    TokenAuthenticator,
    generate_token,
    hash_token,
)

__all__ = [
    "DISPLAY_PREFIX_LENGTH",
    "TOKEN_PREFIX",
    "AccountAdmin",
    "AccountError",
    "AuthenticatedToken",
    "IssuedToken",
    "TokenAuthenticator",
    "TokenNotFound",
    "TokenRecord",
    "UserExists",
    "UserNotFound",
    "UserRecord",
    "check_user_name",
    "generate_token",
    "hash_token",
]
