"""The store: settings, tables, sessions and migrations. Imports neither `tracing` nor `bot`."""

from storage.db import Database, open_database
from storage.settings import Settings, get_settings

__all__ = ["Database", "Settings", "get_settings", "open_database"]
