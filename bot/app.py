"""Assembling a running chainsleuth from settings: store, labels, tracing, command registry, bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core import Bot
from bot.handlers import build_registry
from storage import Database, Settings, open_database
from tracing import (
    Investigator,
    configured_explorers,
    configured_token_readers,
    ensure_bundled_labels,
    ensure_demo_data,
    price_api_from_settings,
    retro_alert_hook,
)

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    db: Database
    investigator: Investigator
    bot: Bot

    def close(self) -> None:
        self.db.dispose()


def build_app(settings: Settings, *, database_url: str | None = None) -> App:
    db = open_database(database_url or settings.effective_database_url)
    investigator = Investigator(
        db,
        default_chain=settings.default_chain,
        explorers=configured_explorers(),
        token_readers=configured_token_readers(),
        price_api=price_api_from_settings(settings),
        explorer_budget=settings.explorer_budget,
    )
    investigator.labels.hooks.append(retro_alert_hook(db))  # new risk labels reach watchers and /risk askers
    ensure_bundled_labels(investigator.labels)
    if settings.demo_data:
        ensure_demo_data(db)  # first run: the Ronin-hack demo flows, so /risk and /trace have data to show
    bot = Bot(settings, db, investigator, build_registry())
    return App(settings=settings, db=db, investigator=investigator, bot=bot)
