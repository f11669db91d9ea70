"""Alembic migrations, run programmatically: `chainsleuth db upgrade` and every start apply them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    # PostgreSQL: serialise concurrent starters (several bot and watcher processes) on one advisory lock.
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_lock(7316001)"))
            try:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
                conn.commit()
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(7316001)"))
                conn.commit()
        return
    command.upgrade(config, revision)


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())
