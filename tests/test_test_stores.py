"""The suite's own stores: a test's store, copied from a session template, holds what preparing an empty store
afresh leaves there, and what one test writes reaches no other test's store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, MetaData, select

from storage.db import Database, open_database
from tests.support.databases import Contents, StoreTemplates, prepare
from tracing.labels import Category, Label, LabelBook
from tracing.labels.book import REVISION_KEY

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SOMEONE = "0x" + "5e" * 20


@contextmanager
def opened(url: str) -> Iterator[Database]:
    db = open_database(url, migrate=False)
    try:
        yield db
    finally:
        db.dispose()


def contents_of(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in order, without what differs between two preparations by design: the time a
    row was written, and the random revision a label change leaves for caches."""
    tables = MetaData()
    tables.reflect(db.engine)
    dump: dict[str, list[tuple[Any, ...]]] = {}
    with db.engine.connect() as conn:
        for name, table in tables.tables.items():
            kept = [column for column in table.columns if not isinstance(column.type, DateTime)]
            rows = [tuple(row) for row in conn.execute(select(*kept))]
            if name == "kv":
                rows = [(key, "random") if key == REVISION_KEY else (key, value) for key, value in rows]
            dump[name] = sorted(rows, key=repr)
    return dump


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("contents", [Contents.MIGRATED, Contents.STARTED, Contents.DEMO])
def test_a_copy_holds_what_preparing_an_empty_store_leaves(
    kind: str, contents: Contents, store_templates: StoreTemplates, tmp_path: Path
) -> None:
    (tmp_path / "copy").mkdir()
    (tmp_path / "fresh").mkdir()
    with (
        store_templates.store(kind, contents, tmp_path / "copy") as copied,
        store_templates.store(kind, Contents.EMPTY, tmp_path / "fresh") as fresh,
    ):
        prepare(fresh, contents, tmp_path / "data")
        with opened(copied) as copy_db, opened(fresh) as fresh_db:
            copy, expected = contents_of(copy_db), contents_of(fresh_db)
    assert copy == expected
    assert copy["alembic_version"] and bool(copy["label"]) is (contents is not Contents.MIGRATED)


@pytest.mark.parametrize("kind", KINDS)
def test_what_one_test_writes_reaches_no_other_copy(kind: str, store_templates: StoreTemplates, tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with store_templates.store(kind, Contents.STARTED, tmp_path / "one") as one:
        with opened(one) as db:
            LabelBook(db).add(Label(SOMEONE, Category.SCAM, "written by one test", "analyst:test"))
            assert LabelBook(db).for_address(SOMEONE)
        with store_templates.store(kind, Contents.STARTED, tmp_path / "two") as two, opened(two) as db:
            assert not LabelBook(db).for_address(SOMEONE)
