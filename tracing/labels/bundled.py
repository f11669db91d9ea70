"""The label sets shipped with chainsleuth, loaded into the store on first run (and when a newer one ships).

Bundled: OFAC SDN (current list + delisting history; EVM and bitcoin), Tornado Cash contracts, Etherscan explorer
tags (mapped subset), Forta's labelled datasets, GraphSense's bitcoin TagPacks (ransomware, mixers, Wasabi's
coordinator, Hydra, Lazarus, hacks; MIT) and the "Showing the Receipts" ransomware payment addresses (CC BY 4.0).
ScamSniffer is GPL-3.0 and therefore import-only (`labels import`); GraphSense's Samourai pack (36,548 CoinJoin
outputs) and its older ransomware pack (7,123 of its 7,178 addresses are in `ransomwhere`) are import-only for their
size. `ransomwhere.csv` is GraphSense's `ransomwhere.yaml` written as a CSV TagPack (`tagpack.write_csv_pack`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from tracing.labels.book import LabelBook
from tracing.labels.importers import LabelImport, etherscan, forta, ofac, receipts, tagpack, tornado
from tracing.labels.model import ANY_BTC, Category

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled: "


@dataclass(frozen=True)
class BundledSet:
    source: str
    version: str
    load: Callable[[LabelBook], int]


def _bundle(read: Callable[[], LabelImport], version: str) -> Callable[[LabelBook], int]:
    # The shipped files never change while the process runs: parse each once, however many stores get loaded
    # (tests build a fresh store per test).
    parsed = cache(read)

    def load(book: LabelBook) -> int:
        result = parsed()
        return book.replace_set(replace(result.label_set, version=version), result.labels)

    return load


def _set(source: str, version: str, read: Callable[[], LabelImport]) -> BundledSet:
    return BundledSet(source, BUNDLED_PREFIX + version, _bundle(read, BUNDLED_PREFIX + version))


BUNDLED: list[BundledSet] = [
    _set(
        ofac.SOURCE,
        ofac.list_version(ofac.BUNDLED_LIST_DATE, ofac.BUNDLED_CSV),
        lambda: ofac.read_ofac_csv(ofac.BUNDLED_CSV, ofac.BUNDLED_LIST_DATE),
    ),
    _set(tornado.SOURCE, tornado.BUNDLED_VERSION, lambda: tornado.read_tornado_dir(tornado.BUNDLED_DIR)),
    _set(
        etherscan.EXPLORERS["etherscan"].source,
        etherscan.BUNDLED_VERSION,
        lambda: etherscan.read_etherscan(etherscan.BUNDLED_JSON),
    ),
    _set(forta.SOURCE, forta.BUNDLED_VERSION, lambda: forta.read_forta(forta.BUNDLED_DIR)),
]


GRAPHSENSE_DIR = Path(__file__).resolve().parent / "data" / "graphsense" / "packs"
GRAPHSENSE_PACKS = (
    "ransomwhere.csv",
    "blender_io.yaml",
    "sinbad_io.yaml",
    "mixing_fc2021.yaml",
    "wasabi_collector.yaml",
    "hydra.yaml",
    "lazarus.yaml",
    "lazarus2.yaml",
    "hacks.yaml",
)
GRAPHSENSE_CATEGORIES = {"lazarus2.yaml": Category.HACK}
"""Packs bundled under another category than their concepts give: the FBI's 2023 list of addresses holding funds
stolen by DPRK (GraphSense: user, abuse sanction) is stolen funds, a hack; it is not on OFAC's list."""
GRAPHSENSE_VERSION = "graphsense/graphsense-tagpacks 29ff93c (2026-05-12)"
GRAPHSENSE_LICENCE = "MIT (Iknaio Cryptoasset Analytics GmbH; AIT Austrian Institute of Technology)"


def _pack_title(path: Path) -> str:
    """A pack's `title:` line, read without parsing the pack (its label set's name is known before it loads)."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.removeprefix("# ").startswith("title:"):  # YAML, or a CSV pack's `# title:` line
                return line.split(":", 1)[1].strip().strip("'\"")
    raise ValueError(f"{path.name} has no title")


def _graphsense_pack(path: Path) -> BundledSet:
    def read() -> LabelImport:
        result = tagpack.read_tagpack(path)
        # bitcoin tags only: EVM addresses have their bundled sets (OFAC, Etherscan, Forta), and one more "other"
        # label on the Ronin exploiter would only add a line to every report that meets it
        labels = [lb for lb in result.labels if lb.chain == ANY_BTC]
        recategorised = GRAPHSENSE_CATEGORIES.get(path.name)
        if recategorised is not None:
            labels = [replace(lb, category=recategorised) for lb in labels]
        return replace(result, labels=labels, label_set=replace(result.label_set, licence=GRAPHSENSE_LICENCE))

    version = f"{GRAPHSENSE_VERSION} {path.name}"
    return _set(tagpack.source_of(_pack_title(path)), version, read)


BUNDLED += [_graphsense_pack(GRAPHSENSE_DIR / name) for name in GRAPHSENSE_PACKS]
BUNDLED.append(
    _set(receipts.SOURCE, receipts.BUNDLED_VERSION, lambda: receipts.read_receipts(receipts.BUNDLED_CSV)),
)


def is_bundled(version: str) -> bool:
    return version.startswith(BUNDLED_PREFIX)


def ensure_bundled_labels(book: LabelBook) -> dict[str, int]:
    """Load each bundled set whose stored version differs from the shipped one. Returns rows loaded per set.

    A set imported by an operator with `labels import` is newer by intent: only a set that came from an older
    bundle (or none at all) is replaced.
    """
    loaded: dict[str, int] = {}
    for bundled in BUNDLED:
        stored = book.set_version(bundled.source)
        if stored == bundled.version or (stored is not None and not is_bundled(stored)):
            continue
        loaded[bundled.source] = bundled.load(book)
        log.info("loaded bundled label set %s: %d labels", bundled.source, loaded[bundled.source])
    return loaded
