"""Configuration in one place: every setting read from the environment and `.env` (pydantic-settings).

Chain settings are dynamic (`CHAINS=eth,base` plus `<NAME>_RPC_URL`, ...): `Settings.chain_variables()` reads them
from the same sources, with the same precedence, and hands them to `tracing.chain.config`, which opens no file
itself. Everything else is a typed field here. `.env.example` documents each variable.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import Field, PrivateAttr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CHAIN_SUFFIXES = (
    "_RPC_URL",
    "_EXPLORER_URL",
    "_EXPLORER_KEY",
    "_ESPLORA_URL",
    "_ALLOCATION",
    "_CHAIN_ID",
    "_CONFIRMATIONS",
    "_SYMBOL",
    "_FAMILY",
    "_NETWORK",
)
"""The per-chain variables: `<NAME>` followed by one of these."""


def _csv(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ValueError("expected a comma-separated list")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")
    _chain_env_file: object = PrivateAttr(default=None)

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        # The chain variables come from the same file the fields did (`Settings(_env_file=None)` reads none).
        self._chain_env_file = values.get("_env_file", self.model_config.get("env_file"))

    data_dir: Path = Field(default=Path("data"), description="Where the embedded database and files live.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir.")
    log_level: str = "INFO"
    log_json: bool = False

    platform: Literal["auto", "console", "telegram", "slack"] = "auto"

    telegram_bot_token: str = ""
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_base_file_url: str = "https://api.telegram.org/file/bot"
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    telegram_webhook_listen: str = "127.0.0.1"
    telegram_webhook_port: int = 8443

    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_base_url: str = "https://slack.com/api/"
    slack_http_host: str = "127.0.0.1"
    slack_http_port: int = 3000

    # NoDecode: `ALLOWED_CHATS=telegram:-100123,slack:C0123` is comma-separated text, not JSON.
    allowed_chats: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    officers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    analysts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    address_offer_minutes: int = Field(default=10, ge=0, description="Quiet time per address per chat between offers.")

    ops_chat: str = ""
    ops_lag_blocks: int = 20
    ops_failed_messages: int = 1
    explorer_budget: float = Field(
        default=10.0,
        gt=0,
        description="Seconds one explorer read may take inside a command before it fails.",
    )
    node_stale_after: float = Field(
        default=60.0,
        gt=0,
        description="Seconds without a good answer from a watched node before it counts as silent.",
    )

    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0

    # Every HTTP server (Slack HTTP mode, the Telegram webhook, metrics): see `bot.web.server`. The connection cap is
    # lowered to fit the file limit (systemd's `LimitNOFILE`): (limit - 64) / 2 per server.
    http_max_connections: int = Field(default=1024, ge=1, description="Open connections per server, at most.")
    http_header_timeout: float = Field(default=10.0, gt=0, description="Seconds to send a request's headers.")
    http_body_timeout: float = Field(default=10.0, gt=0, description="Seconds to send the body after the headers.")
    http_keepalive_timeout: float = Field(default=15.0, gt=0, description="Seconds an idle connection is kept.")
    http_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest request body accepted.")

    default_chain: str = "eth"
    chains: str = Field(default="eth", description="The configured chains, comma-separated (CHAINS).")
    demo_data: bool = True

    risk_dust_usd: Decimal = Decimal(250)
    """Dust floor of the risk policy, in USD on the transfer's day (README "How risk is rated")."""
    risk_dust_eth: Decimal = Decimal("0.2")
    """The same floor in ETH, for amounts without a USD price."""

    # Optional live USD prices: a CoinGecko-compatible API (answers are stored; each asset and day is asked once).
    price_api_url: str = ""
    price_api_key: str = ""
    price_api_key_header: str = "x-cg-demo-api-key"
    price_api_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """`SYMBOL=coin-id` pairs that add to or replace the built-in coin ids (ETH=ethereum, BTC=bitcoin, ...)."""

    @field_validator("allowed_chats", "admins", "officers", "analysts", "price_api_ids", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> list[str]:
        return _csv(value)

    def chain_variables(self) -> dict[str, str]:
        """The chain variables `tracing.chain.config.load_chains` reads: `CHAINS` (the `chains` field) and every
        `<NAME>_*` variable (see `CHAIN_SUFFIXES`) from `.env` overlaid with the environment (the environment wins,
        as for every field). The `<NAME>_*` ones are dynamic, so they are read on each call; nothing else is taken."""
        env_file = self._chain_env_file
        merged: dict[str, str] = {}
        if isinstance(env_file, str | Path) and Path(env_file).is_file():
            merged = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        merged.update(os.environ)
        found = {key: value for key, value in merged.items() if key.upper().endswith(CHAIN_SUFFIXES)}
        found["CHAINS"] = self.chains
        return found

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'chainsleuth.sqlite3').resolve()}"

    @property
    def chosen_platform(self) -> str:
        """`auto` picks the platform whose credentials are configured, else the console."""
        if self.platform != "auto":
            return self.platform
        if self.telegram_bot_token:
            return "telegram"
        if self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token):
            return "slack"
        return "console"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
