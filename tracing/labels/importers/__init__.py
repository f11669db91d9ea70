"""Label importers: each turns one published label set into `Label`s with source, confidence and date.

`FORMATS` maps the `--format` name of `chainsleuth labels import` to a reader `(path) -> LabelImport`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tracing.labels.book import LabelBook
from tracing.labels.model import Label, LabelSet


@dataclass(frozen=True)
class LabelImport:
    label_set: LabelSet
    labels: list[Label]
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    store: Callable[[LabelBook, LabelSet], int] | None = None
    """For a set that arrives in parts (Tether's freezes): how to merge this part, recorded as `label_set`, into
    what the store holds, returning the labels written. None: the import is the whole set and replaces the stored
    one."""

    def save(self, book: LabelBook) -> int:
        """Store the import: merged by `store` when it has one, else replacing its set."""
        if self.store is not None:
            return self.store(book, self.label_set)
        return book.replace_set(self.label_set, self.labels)


Reader = Callable[[Path], LabelImport]
FORMATS: dict[str, Reader] = {}


def register(name: str) -> Callable[[Reader], Reader]:
    def decorator(reader: Reader) -> Reader:
        FORMATS[name] = reader
        return reader

    return decorator


def load_formats() -> dict[str, Reader]:
    """Import every importer module of this package so that each registers its format(s)."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return FORMATS
