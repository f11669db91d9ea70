"""OFAC SDN digital-currency addresses → sanctions labels on every EVM chain, on TRON and on bitcoin, with their
listing history.

Reads the per-(asset, address, SDN profile) CSV derived from `sdn_advanced.xml`. EVM-shaped addresses (ETH,
USDT/USDC on Ethereum, ARB, BSC, ETC, ...) become labels on every EVM chain; TRON addresses (TRX, and USDT-TRC20
listed under USDT), checked against their Base58Check checksum, become labels of chain `tron` only; bitcoin
addresses listed under XBT, checked against their checksum, become labels of chain `btc` only (never matched on
another family's chain). Other assets (Litecoin, Bitcoin Cash, Monero, ...) are counted and skipped; a legacy `1…`
address listed under BCH or BSV is not a bitcoin label.

A list is the whole SDN list of its date, so an address that an earlier list carried and this one does not was
delisted: it stays, as a sanctions label with `delisted_on` set, so that `/risk` can say it *was* sanctioned. The
earlier lists are the 2024-09-27 snapshot and, for an imported list newer than it, the bundled 2025-11-19 list.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from functools import cache
from pathlib import Path

from storage import ANY_EVM
from tracing.chain import Family, family_of, is_address, parse_address
from tracing.errors import InvalidArgument, UserError
from tracing.labels.importers import LabelImport, register
from tracing.labels.importers.tornado import tornado_addresses
from tracing.labels.model import Category, Label, LabelSet

SOURCE = "ofac-sdn"
SOURCE_URL = "https://sanctionssearch.ofac.treas.gov/"
PROFILE_URL = "https://sanctionssearch.ofac.treas.gov/Details.aspx?id={}"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "ofac"
BUNDLED_CSV = BUNDLED_DIR / "sdn_digital_currency_addresses.csv"
BUNDLED_LIST_DATE = date(2025, 11, 19)
SNAPSHOT_DIR = BUNDLED_DIR / "snapshot-2024-09-27"
SNAPSHOT_DATE = date(2024, 9, 27)
SNAPSHOT_URL = (
    "https://github.com/0xB10C/ofac-sanctioned-digital-currency-addresses/tree/f2aee2265956bf28ce71824c2c2c8cab02c2e173"
)
LICENCE = "U.S. government publication"
TRON_CHAIN = "tron"
"""The chain a TRON address's label belongs to: TRON labels never match an EVM chain's lookups, nor EVM ones TRON's."""
BTC_CHAIN = "btc"
"""The chain a bitcoin address's label belongs to (labels of chain `btc` match on every configured bitcoin chain)."""
BTC_ASSET = "XBT"
COLUMNS = ("asset", "address", "sdn_profile_id", "sdn_primary_name", "party_type", "programs", "entity_first_listed")

# Treasury removed Tornado Cash (and with it every one of its contract addresses) from the SDN list on 2025-03-21,
# after the Fifth Circuit's ruling in Van Loon v. Department of the Treasury. For a Tornado address that date is
# documented; for any other address missing from a later list we only know it was "not listed by" that list's date.
TORNADO_DELISTED_ON = date(2025, 3, 21)
TORNADO_NAME = "Tornado Cash"
UNKNOWN_DELISTED_NAME = "OFAC SDN (delisted)"

_ISO_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")

ADDRESS_LISTINGS_CSV = BUNDLED_DIR / "address_listings.csv"
"""The day OFAC added an address, where a Treasury notice documents it (the SDN list dates only the entity)."""


@cache
def address_listings() -> dict[str, tuple[date, str]]:
    """Address (stored form, see `label_key`) → (the day OFAC listed it, the notice that says so)."""
    with ADDRESS_LISTINGS_CSV.open(newline="", encoding="utf-8") as handle:
        return {
            key: (date.fromisoformat(row["listed_on"].strip()), row["source_url"].strip())
            for row in csv.DictReader(handle)
            if (key := label_key(row["address"]) or label_key(row["address"], BTC_ASSET)) is not None
        }


@dataclass(frozen=True)
class EarlierList:
    """An earlier SDN list: its date, and its EVM addresses with the entity name where the list has one."""

    listed_on: date
    description: str
    names: dict[str, str]
    source_url: str


def label_key(text: str, asset: str = "") -> str | None:
    """The stored form of an address the SDN list carries under `asset`, or None for one we do not label: an EVM
    address in lower case, a TRON address as its `T…` Base58Check form (case-sensitive; its checksum must hold);
    under XBT, a bitcoin mainnet address in its canonical form (its checksum must hold)."""
    raw = text.strip()
    if is_address(raw):
        return raw.lower()
    if raw[:1] == "T" and len(raw) == 34:
        try:
            found = parse_address(raw)
        except UserError:
            return None
        return found if family_of(found) is Family.TRON else None
    if asset.strip().upper() != BTC_ASSET:
        return None
    try:
        found = parse_address(raw)
    except UserError:
        return None
    return found if family_of(found) is Family.BTC else None


def chain_of(key: str) -> str:
    """The label chain of a stored address: `tron` for a TRON address, `btc` for a bitcoin one, every EVM chain
    otherwise."""
    family = family_of(key)
    if family is Family.TRON:
        return TRON_CHAIN
    return BTC_CHAIN if family is Family.BTC else ANY_EVM


def _snapshot_addresses(directory: Path) -> set[str]:
    found: set[str] = set()
    if not directory.is_dir():
        return found
    for path in directory.glob("sanctioned_addresses_*.txt"):
        asset = path.stem.removeprefix("sanctioned_addresses_")
        for line in path.read_text(encoding="utf-8").splitlines():
            key = label_key(line, asset)
            if key is not None:
                found.add(key)
    return found


@cache
def _snapshot() -> EarlierList:
    names = dict.fromkeys(_snapshot_addresses(SNAPSHOT_DIR), "")
    return EarlierList(SNAPSHOT_DATE, f"{SNAPSHOT_DATE.isoformat()} snapshot", names, SNAPSHOT_URL)


@cache
def _bundled_list() -> EarlierList:
    rows = _read_rows(BUNDLED_CSV)[0]
    names = {address: str(row["sdn_primary_name"]) for address, row in rows.items()}
    return EarlierList(BUNDLED_LIST_DATE, f"{BUNDLED_LIST_DATE.isoformat()} list", names, SOURCE_URL)


def earlier_lists(before: date) -> list[EarlierList]:
    """The lists we hold that are older than `before`, oldest first."""
    candidates = [_snapshot(), _bundled_list()] if before > BUNDLED_LIST_DATE else [_snapshot()]
    return [lst for lst in candidates if lst.listed_on < before and lst.names]


def _read_rows(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, set[str]], int]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        by_address: dict[str, dict[str, str]] = {}
        assets: dict[str, set[str]] = defaultdict(set)
        skipped = 0
        for row in reader:
            key = label_key(row["address"] or "", row["asset"] or "")
            if key is None:
                skipped += 1
                continue
            assets[key].add(row["asset"].strip())
            by_address.setdefault(key, row)
    return by_address, assets, skipped


def _delisted_labels(current: set[str], list_date: date) -> list[Label]:
    """Addresses of earlier lists that `current` (the list of `list_date`) no longer carries."""
    tornado = tornado_addresses()
    earlier = earlier_lists(list_date)
    gone = sorted({address for lst in earlier for address in lst.names} - current)
    labels = []
    for address in gone:
        holding = [lst for lst in earlier if address in lst.names]
        first, last = holding[0], holding[-1]
        entity = next((lst.names[address] for lst in reversed(holding) if lst.names[address]), "")
        is_tornado = address in tornado
        documented = is_tornado and last.listed_on < TORNADO_DELISTED_ON <= list_date
        details: dict[str, object] = {
            "listed_on": first.listed_on.isoformat(),
            "last_listed_on": last.listed_on.isoformat(),
            "absent_from": list_date.isoformat(),
            "note": f"listed on {first.description}, absent from {list_date.isoformat()} list",
            "delisting_date": "documented (Tornado Cash, 2025-03-21)" if documented else "not listed by",
        }
        labels.append(
            Label(
                address=address,
                category=Category.SANCTIONS,
                name=entity or (TORNADO_NAME if is_tornado else UNKNOWN_DELISTED_NAME),
                source=SOURCE,
                source_url=last.source_url,
                confidence=1.0,
                chain=chain_of(address),
                delisted_on=TORNADO_DELISTED_ON if documented else list_date,
                details=details,
            )
        )
    return labels


def list_version(list_date: date, path: Path) -> str:
    """`SDN 2025-11-19 EVM+TRON (file.csv) + history from 2024-09-27 + 1 dated`: what a loaded list is, for
    `label_set.version` (a new wording makes stores holding the older bundle load this one)."""
    earlier = ", ".join(e.listed_on.isoformat() for e in earlier_lists(list_date))
    dated = f" + {len(address_listings())} dated"  # the store keeps 120 characters
    history = f" + history from {earlier}" if earlier else ""
    return f"SDN {list_date.isoformat()} EVM+TRON+BTC ({path.name}){history}{dated}"


def read_ofac_csv(path: Path, list_date: date | None = None) -> LabelImport:
    """Parse the SDN address CSV. Raises `InvalidArgument` naming the file and line on a malformed file."""
    list_date = list_date or BUNDLED_LIST_DATE
    by_address, assets, skipped = _read_rows(path)
    earlier = earlier_lists(list_date)
    labels = []
    for key, row in by_address.items():
        first = str(row.get("entity_first_listed") or "")
        details: dict[str, object] = {
            "sdn_profile_id": row["sdn_profile_id"],
            "programs": str(row["programs"]).split(";") if row["programs"] else [],
            "party_type": row["party_type"],
            "assets": sorted(assets[key]),
            "list_date": list_date.isoformat(),
        }
        listed_by = [e.listed_on for e in earlier if key in e.names]
        if listed_by:
            details["listed_by"] = min(listed_by).isoformat()
        dated = address_listings().get(key)
        if dated is not None:
            details["address_listed"], details["address_listed_source"] = dated[0].isoformat(), dated[1]
        labels.append(
            Label(
                address=key,
                category=Category.SANCTIONS,
                name=str(row["sdn_primary_name"]),
                source=SOURCE,
                source_url=PROFILE_URL.format(row["sdn_profile_id"]),
                confidence=1.0,
                chain=chain_of(key),
                first_seen=date.fromisoformat(first) if first else None,
                details=details,
            )
        )
    delisted = _delisted_labels(set(by_address), list_date)
    label_set = LabelSet(source=SOURCE, version=list_version(list_date, path), source_url=SOURCE_URL, licence=LICENCE)
    tron = sum(1 for key in by_address if chain_of(key) == TRON_CHAIN)
    bitcoin = sum(1 for key in by_address if chain_of(key) == BTC_CHAIN)
    notes = [
        f"{tron} TRON addresses",
        f"{bitcoin} bitcoin addresses",
        f"{skipped} rows of other chains (Litecoin, Monero, ...) skipped",
    ]
    if delisted:
        notes.append(f"{len(delisted)} addresses of earlier lists kept as delisted")
    return LabelImport(label_set=label_set, labels=labels + delisted, skipped=skipped, notes=notes)


def _list_date(path: Path, version: str | None) -> date:
    for text in (version or "", path.name):
        found = _ISO_DATE.search(text)
        if found:
            try:
                return date.fromisoformat(found.group(1))
            except ValueError as exc:
                raise InvalidArgument(f"“{found.group(1)}” is not a date (YYYY-MM-DD).") from exc
    return BUNDLED_LIST_DATE if path.resolve() == BUNDLED_CSV else date.today()


@register("ofac")
def read_ofac(path: Path, version: str | None = None) -> LabelImport:
    """`labels import FILE --format ofac`: the SDN address CSV. The list date is the first YYYY-MM-DD in
    `--version`, else in the file name, else today."""
    if path.is_dir():
        raise InvalidArgument(f"{path.name} is a folder; give the SDN address CSV.")
    result = read_ofac_csv(path, _list_date(path, version))
    if version:
        return replace(result, label_set=replace(result.label_set, version=version))
    return result
