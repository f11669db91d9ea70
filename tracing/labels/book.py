"""The store-backed label book: `LabelBook` reads and writes labels (`labels.model`) in the store, keeps the
`label_set` bookkeeping and tells its hooks about every change."""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy import delete, func, insert, text
from sqlalchemy.orm import Session
from sqlmodel import col, select

from storage import ANY_EVM, Database, KeyValueRow, LabelRow, LabelSetRow, utcnow
from tracing.labels.model import ANY_BTC, Label, LabelFact, LabelSet, LabelSetInfo, label_applies, sort_labels

LabelHook = Callable[[Session, set[LabelFact], set[LabelFact]], object]
"""Called inside a label change's transaction with the active labels it touched, before and after the change
(retro-alerts hang here)."""


def _fact(row: dict[str, object]) -> LabelFact:
    return (str(row["address"]), (str(row["chain"]), str(row["source"]), str(row["category"]), str(row["name"])))


class LabelBook:
    """Reads and writes labels in the store. `hooks` hear about every change (see `LabelHook`)."""

    def __init__(self, db: Database, hooks: Iterable[LabelHook] = ()) -> None:
        self.db = db
        self.hooks: list[LabelHook] = list(hooks)

    def for_address(self, address: str, chain: str | None = None) -> list[Label]:
        return self.for_addresses([address], chain).get(address, [])

    def for_addresses(self, addresses: Sequence[str], chain: str | None = None) -> dict[str, list[Label]]:
        found: dict[str, list[Label]] = defaultdict(list)
        unique = list(dict.fromkeys(addresses))
        with self.db.session() as session:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                query = select(LabelRow).where(col(LabelRow.address).in_(chunk))
                if chain is not None:
                    query = query.where(col(LabelRow.chain).in_((chain, ANY_EVM, ANY_BTC)))
                for row in session.scalars(query):
                    if chain is None or label_applies(row.chain, row.address, chain):
                        found[row.address].append(Label.from_row(row))
        return {addr: sort_labels(labels) for addr, labels in found.items()}

    def add(self, label: Label) -> None:
        """Add or update one label (same address, chain, source, category and name)."""
        with self.db.session() as session:
            before, after = self._upsert(session, label)
            self._changed(session, before, after)
            bump_revision(session, self.db.dialect)

    def merge_set(self, label_set: LabelSet, labels: Iterable[Label]) -> int:
        """Add or update `labels` of one source in one transaction, keeping the source's other labels (a set that
        grows by parts, such as freezes read block range by block range); the set's bookkeeping then counts every
        label the source has. Returns how many labels were written."""
        wanted = list(labels)
        with self.db.session() as session:
            before: set[LabelFact] = set()
            after: set[LabelFact] = set()
            for label in wanted:
                if label.source != label_set.source:
                    raise ValueError(f"label from {label.source} given to set {label_set.source}")
                was, now = self._upsert(session, label)
                before |= was
                after |= now
            session.flush()
            rows = session.scalar(
                select(func.count()).select_from(LabelRow).where(col(LabelRow.source) == label_set.source)
            )
            info = session.get(LabelSetRow, label_set.source) or LabelSetRow(source=label_set.source)
            info.version = label_set.version
            info.source_url = label_set.source_url
            info.licence = label_set.licence
            info.row_count = int(rows or 0)
            info.imported_at = utcnow()
            session.add(info)
            self._changed(session, before, after)
            bump_revision(session, self.db.dialect)
        return len(wanted)

    @staticmethod
    def _upsert(session: Session, label: Label) -> tuple[set[LabelFact], set[LabelFact]]:
        """Write one label; its active fact before and after."""
        existing = session.scalars(
            select(LabelRow).where(
                col(LabelRow.address) == label.address,
                col(LabelRow.chain) == label.chain,
                col(LabelRow.source) == label.source,
                col(LabelRow.category) == label.category.value,
                col(LabelRow.name) == label.name[:300],
            )
        ).first()
        before = {_fact(existing.model_dump())} if existing is not None and existing.delisted_on is None else set()
        if existing is None:
            session.add(LabelRow(**label.to_row()))  # type: ignore[arg-type]
        else:
            for key, value in label.to_row().items():
                setattr(existing, key, value)
        after = {_fact(label.to_row())} if label.active else set()
        return before, after

    def replace_set(self, label_set: LabelSet, labels: Iterable[Label]) -> int:
        """Replace every label of one source with `labels` in one transaction; returns the row count."""
        rows = {}
        for label in labels:
            if label.source != label_set.source:
                raise ValueError(f"label from {label.source} given to set {label_set.source}")
            row = label.to_row()
            rows[(row["address"], row["chain"], row["category"], row["name"])] = row
        with self.db.session() as session:
            if self.db.dialect == "postgresql":
                # Two processes starting together on a fresh database both load the bundled sets: take turns per
                # source (the later one then replaces the earlier one's rows instead of colliding with them).
                key = int.from_bytes(hashlib.sha256(f"label-set:{label_set.source}".encode()).digest()[:8], "big")
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key - (1 << 63)})
            before = self._active_facts(session, label_set.source) if self.hooks else set()
            session.execute(delete(LabelRow).where(col(LabelRow.source) == label_set.source))
            values = list(rows.values())
            for start in range(0, len(values), 2000):
                session.execute(insert(LabelRow), values[start : start + 2000])
            info = session.get(LabelSetRow, label_set.source) or LabelSetRow(source=label_set.source)
            info.version = label_set.version
            info.source_url = label_set.source_url
            info.licence = label_set.licence
            info.row_count = len(values)
            info.imported_at = utcnow()
            session.add(info)
            if self.hooks:
                self._changed(session, before, {_fact(row) for row in values if row["delisted_on"] is None})
            bump_revision(session, self.db.dialect)
        return len(rows)

    def _changed(self, session: Session, before: set[LabelFact], after: set[LabelFact]) -> None:
        if before != after:
            for hook in self.hooks:
                hook(session, before, after)

    @staticmethod
    def _active_facts(session: Session, source: str) -> set[LabelFact]:
        rows = session.execute(
            sa.select(
                col(LabelRow.address),
                col(LabelRow.chain),
                col(LabelRow.source),
                col(LabelRow.category),
                col(LabelRow.name),
            ).where(col(LabelRow.source) == source, col(LabelRow.delisted_on).is_(None))
        )
        return {(address, (chain, src, category, name)) for address, chain, src, category, name in rows}

    def set_version(self, source: str) -> str | None:
        with self.db.session() as session:
            row = session.get(LabelSetRow, source)
            return row.version if row else None

    def sets(self) -> list[LabelSetInfo]:
        with self.db.session() as session:
            return [
                LabelSetInfo(r.source, r.version, r.licence, r.row_count, r.imported_at)
                for r in session.scalars(select(LabelSetRow).order_by(col(LabelSetRow.source)))
            ]

    def counts(self) -> dict[tuple[str, str], int]:
        """Label rows per (source, category)."""
        with self.db.session() as session:
            rows = session.execute(
                select(col(LabelRow.source), col(LabelRow.category), func.count()).group_by(
                    col(LabelRow.source), col(LabelRow.category)
                )
            )
            return {(source, category): count for source, category, count in rows}


REVISION_KEY = "labels:revision"
"""The `kv` row every label change rewrites (in the change's transaction), so caches notice in-place updates too."""


def bump_revision(session: Session, dialect: str) -> None:
    """Record that the label table changed: a fresh random revision in `kv` (an upsert, safe across processes)."""
    from sqlalchemy.dialects import postgresql, sqlite

    table = KeyValueRow.__table__  # type: ignore[attr-defined]
    stmt = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    stmt = stmt.values(key=REVISION_KEY, value={"rev": secrets.token_hex(8)}, updated_at=utcnow())
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value}))
