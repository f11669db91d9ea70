"""Assembling a running chainsleuth from settings: store, labels, tracing, command registry, bot."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core import Bot
from bot.handlers import build_registry
from storage import Database, Settings, open_database
from tracing import (
    DEFAULT_POLICY,
    IncidentDesk,
    Investigator,
    RiskPolicy,
    WatchBook,
    configured_explorers,
    configured_token_readers,
    ensure_bundled_labels,
    ensure_demo_data,
    price_api_from_settings,
    retro_alert_hook,
    use_chain_variables,
)

log = logging.getLogger(__name__)


@dataclass
class App:
    settings: Settings
    db: Database
    investigator: Investigator
    incidents: IncidentDesk
    watches: WatchBook
    bot: Bot

    def close(self) -> None:
        self.db.dispose()


def risk_policy(settings: Settings) -> RiskPolicy:
    """The risk policy with the configured dust floor (the rest: `RiskPolicy` defaults)."""
    units = {**DEFAULT_POLICY.dust_units, "ETH": settings.risk_dust_eth, "WETH": settings.risk_dust_eth}
    return RiskPolicy(dust_usd=settings.risk_dust_usd, dust_units=units)


def build_app(settings: Settings, *, database_url: str | None = None) -> App:
    db = open_database(database_url or settings.effective_database_url)
    chain_variables = settings.chain_variables()
    use_chain_variables(chain_variables)
    investigator = Investigator(
        db,
        default_chain=settings.default_chain,
        explorers=configured_explorers(chain_variables),
        token_readers=configured_token_readers(chain_variables),
        price_api=price_api_from_settings(settings),
        policy=risk_policy(settings),
        explorer_budget=settings.explorer_budget,
    )
    investigator.labels.hooks.append(retro_alert_hook(db))  # new risk labels reach watchers and /risk askers
    ensure_bundled_labels(investigator.labels)
    if settings.demo_data:
        ensure_demo_data(db)  # first run: the Ronin-hack demo flows, so /risk and /trace have data to show
    incidents, watches = IncidentDesk(db), WatchBook(db)
    bot = Bot(settings, db, investigator, build_registry(), incidents=incidents, watches=watches)
    return App(settings=settings, db=db, investigator=investigator, incidents=incidents, watches=watches, bot=bot)
