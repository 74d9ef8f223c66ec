"""Process settings, read from ``ALPACA_VAULT_*`` environment variables.

Only the process edge (server/) reads the environment; the rooms below it
receive plain values as arguments, so they can be tested without touching
``os.environ``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit

import platformdirs
import pydantic_settings
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from alpaca_vault.db.engine import ConnectionSettings, Database

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
TOOLSETS = ("credentials", "account", "trading", "market", "options", "news", "watchlists", "locates")


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("alpaca-vault", appauthor=False))


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # 127.0.0.0/8 and ::1
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every knob of the server. Environment variable = ``ALPACA_VAULT_`` + field name, upper case."""

    model_config = SettingsConfigDict(env_prefix="ALPACA_VAULT_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded SQLite vault and the master key file live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db. "
        "Default: the SQLite file vault.db in DATA_DIR.",
    )
    encryption_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated master keys (from `alpaca-vault keys generate`), primary first. "
        "Default: the key file DATA_DIR/master.key, created on first use.",
    )
    paper_url: str = Field(default=PAPER_URL, description="Alpaca paper trading API base URL.")
    live_url: str = Field(default=LIVE_URL, description="Alpaca live trading API base URL.")
    data_url: str = Field(default=DATA_URL, description="Alpaca market data API base URL.")
    allow_live_trading: bool = Field(
        default=False,
        description="Allow live-environment credentials to place, replace, cancel or close. Off: fail closed.",
    )
    log_level: LogLevel = Field(default="INFO", description="Log level for stderr logs.")
    http_timeout: float = Field(
        default=10.0, gt=0, le=120, description="Seconds before an Alpaca call times out."
    )
    rate_limit_per_minute: int = Field(
        default=200, ge=1, le=10_000, description="Alpaca requests per minute allowed per credential."
    )
    user: str = Field(
        default="local", min_length=1, max_length=64, description="The user stdio mode acts as."
    )
    toolsets: str | None = Field(
        default=None,
        description="Comma-separated toolsets to expose: credentials, account, trading, market, options, news, "
        "watchlists, locates. Default: all. "
        "Leave out 'trading', 'watchlists' and 'locates' for a server that changes nothing at Alpaca.",
    )
    # NoDecode: the environment value goes to _comma_separated as text, so a plain
    # `vault.example.com` works as well as a JSON list.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host header values the HTTP transport accepts, comma-separated "
        "(loopback names are always accepted).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Origin header values the HTTP transport accepts, comma-separated "
        "(loopback origins are always accepted).",
    )

    # #15: market data
    data_feed: Literal["iex", "sip", "delayed_sip", "boats", "overnight", "otc"] = Field(
        default="iex",
        description="Stock market data feed used when a call names none: iex (free, one exchange), "
        "sip (all US exchanges; needs an Alpaca data subscription), delayed_sip (15 minutes late), ...",
    )

    # --- #12: secrets stay out of the chat (key entry page, console) ---------------------------------
    allow_secrets_in_arguments: bool = Field(
        default=False,
        description="Let store_credential/update_credential take api_key and secret_key as tool arguments "
        "(for orchestrators that are not language models). Off: keys are entered on a one-time page.",
    )
    public_url: str | None = Field(
        default=None,
        description="The external base URL behind a TLS proxy (https://vault.example.com), for key entry "
        "and console links. Default: the address the HTTP server listens on.",
    )
    key_entry_minutes: int = Field(
        default=10, ge=1, le=60, description="Minutes a one-time key entry link stays valid."
    )
    console_session_minutes: int = Field(
        default=30, ge=5, le=720, description="Minutes a console sign-in lasts (no sliding renewal)."
    )

    # --- #14 item 5 (console2): order approval links for clients without confirmation forms ---
    approval_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Minutes an order approval link stays open, and an approval given on it counts for retries.",
    )

    # --- #16 TLS to PostgreSQL and its connection pool (ignored for SQLite) ---
    database_sslmode: Literal["disable", "require", "verify-ca", "verify-full"] | None = Field(
        default=None,
        description="TLS to PostgreSQL: disable, require (encrypted, unverified), verify-ca, verify-full. "
        "Default: verify-full for a host that is not loopback, disable for loopback and Unix sockets.",
    )
    database_ssl_ca: Path | None = Field(
        default=None,
        description="PEM CA bundle that issued the PostgreSQL server's certificate. Default: the system's CAs.",
    )
    database_ssl_cert: Path | None = Field(
        default=None, description="PEM client certificate for PostgreSQL (with DATABASE_SSL_KEY)."
    )
    database_ssl_key: Path | None = Field(
        default=None, description="PEM private key of the client certificate (with DATABASE_SSL_CERT)."
    )
    database_allow_plaintext: bool = Field(
        default=False,
        description="Allow sslmode=disable to a PostgreSQL host that is not loopback (the password then "
        "travels in cleartext). Off: refused.",
    )
    database_pool_pre_ping: bool = Field(
        default=True,
        description="Check a pooled PostgreSQL connection before use (survives server restarts).",
    )
    database_pool_recycle: int = Field(
        default=1800,
        ge=0,
        le=86_400,
        description="Seconds after which a pooled PostgreSQL connection is replaced (0: never).",
    )

    # --- #10 fair sharing and slow clients on the HTTP transport ---
    sessions_per_user: int = Field(
        default=10,
        ge=1,
        le=10_000,
        description="Open stateful MCP sessions allowed per user (all of its tokens together); "
        "one more is answered HTTP 429 for that user only.",
    )
    session_idle_timeout: float = Field(
        default=300.0,
        ge=10,
        le=86_400,
        description="Seconds without a request after which a stateful MCP session is closed.",
    )
    requests_per_minute: int = Field(
        default=600,
        ge=1,
        le=100_000,
        description="HTTP requests to /mcp allowed per user per minute (bursts up to the same number); "
        "more are answered HTTP 429 with Retry-After.",
    )
    http_header_timeout: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="Seconds a client has to send a request's headers (from connecting, or from the first "
        "byte of a request on a kept-alive connection); then the connection is closed.",
    )
    http_keep_alive_timeout: int = Field(
        default=75,
        ge=1,
        le=3_600,
        description="Seconds an idle keep-alive connection stays open. Keep it above your load balancer's "
        "idle timeout (60 s on common ones).",
    )
    http_limit_concurrency: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Open connections plus requests in progress the HTTP server accepts; beyond it, HTTP 503.",
    )

    # --- #10 (replicas): the Alpaca request budget, shared by every replica on PostgreSQL ---
    rate_limit_window_seconds: float = Field(
        default=60.0,
        ge=1,
        le=3_600,
        description="The window RATE_LIMIT_PER_MINUTE counts over: at most that many Alpaca requests per "
        "credential in any window this long (60 matches Alpaca; shorter for stand-ins and tests). On "
        "PostgreSQL every replica draws from one budget kept in the database.",
    )

    # --- #11: answers that fit a context window ---
    max_result_bytes: int = Field(
        default=20_000,
        ge=2_000,
        le=1_000_000,
        description="Largest tool result text, in bytes; a list that would be longer returns its first records "
        "and says in `more` how to get the rest.",
    )
    result_text: Literal["data", "summary"] = Field(
        default="data",
        description="What a result's text block holds: `data` = a summary and the data as JSON (every client "
        "reads it); `summary` = only the summary for clients on MCP 2025-06-18 or later, which take the data as "
        "structured content (choose it when your client hands structured content to the model).",
    )
    # --- #10 (untrusted): bounded waits for the request budget and for placing an order ---
    rate_limit_max_wait: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="Seconds a call may wait for room in its credential's request budget "
        "(RATE_LIMIT_PER_MINUTE); longer, and it is refused with nothing sent.",
    )
    order_deadline: float = Field(
        default=25.0,
        ge=1,
        le=600,
        description="Seconds alpaca_place_order may take in all (retries and lookups included); then it "
        "answers with the client_order_id to look up. Keep it under your MCP client's tool timeout.",
    )

    @field_validator(
        "database_sslmode", "database_ssl_ca", "database_ssl_cert", "database_ssl_key", mode="before"
    )
    @classmethod
    def _empty_means_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_sslmode", mode="before")
    @classmethod
    def _lower_sslmode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_ssl_key")
    @classmethod
    def _key_with_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("database_ssl_cert") is None):
            raise ValueError("set DATABASE_SSL_CERT and DATABASE_SSL_KEY together (or neither)")
        return value

    @property
    def database_connection(self) -> ConnectionSettings:
        """TLS and pool settings for ``Database.create`` (db/ never reads the environment itself)."""
        from alpaca_vault.db.engine import ConnectionSettings

        return ConnectionSettings(
            sslmode=self.database_sslmode,
            ca_file=self.database_ssl_ca,
            cert_file=self.database_ssl_cert,
            key_file=self.database_ssl_key,
            allow_plaintext=self.database_allow_plaintext,
            pool_pre_ping=self.database_pool_pre_ping,
            pool_recycle_seconds=self.database_pool_recycle,
        )

    def open_database(self) -> Database:
        """The configured database with its TLS and pool settings (no I/O until first use)."""
        from alpaca_vault.db.engine import Database

        return Database.create(self.effective_database_url, self.database_connection)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _empty_data_dir_means_default(cls, value: object) -> object:
        # An exported-but-empty ALPACA_VAULT_DATA_DIR must not put the vault in the current directory.
        if value is None or (isinstance(value, str) and not value.strip()):
            return _default_data_dir()
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                raise ValueError(
                    'not a valid JSON list; write a comma-separated list (a.example,b.example) or ["a.example"]'
                ) from None
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("paper_url", "live_url", "data_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https://")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            raise ValueError("is not a valid URL (check the host and port)") from None
        if not parts.hostname:
            raise ValueError("has no host name")
        # Alpaca key pairs travel in request headers: plain HTTP only where nothing leaves this machine.
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(
                "http:// would send Alpaca key pairs in cleartext; use https:// "
                "(http:// is accepted only for a loopback host: localhost, 127.0.0.1, ::1)"
            )
        return value.rstrip("/")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        # #12: links are handed to people; a link over plain HTTP off this machine would expose them.
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError("is not a valid URL (check the host and port)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an https:// URL with a host name, like https://vault.example.com")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query string or fragment")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https:// (http:// is accepted only for a loopback host)")
        return value

    @field_validator("toolsets")
    @classmethod
    def _known_toolsets(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        names = {part.strip() for part in value.split(",") if part.strip()}
        unknown = names - set(TOOLSETS)
        if unknown:
            raise ValueError(
                f"unknown toolset(s) {', '.join(sorted(unknown))}; choose from {', '.join(TOOLSETS)}"
            )
        return ",".join(sorted(names))

    @property
    def enabled_toolsets(self) -> frozenset[str] | None:
        return frozenset(self.toolsets.split(",")) if self.toolsets else None

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # Accept the URL people copy from their provider; we always speak asyncpg.
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST/DB")
        # Here, not at the top: only a configured URL pays for importing SQLAlchemy.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        # Never echo the URL in the message: it may hold the database password.
        usage = "use postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DB (percent-encode @ : / in the password)"
        try:
            url = make_url(value)
        except (ValueError, ArgumentError):
            raise ValueError(f"cannot be parsed (is the port a number?); {usage}") from None
        if url.port is not None and not 1 <= url.port <= 65535:
            raise ValueError(f"the port must be between 1 and 65535; {usage}")
        return value

    @property
    def effective_database_url(self) -> str:
        """The configured database, or the embedded SQLite file inside the data dir."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'vault.db'}"

    @property
    def is_embedded_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")


class SettingsError(Exception):
    """Settings failed validation; the message names each variable to fix."""


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings, turning pydantic's report into one that says what to set."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines: list[str] = []
        for error in exc.errors():
            # The variable only: a list item's index means nothing to whoever sets the variable.
            field = str(error["loc"][0]) if error["loc"] else "settings"
            line = f"  ALPACA_VAULT_{field.upper()}: {error['msg']}"
            if line not in lines:
                lines.append(line)
        raise SettingsError("Invalid settings:\n" + "\n".join(lines)) from None
    except pydantic_settings.SettingsError as exc:
        # Raised while reading the environment, before validation (e.g. a value that is not JSON).
        # Its text quotes the source, not the value; keep only the field it names.
        named = re.search(r'field "(\w+)"', str(exc))
        variable = f"ALPACA_VAULT_{named.group(1).upper()}" if named else "an ALPACA_VAULT_ variable"
        raise SettingsError(f"Invalid settings:\n  {variable}: cannot be parsed") from None
