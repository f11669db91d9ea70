"""Shared fixtures: a store on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set), the app, and the
push/pop test front end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from storage.db import Database, open_database
from storage.settings import Settings
from tests.support.databases import database_url_for

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test where that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'chainsleuth.sqlite3'}"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", demo_data=False)  # type: ignore[call-arg]


@pytest.fixture
def app(settings: Settings, database_url: str) -> Iterator[App]:
    the_app = build_app(settings, database_url=database_url)
    yield the_app
    the_app.close()


@pytest.fixture
def bot(app: App) -> TestBackend:
    return TestBackend(app.bot)
