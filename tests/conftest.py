"""Shared fixtures: a store on SQLite (always) and PostgreSQL (when TEST_DATABASE_URL is set), the app, and the
push/pop test front end.

Each test gets a store of its own, copied from a session template that holds what the test's store fixtures would
put there (see `database_url`), so the app a test starts finds the first-start work done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from storage.db import Database, open_database
from storage.settings import Settings
from tests.support.databases import Contents, StoreTemplates

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test where that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path}")
    return path


@pytest.fixture(scope="session")
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreTemplates]:
    templates = StoreTemplates(tmp_path_factory.mktemp("store-templates"))
    yield templates
    templates.close()


def store_contents(request: pytest.FixtureRequest) -> Contents:
    """What a test's store holds at the start: what its fixtures would have put into an empty one."""
    if "app" in request.fixturenames:  # the app's first start: schema, bundled labels, the demo if its settings say
        settings: Settings = request.getfixturevalue("settings")
        return Contents.DEMO if settings.demo_data else Contents.STARTED
    if "prepared_database_url" in request.fixturenames:
        return Contents.STARTED
    if "db" in request.fixturenames:
        return Contents.MIGRATED
    return Contents.EMPTY


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, store_templates: StoreTemplates) -> Iterator[str]:
    """A fresh store for this test alone: empty; migrated when the test uses `db`; what a first start leaves
    (schema, bundled labels, and the demo flows if the app's settings load them) when it uses `app` or
    `prepared_database_url`."""
    with store_templates.store(request.param, store_contents(request), tmp_path) as url:
        yield url


@pytest.fixture
def prepared_database_url(database_url: str) -> str:
    """`database_url`, already holding what a first start puts there, for tests that start the app themselves
    (a CLI command, `build_app`) and are not about the first start."""
    return database_url


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
