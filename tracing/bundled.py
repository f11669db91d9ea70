"""The label sets shipped with chainsleuth, loaded into the store on first run (and when a newer one ships)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from tracing.importers import ofac
from tracing.labels import LabelBook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundledSet:
    source: str
    version: str
    load: Callable[[LabelBook], int]


BUNDLED_PREFIX = "bundled: "


def _load_ofac(book: LabelBook) -> int:
    result = ofac.read_ofac_csv(ofac.BUNDLED_CSV)
    label_set = replace(result.label_set, version=BUNDLED_PREFIX + result.label_set.version)
    return book.replace_set(label_set, result.labels)


BUNDLED: list[BundledSet] = [
    BundledSet(
        ofac.SOURCE, f"{BUNDLED_PREFIX}SDN {ofac.BUNDLED_LIST_DATE.isoformat()} ({ofac.BUNDLED_CSV.name})", _load_ofac
    ),
]


def ensure_bundled_labels(book: LabelBook) -> dict[str, int]:
    """Load each bundled set whose stored version differs from the shipped one. Returns rows loaded per set.

    A set imported by an operator with `labels import` is newer by intent: only a set that came from an older
    bundle (or none at all) is replaced.
    """
    loaded: dict[str, int] = {}
    for bundled in BUNDLED:
        stored = book.set_version(bundled.source)
        if stored == bundled.version or (stored is not None and not stored.startswith(BUNDLED_PREFIX)):
            continue
        loaded[bundled.source] = bundled.load(book)
        log.info("loaded bundled label set %s: %d labels", bundled.source, loaded[bundled.source])
    return loaded
