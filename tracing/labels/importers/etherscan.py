"""Etherscan-family explorer tags (brianleect/etherscan-labels `combinedAllLabels.json`) → chain-specific labels.

The file maps an address to the explorer's name tag and label slugs. Only slugs that say what an address *is*
become labels: exchanges, bridges, mixers, exploiters/heists/phishing, gambling and DeFi protocols. Everything else
(`meme`, `token-sale`, `take-action`, ...) is left out, and so are `blocked` and `ofac-sanctions-lists` (see
`classify`). The chain comes from the explorer named in the file's path (`bscscan_…` → bsc).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tracing.chain import is_address
from tracing.errors import InvalidArgument
from tracing.labels.importers import LabelImport, register
from tracing.labels.importers.tornado import is_mixing_contract
from tracing.labels.model import Category, Label, LabelSet

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "etherscan"
BUNDLED_JSON = BUNDLED_DIR / "etherscan_combinedAllLabels.subset.json"
BUNDLED_VERSION = "brianleect/etherscan-labels 923aba7, Etherscan scraped 2023-06-18 (mapped subset)"
REPO_URL = "https://github.com/brianleect/etherscan-labels"
LICENCE = "MIT (brianleect/etherscan-labels)"
CONFIDENCE = 0.9
"""An explorer's own name tag: reliable, but not a first-hand attribution."""


@dataclass(frozen=True)
class Explorer:
    source: str
    chain: str
    address_url: str


EXPLORERS: dict[str, Explorer] = {
    "etherscan": Explorer("etherscan", "eth", "https://etherscan.io/address/{}"),
    "bscscan": Explorer("bscscan", "bsc", "https://bscscan.com/address/{}"),
    "polygonscan": Explorer("polygonscan", "polygon", "https://polygonscan.com/address/{}"),
    "arbiscan": Explorer("arbiscan", "arbitrum", "https://arbiscan.io/address/{}"),
    "optimism": Explorer("optimistic-etherscan", "optimism", "https://optimistic.etherscan.io/address/{}"),
    "ftmscan": Explorer("ftmscan", "fantom", "https://ftmscan.com/address/{}"),
    "avalanche": Explorer("snowtrace", "avalanche", "https://snowtrace.io/address/{}"),
    "snowtrace": Explorer("snowtrace", "avalanche", "https://snowtrace.io/address/{}"),
}
"""Explorer name as it appears in the scrape's paths (`data/<explorer>/…` or `<explorer>_combinedAllLabels.json`)."""

EXCHANGES: dict[str, str] = {
    "binance": "Binance",
    "binance-deposit": "Binance",
    "coinbase": "Coinbase",
    "kraken": "Kraken",
    "huobi": "Huobi",
    "okx": "OKX",
    "bitfinex": "Bitfinex",
    "kucoin": "KuCoin",
    "crypto-com": "Crypto.com",
    "gemini": "Gemini",
    "bitstamp": "Bitstamp",
    "ftx": "FTX",
    "gate-io": "Gate.io",
    "poloniex": "Poloniex",
    "bithumb": "Bithumb",
    "upbit": "Upbit",
    "korbit": "Korbit",
    "coinone": "Coinone",
    "coinsquare": "Coinsquare",
    "maskex": "MaskEX",
    "bittrex": "Bittrex",
    "hitbtc": "HitBTC",
    "bitmart": "BitMart",
    "ascendex": "AscendEX",
    "deribit": "Deribit",
    "bitmex": "BitMEX",
    "hotbit": "Hotbit",
    "latoken": "LATOKEN",
    "digifinex": "DigiFinex",
    "paribu": "Paribu",
    "coinhako": "Coinhako",
    "hoo-com": "Hoo.com",
    "zb-com": "ZB.com",
    "remitano": "Remitano",
    "changenow": "ChangeNOW",
    "coinmetro": "CoinMetro",
    "coinlist": "CoinList",
    "tidex": "Tidex",
    "crex24": "CREX24",
    "cobinhood": "Cobinhood",
    "yunbi": "Yunbi",
    "quadrigacx": "QuadrigaCX",
    "bitcoin-suisse": "Bitcoin Suisse",
    "abcc": "ABCC",
    "bgogo": "Bgogo",
    "topbtc": "TopBTC",
    "allbit": "Allbit",
    "kryptono": "Kryptono",
    "coss-io": "COSS",
    "trade-io": "Trade.io",
    "lcx-ag": "LCX",
    "coinbit": "Coinbit",
    "canary-exchange": "Canary Exchange",
}
"""Exchange slugs → the exchange's name. `exchange` and `fiat-gateway` are generic: the name comes from the tag."""
GENERIC_EXCHANGE = frozenset({"exchange", "fiat-gateway"})

BRIDGE_PROTOCOLS = frozenset(
    {
        "wormhole",
        "hop-protocol",
        "across-protocol",
        "synapse",
        "celer-network",
        "connext",
        "axelar",
        "multichain",
        "anyswap",
        "optimism-bridge",
        "optics",
    }
)
"""Protocols whose bridge contracts are not always slugged `bridge`: only names that say bridge/router/... count."""
_BRIDGE_WORDS = re.compile(r"bridge|router|gateway|portal|pool|relay|messenger|spoke|hub|vault|escrow|custody", re.I)

DEFI = frozenset(
    {
        "dex",
        "defi",
        "amm",
        "uniswap",
        "sushiswap",
        "balancer",
        "bancor",
        "curve-fi",
        "aave",
        "1inch",
        "compound",
        "yearn-finance",
        "lido",
        "maker",
        "synthetix",
        "dydx",
        "0x-protocol",
        "kyberswap",
        "paraswap",
        "cow-protocol",
        "instadapp",
        "convex-finance",
        "rocket-pool",
        "airswap",
        "dex-ag",
        "idex",
        "tokenlon",
        "zapper-fi",
        "furucombo",
        "defi-saver",
        "mstable",
        "cream-finance",
        "idle-finance",
        "set-protocol",
        "liquity",
        "abracadabra-money",
        "alchemix-finance",
        "saddle-finance",
        "gearbox-protocol",
        "rari-capital",
        "pancakeswap",
        "quickswap",
        "trader-joe",
        "pangolin",
        "spookyswap",
        "spiritswap",
        "beethoven-x",
        "venus-protocol",
        "benqi-finance",
        "platypus-finance",
        "lyra-finance",
        "burgerswap",
        "bscswap",
    }
)
AMM_POOL_PROTOCOLS = frozenset({"sushiswap", "balancer", "bancor"})
"""Their scrape is mostly single liquidity pairs/pools (about 7,400): only the protocol's own contracts are kept."""
_PROTOCOL_CONTRACT = re.compile(
    r"router|factory|vault|chef|\bbar\b|maker|deployer|multisig|treasury|registry|govern|timelock|migrat|proxy"
    r"|staking|exchange|bentobox|kashi|furo|trident|distributor|reward|fee|helper|zap|vesting",
    re.IGNORECASE,
)
MIXERS = frozenset({"tornado-cash", "typhoon-cash", "ethereum-mixer"})
HACK_SLUGS = frozenset({"exploit", "heist"})
SCAM_SLUGS = frozenset({"phish-hack", "high-risk"})
"""`high-risk` is what Etherscan puts on Ponzi schemes (Forsage, EtherShare)."""

_HACK_NAME = re.compile(r"\b(Exploiter|Hacker|Attacker|Drainer)\b")
_PHISH_NAME = re.compile(r"^Fake_Phishing\d*$")
_TOKEN_NAME = re.compile(r"\([^()]*\)\s*$|\bToken\b|\bWrapped\b|\bCoin\b", re.I)
_PROTOCOL_PREFIXES = ("Uniswap",)


def _looks_like_token(name: str) -> bool:
    """`HuobiToken (HT)`, `USDT (Wormhole)`: token contracts, not the service's wallets or pools."""
    return bool(_TOKEN_NAME.search(name))


def _exchange_name(name: str, slugs: Iterable[str]) -> str | None:
    for slug in slugs:
        if slug in EXCHANGES:
            return EXCHANGES[slug]
    if GENERIC_EXCHANGE.intersection(slugs) and name:
        return re.sub(r"\s*\d+$", "", name.split(":")[0]).strip() or None
    return None


def classify(name: str, slugs: Iterable[str]) -> tuple[Category, str] | None:
    """The category an explorer tag means and the name to show, or None when the tag says nothing useful.

    Not mapped, on purpose:
    - `ofac-sanctions-lists`: sanctions come from OFAC's own list (`ofac-sdn`), which is authoritative and dated;
      an explorer's copy from 2023 would keep Tornado Cash "sanctioned" after its 2025 delisting.
    - `blocked` (an address frozen by a token issuer such as Tether or Circle): the freeze says an issuer acted, not
      why, and its reasons range from sanctions to hacks to court orders. As an `other` label it would turn an
      unknown address into LOW risk, which is worse than unknown; a blocked address whose tag names an exploiter or
      phishing still becomes hack/scam through its name.
    - `take-action`: Etherscan's "Multichain Hack Alert 123" tags mark *victims* who must revoke an approval.
    - token contracts of services, and single SushiSwap/Balancer/Bancor liquidity pairs (see AMM_POOL_PROTOCOLS).
    """
    slug_set = frozenset(slugs)
    if "take-action" in slug_set:
        return None
    if _PHISH_NAME.match(name):
        return Category.SCAM, name
    if slug_set & HACK_SLUGS or _HACK_NAME.search(name):
        return Category.HACK, name or "Etherscan: " + "/".join(sorted(slug_set & HACK_SLUGS))
    if slug_set & SCAM_SLUGS:
        return Category.SCAM, name or "Etherscan: " + "/".join(sorted(slug_set & SCAM_SLUGS))
    if slug_set & MIXERS:
        # A mixer's own token, governance and vesting contracts hold no depositor's coins (see tornado.py).
        tag = name or "mixer contract"
        mixing = is_mixing_contract(tag) if "tornado-cash" in slug_set else not _looks_like_token(tag)
        return (Category.MIXER if mixing else Category.OTHER), tag
    if name and _looks_like_token(name):
        return None
    exchange = _exchange_name(name, sorted(slug_set))
    if exchange:
        return Category.EXCHANGE, name or exchange
    if name and ("bridge" in slug_set or (slug_set & BRIDGE_PROTOCOLS and _BRIDGE_WORDS.search(name))):
        return Category.BRIDGE, name
    if name and "gambling" in slug_set:
        return Category.GAMBLING, name
    defi = slug_set & DEFI
    if defi and defi <= AMM_POOL_PROTOCOLS and not _PROTOCOL_CONTRACT.search(name):
        return None  # one liquidity pair among thousands: the protocol is known, the pool adds little
    if name and (defi or name.startswith(_PROTOCOL_PREFIXES)):
        return Category.DEFI, name
    return None


def explorer_for(path: Path) -> Explorer:
    """The explorer a scrape file belongs to, from its name or its folder (`data/bscscan/combined/…`)."""
    for part in reversed(path.resolve().parts):
        for key, explorer in EXPLORERS.items():
            if part.lower().startswith(key):
                return explorer
    known = ", ".join(sorted(EXPLORERS))
    raise InvalidArgument(f"{path.name}: cannot tell the explorer; name the file like <explorer>_… ({known}).")


@dataclass(frozen=True)
class ExplorerTag:
    """One address's entry in a scrape: the explorer's name tag (may be empty) and its label slugs."""

    name: str
    labels: tuple[str, ...]


def load_combined(path: Path) -> dict[str, ExplorerTag]:
    """The JSON object, addresses lower-cased; entries that differ only by address case are merged."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{path.name}: not a readable JSON file ({exc.__class__.__name__}).") from exc
    if not isinstance(raw, dict):
        raise InvalidArgument(f"{path.name}: expected a JSON object of address → {{name, labels}}.")
    merged: dict[str, ExplorerTag] = {}
    for address, entry in raw.items():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("labels") or [], list):
            raise InvalidArgument(f"{path.name}: entry {str(address)[:50]} is not {{name, labels: [...]}}.")
        key = str(address).strip().lower()
        known = merged.get(key, ExplorerTag("", ()))
        name = known.name or str(entry.get("name") or "").strip()
        labels = tuple(sorted({*known.labels, *(str(s) for s in entry.get("labels") or [])}))
        merged[key] = ExplorerTag(name, labels)
    return merged


def subset(combined: Mapping[str, ExplorerTag]) -> dict[str, ExplorerTag]:
    """The entries `classify` turns into labels, sorted by address: what the bundled copy holds."""
    return {
        address: tag
        for address, tag in sorted(combined.items())
        if is_address(address) and classify(tag.name, tag.labels) is not None
    }


def write_subset(combined: Mapping[str, ExplorerTag], path: Path) -> int:
    """Write `subset(combined)` in the scrape's own format, one address per line (readable diffs)."""
    kept = subset(combined)
    lines = [
        f"  {json.dumps(address)}: {json.dumps({'name': tag.name, 'labels': list(tag.labels)}, ensure_ascii=False)}"
        for address, tag in kept.items()
    ]
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n", encoding="utf-8")
    return len(kept)


def read_combined(path: Path, explorer: Explorer, version: str | None = None) -> LabelImport:
    labels, skipped = [], 0
    for address, tag in load_combined(path).items():
        found = classify(tag.name, tag.labels) if is_address(address) else None
        if found is None:
            skipped += 1
            continue
        category, shown = found
        details: dict[str, object] = {"explorer_tag": tag.name, "explorer_labels": list(tag.labels)}
        if category is Category.EXCHANGE:
            details["exchange"] = _exchange_name(tag.name, tag.labels) or shown
        labels.append(
            Label(
                address=address,
                category=category,
                name=shown,
                source=explorer.source,
                source_url=explorer.address_url.format(address),
                confidence=CONFIDENCE,
                chain=explorer.chain,
                details=details,
            )
        )
    label_set = LabelSet(explorer.source, version or path.name, REPO_URL, LICENCE)
    notes = [f"{skipped} addresses without a mapped label skipped", f"chain {explorer.chain}"]
    return LabelImport(label_set=label_set, labels=labels, skipped=skipped, notes=notes)


@register("etherscan")
def read_etherscan(path: Path, version: str | None = None) -> LabelImport:
    """`labels import FILE --format etherscan`: one explorer's `combinedAllLabels.json` (Etherscan, BscScan,
    PolygonScan, Arbiscan, Optimism, FtmScan, Snowtrace); the explorer, and so the chain, from the file's path."""
    if path.is_dir():
        raise InvalidArgument(f"{path.name} is a folder; give one explorer's combinedAllLabels.json.")
    return read_combined(path, explorer_for(path), version)
