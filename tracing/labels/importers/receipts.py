"""Ransomware payment addresses from "Showing the Receipts" (Cable, Gray, McCoy, eCrime 2024; CC BY 4.0) →
ransomware labels on bitcoin.

`addresses.csv` has `address, type, amountReceivedUSD, amountReceivedBTC`: one row per bitcoin address, and no
ransomware family (where GraphSense's `ransomwhere` pack holds the address, its label names the family). `type`
says how the paper found it, and sets the confidence on GraphSense's scale: `ransomwhere` (reported by victims to
ransomwhe.re and checked by the authors) and `origCluster` (the payment clusters the paper started from) are a known
perpetrator's address, `forensic_investigation` (0.7); `expandedCluster` (added by clustering those) is
`forensic` (0.5), a weaker attribution.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tracing.chain import Family, family_of, parse_address
from tracing.errors import InvalidArgument, UserError
from tracing.labels.importers import LabelImport, register
from tracing.labels.model import ANY_BTC, Category, Label, LabelSet

SOURCE = "ransomware-receipts"
PAPER_URL = "https://arxiv.org/abs/2408.15420"
REPO_URL = "https://github.com/cablej/showing-the-receipts"
BUNDLED_CSV = Path(__file__).resolve().parent.parent / "data" / "ransomware-receipts" / "addresses.csv"
BUNDLED_VERSION = "cablej/showing-the-receipts 1e7e9d8 (2024-09-05)"
LICENCE = "CC BY 4.0 (Cable, Gray, McCoy: Showing the Receipts, eCrime 2024)"
NAME = "Ransomware payment address"
COLUMNS = ("address", "type", "amountReceivedUSD", "amountReceivedBTC")
CONFIDENCE = {"ransomwhere": 0.7, "origCluster": 0.7, "expandedCluster": 0.5}
"""By how the paper found the address (see the module docstring)."""


@register("receipts")
def read_receipts(path: Path, version: str | None = None) -> LabelImport:
    """`labels import addresses.csv --format receipts`. Raises InvalidArgument naming the file and line."""
    if path.is_dir():
        path = path / "addresses.csv"
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidArgument(f"{path.name}: cannot be read ({exc.strerror}).") from exc
    labels: dict[str, Label] = {}
    problems: list[str] = []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            kind = (row["type"] or "").strip()
            try:
                address = parse_address(row["address"] or "")
            except UserError as exc:
                problems.append(f"{where}: {exc}")
                continue
            if family_of(address) is not Family.BTC:
                problems.append(f"{where}: “{address[:50]}” is not a bitcoin address")
                continue
            if kind not in CONFIDENCE:
                problems.append(f"{where}: unknown type “{kind[:30]}” (expected {', '.join(CONFIDENCE)})")
                continue
            labels[address] = Label(
                address=address,
                category=Category.RANSOMWARE,
                name=NAME,
                source=SOURCE,
                source_url=PAPER_URL,
                confidence=CONFIDENCE[kind],
                chain=ANY_BTC,
                details={
                    "found_by": kind,
                    "received_usd": (row["amountReceivedUSD"] or "").strip(),
                    "received_btc": (row["amountReceivedBTC"] or "").strip(),
                    "dataset": REPO_URL,
                },
            )
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InvalidArgument(f"{path.name}: {len(problems)} problem(s), nothing imported:\n  {shown}")
    label_set = LabelSet(SOURCE, version or BUNDLED_VERSION, REPO_URL, LICENCE)
    return LabelImport(label_set, list(labels.values()), notes=[f"{len(labels)} bitcoin ransomware addresses"])
