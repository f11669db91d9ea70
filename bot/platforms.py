"""Starting a chat platform front end by name (Telegram and Slack adapters live in `bot.backends`)."""

from __future__ import annotations

from bot.app import App


async def serve_platform(name: str, app: App) -> None:
    raise SystemExit(f"the {name} front end is not available in this build yet")
