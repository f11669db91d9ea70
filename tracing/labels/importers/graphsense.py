"""GraphSense's vocabulary, for reading its public TagPacks with the TagPack importer: concepts (`category`,
`abuse`) mapped to our categories, confidence ids to numbers, currencies to our chains.

From `graphsense/graphsense-tagpack-tool` (MIT, Copyright 2021 Austrian Institute of Technology GmbH):
`src/tagpack/db/concepts.yaml` and `src/tagpack/db/confidence.csv`, copied in `tracing/labels/data/graphsense/`.
A concept without a category here (terrorism, human trafficking, ...) is refused by name, so that a pack using it
is mapped by a person rather than guessed. The abuse `sanction` makes no sanctions label: sanctions come from
OFAC's own list only (which dates listings and delistings); the tag keeps its entity's category and says
`abuse: sanction` in its details.
"""

from __future__ import annotations

from collections.abc import Mapping

from tracing.labels.model import ANY_BTC, Category

GRAPHSENSE_URL = "https://github.com/graphsense/graphsense-tagpacks"

CONFIDENCE: Mapping[str, float] = {
    "override": 1.0,
    "ownership": 1.0,
    "ledger_immanent": 1.0,
    "manual_transaction": 0.9,
    "service_api": 0.7,
    "forensic_investigation": 0.7,
    "authority_data": 0.6,
    "trusted_provider": 0.5,
    "service_data": 0.5,
    "forensic": 0.5,
    "untrusted_transaction": 0.4,
    "web_crawl": 0.2,
    "heuristic": 0.1,
    "unknown": 0.05,
}
"""GraphSense confidence id → its level (confidence.csv, 5–100) as our 0..1 confidence."""

CONCEPTS: Mapping[str, Category] = {
    "ransomware": Category.RANSOMWARE,
    "mixing": Category.MIXER,
    "mixing_service": Category.MIXER,
    "coinjoin": Category.MIXER,
    "market": Category.DARKNET,
    "dark_web": Category.DARKNET,
    "drugs": Category.DARKNET,
    "weapons": Category.DARKNET,
    "counterfeit": Category.DARKNET,
    "payment_card_fraud": Category.DARKNET,
    "scam": Category.SCAM,
    "financial_crime": Category.SCAM,
    "investment_fraud": Category.SCAM,
    "ponzi_scheme": Category.SCAM,
    "pyramid_scheme": Category.SCAM,
    "extortion": Category.SCAM,
    "sextortion": Category.SCAM,
    "phishing": Category.SCAM,
    "social_engineering": Category.SCAM,
    "hacking": Category.HACK,
    "service_hack": Category.HACK,
    "account_hack": Category.HACK,
    "exploit": Category.HACK,
    "data_breach": Category.HACK,
    "malware": Category.HACK,
    "gambling": Category.GAMBLING,
    "exchange": Category.EXCHANGE,
    "atm": Category.EXCHANGE,
    "defi_bridge": Category.BRIDGE,
    "defi": Category.DEFI,
    "defi_token": Category.DEFI,
    "defi_lending": Category.DEFI,
    "defi_dex": Category.DEFI,
    "defi_dex_pair": Category.DEFI,
    "defi_derivatives": Category.DEFI,
    "defi_dao": Category.DEFI,
    "defi_staking": Category.DEFI,
    "defi_custody": Category.DEFI,
    **dict.fromkeys(
        (
            "unknown",
            "user",
            "organization",
            "entity",
            "service",
            "wallet_service",
            "escrow_wallet",
            "ico_wallet",
            "cold_wallet",
            "hot_wallet",
            "warm_wallet",
            "miner",
            "mining_service",
            "shop",
            "faucet",
            "payment_processor",
            "hosting",
            "vpn",
            "nameservice",
            "donation",
            "filesharing",
            "messaging_service",
            "search_engine",
            "index",
            "victim",
            "black_list",
            "collectible",
            "item",
        ),
        Category.OTHER,
    ),
}
"""GraphSense concept id → our category (an abuse concept wins over the entity's category)."""

CURRENCIES: Mapping[str, str | None] = {"BTC": ANY_BTC, "ETH": None}
"""GraphSense currency → our label chain (None: the pack's or tag's chain, else every EVM chain). Tags of other
currencies are skipped and counted."""


SANCTION = "sanction"
"""The abuse that is recorded, not mapped (see the module docstring)."""


def category_of(concept: str) -> Category | None:
    return CONCEPTS.get(concept.strip().lower())


def confidence_of(text: str) -> float | None:
    return CONFIDENCE.get(text.strip().lower())
