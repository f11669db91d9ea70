"""The front ends: chat platforms and the console, the command grammar and handlers, rendering at the edge, alert
delivery, the HTTP servers and the command line. Nothing imports `bot`; it imports `tracing` and `storage` only
through their `__init__`."""

from bot.app import App, build_app
from bot.core import Bot

__all__ = ["App", "Bot", "build_app"]
