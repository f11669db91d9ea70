"""OFAC SDN digital-currency addresses → sanctions labels on every EVM chain.

Reads the per-(asset, address, SDN profile) CSV derived from `sdn_advanced.xml`. Only EVM-shaped addresses
(ETH, USDT/USDC on Ethereum, ARB, BSC, ETC, ...) become labels; TRON, Bitcoin and the rest are counted and skipped.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from pathlib import Path

from tracing.address import is_address
from tracing.errors import InvalidArgument
from tracing.importers import LabelImport, register
from tracing.labels import Category, Label, LabelSet

SOURCE = "ofac-sdn"
SOURCE_URL = "https://sanctionssearch.ofac.treas.gov/"
PROFILE_URL = "https://sanctionssearch.ofac.treas.gov/Details.aspx?id={}"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "ofac"
BUNDLED_CSV = BUNDLED_DIR / "sdn_digital_currency_addresses.csv"
BUNDLED_LIST_DATE = date(2025, 11, 19)
SNAPSHOT_DIR = BUNDLED_DIR / "snapshot-2024-09-27"
SNAPSHOT_DATE = date(2024, 9, 27)
COLUMNS = ("asset", "address", "sdn_profile_id", "sdn_primary_name", "party_type", "programs", "entity_first_listed")


def _snapshot_addresses(directory: Path) -> set[str]:
    found: set[str] = set()
    if not directory.is_dir():
        return found
    for path in directory.glob("sanctioned_addresses_*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if is_address(line):
                found.add(line.strip().lower())
    return found


def read_ofac_csv(path: Path, list_date: date | None = None) -> LabelImport:
    """Parse the SDN address CSV. Raises `InvalidArgument` naming the file and line on a malformed file."""
    list_date = list_date or BUNDLED_LIST_DATE
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        by_address: dict[str, dict[str, object]] = {}
        assets: dict[str, set[str]] = defaultdict(set)
        skipped = 0
        for row in reader:
            address = (row["address"] or "").strip()
            if not is_address(address):
                skipped += 1
                continue
            key = address.lower()
            assets[key].add(row["asset"].strip())
            if key in by_address:
                continue
            by_address[key] = row  # type: ignore[assignment]
    earlier = _snapshot_addresses(SNAPSHOT_DIR)
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
        if key in earlier:
            details["listed_by"] = SNAPSHOT_DATE.isoformat()
        labels.append(
            Label(
                address=key,
                category=Category.SANCTIONS,
                name=str(row["sdn_primary_name"]),
                source=SOURCE,
                source_url=PROFILE_URL.format(row["sdn_profile_id"]),
                confidence=1.0,
                first_seen=date.fromisoformat(first) if first else None,
                details=details,
            )
        )
    label_set = LabelSet(
        source=SOURCE,
        version=f"SDN {list_date.isoformat()} ({path.name})",
        source_url=SOURCE_URL,
        licence="U.S. government publication",
    )
    return LabelImport(label_set=label_set, labels=labels, skipped=skipped, notes=[f"{skipped} non-EVM rows skipped"])


@register("ofac")
def read_ofac(path: Path) -> LabelImport:
    """`labels import FILE --format ofac`: the SDN address CSV; the list date is taken from `--version` or today."""
    return read_ofac_csv(path)
