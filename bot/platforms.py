"""Starting a chat platform front end by name (the adapters live in `bot.backends`)."""

from __future__ import annotations

from bot.app import App
from bot.backends.base import Backend


def backend_for(name: str, app: App) -> Backend:
    """The adapter for `name` over the app's bot; a configuration that cannot work stops here with the reason."""
    if name == "telegram":
        from bot.backends.telegram import TelegramBackend, TelegramSetupError

        try:
            return TelegramBackend(app.bot, app.settings)
        except TelegramSetupError as exc:
            raise SystemExit(f"error: cannot start telegram: {exc}") from exc
    if name == "slack":
        from bot.backends.slack import SlackBackend, SlackSetupError

        try:
            return SlackBackend(app.bot, app.settings)
        except SlackSetupError as exc:
            raise SystemExit(f"error: cannot start slack: {exc}") from exc
    raise SystemExit(f"error: unknown platform {name!r}; use console, telegram or slack")


def sending_backend(name: str, app: App) -> Backend:
    """The adapter for `name` for posting and editing alerts only (`chainsleuth watch`, while `chainsleuth run` may be
    answering commands with the same credentials): Telegram without polling (initialize its `application` before
    sending), Slack as its Web API client alone — no HTTP server, no Socket Mode, so only SLACK_BOT_TOKEN is needed."""
    if name == "slack":
        from bot.backends.slack import SlackBackend, SlackSetupError

        try:
            return SlackBackend(app.bot, app.settings, send_only=True)
        except SlackSetupError as exc:
            raise SystemExit(f"error: cannot send to slack: {exc}") from exc
    return backend_for(name, app)
