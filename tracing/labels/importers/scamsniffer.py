"""ScamSniffer's phishing blacklist (scamsniffer/scam-database) → scam labels on every EVM chain.

Import only: the database is GPL-3.0, so chainsleuth (MIT) neither bundles nor copies it. An operator downloads it
and runs `chainsleuth labels import scam-database/blacklist --format scamsniffer`. Two files are understood:
`address.json` (a JSON array of addresses) and `combined.json` (phishing domain → the addresses it used); the
domains of an address go into the label's details.
"""

from __future__ import annotations

import json
from pathlib import Path

from storage import ANY_EVM
from tracing.chain import is_address
from tracing.errors import InvalidArgument
from tracing.labels.importers import LabelImport, register
from tracing.labels.model import Category, Label, LabelSet

SOURCE = "scamsniffer"
REPO_URL = "https://github.com/scamsniffer/scam-database"
LICENCE = "GPL-3.0 (imported locally, not redistributed)"
CONFIDENCE = 0.8
"""Automated drainer/phishing detection by a specialised vendor; the public copy lags by 7 days."""
ADDRESS_FILE = "address.json"
COMBINED_FILE = "combined.json"
MAX_DOMAINS = 20
"""Domains kept per address in details (some drainer addresses served hundreds of sites)."""


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"{path.name}: not a readable JSON file ({exc.__class__.__name__}).") from exc


def _collect(path: Path, domains: dict[str, set[str]]) -> tuple[str, int, int]:
    """Add one file's addresses (with their domains, for combined.json) to `domains`: (kind, rows, skipped)."""
    data = _load(path)
    skipped = 0
    if isinstance(data, list):
        for item in data:
            if isinstance(item, str) and is_address(item):
                domains.setdefault(item.strip().lower(), set())
            else:
                skipped += 1
        return "addresses", len(data), skipped
    if isinstance(data, dict):
        for domain, addresses in data.items():
            if not isinstance(addresses, list):
                raise InvalidArgument(f"{path.name}: domain {str(domain)[:60]} does not map to a list of addresses.")
            for item in addresses:
                if isinstance(item, str) and is_address(item):
                    domains.setdefault(item.strip().lower(), set()).add(str(domain).strip().lower())
                else:
                    skipped += 1
        return "domains", len(data), skipped
    raise InvalidArgument(f"{path.name}: expected a JSON array of addresses or an object of domain → addresses.")


def _name(found: set[str]) -> str:
    if not found:
        return "ScamSniffer: phishing address"
    first = sorted(found)[0]
    more = f" +{len(found) - 1} more" if len(found) > 1 else ""
    return f"ScamSniffer: phishing address ({first}{more})"


@register("scamsniffer")
def read_scamsniffer(path: Path, version: str | None = None) -> LabelImport:
    """`labels import PATH --format scamsniffer`: the `blacklist/` folder (address.json and combined.json), or one of
    the two files. Both files feed the one `scamsniffer` set, so import the folder to keep both."""
    if path.is_dir():
        paths = [p for p in (path / ADDRESS_FILE, path / COMBINED_FILE) if p.is_file()]
        if not paths:
            raise InvalidArgument(f"{path.name}: neither {ADDRESS_FILE} nor {COMBINED_FILE} is in this folder.")
    else:
        paths = [path]
    domains: dict[str, set[str]] = {}
    notes, skipped = [], 0
    for each in paths:
        kind, rows, bad = _collect(each, domains)
        skipped += bad
        notes.append(f"{each.name}: {rows} {kind}")
    if skipped:
        notes.append(f"{skipped} entries that are not EVM addresses skipped")
    labels = [
        Label(
            address=address,
            category=Category.SCAM,
            name=_name(found),
            source=SOURCE,
            source_url=REPO_URL,
            confidence=CONFIDENCE,
            chain=ANY_EVM,
            details={"domains": sorted(found)[:MAX_DOMAINS], "domain_count": len(found)} if found else {},
        )
        for address, found in domains.items()
    ]
    label_set = LabelSet(SOURCE, version or " + ".join(p.name for p in paths), REPO_URL, LICENCE)
    return LabelImport(label_set=label_set, labels=labels, skipped=skipped, notes=notes)
