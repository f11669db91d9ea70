"""Logging for operators: plain or JSON lines, with secrets (tokens, passwords in URLs) redacted."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from storage import Settings

_PATTERNS = [
    re.compile(r"(xox[abpr]-[A-Za-z0-9-]{8,})"),  # Slack bot/user tokens
    re.compile(r"(xapp-[A-Za-z0-9-]{8,})"),  # Slack app tokens
    re.compile(r"\b(\d{6,12}:[A-Za-z0-9_-]{30,})\b"),  # Telegram bot tokens
    re.compile(r"(?<=://)([^:/@\s]+:[^@/\s]+)(?=@)"),  # user:password@ in URLs
    re.compile(r"(?i)(?<=apikey=)([A-Za-z0-9]{8,})"),  # explorer API keys in query strings
]


class Redactor:
    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        for pattern in _PATTERNS:
            text = pattern.sub("***", text)
        return text


def settings_secrets(settings: Settings) -> list[str]:
    return [
        settings.telegram_bot_token,
        settings.telegram_webhook_secret,
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.slack_app_token,
        # explorer and TronGrid keys (`<NAME>_EXPLORER_KEY`, `<NAME>_API_KEY`)
        *(value for key, value in settings.chain_variables().items() if key.upper().endswith("_KEY")),
    ]


class RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor, as_json: bool) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        if not self.as_json:
            return self.redactor(super().format(record))
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for key in ("ref", "chain", "block", "chat", "command"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        return self.redactor(json.dumps(entry, default=str, ensure_ascii=False))


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(Redactor(settings_secrets(settings)), settings.log_json))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    for noisy in ("httpx", "httpcore", "alembic", "telegram.ext", "slack_bolt", "web3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
