"""The label sets shipped with chainsleuth, loaded into the store on first run (and when a newer one ships).

Bundled: OFAC SDN (current list + delisting history), Tornado Cash contracts, Etherscan explorer tags (mapped
subset) and Forta's labelled datasets. ScamSniffer is GPL-3.0 and therefore import-only (`labels import`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache

from tracing.labels.book import LabelBook
from tracing.labels.importers import LabelImport, etherscan, forta, ofac, tornado

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
