"""A store that cannot be written: a full disk (SQLite on a small tmpfs, else `max_page_count`), a read-only store
and the driver errors `storage.faults` tells apart. Every command answers with one sentence naming the cause, nothing
is half-written, and once space returns the commands work again with what was written before intact."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from sqlalchemy import event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.app import App, build_app
from bot.backends.testing import TestBackend
from bot.delivery.notifier import Notifier
from bot.health import STORE_FAULT_WINDOW, HealthServer, database_check, store_check
from bot.messages import Action, IncomingMessage
from bot.metrics import REGISTRY
from bot.render.text import render_text
from storage import STORE_FAULTS, StoreFull, StoreLocked, StoreReadOnly, store_fault
from storage.db import Database
from storage.models import AuditRow, LabelRow
from storage.settings import Settings
from tests.support.databases import Contents, StoreTemplates
from tests.support.fake_chain import FakeChain
from tests.support.slack_server import FakeSlack, form, sign, slash_command
from tests.test_slack import BOB, CHANNEL, LAZARUS, SECRET, Slack, settings  # noqa: F401 (the fixture)
from tracing.labels.book import LabelBook
from tracing.monitor.clock import ManualClock
from tracing.monitor.ops import OpsMonitor, OpsPolicy
from tracing.monitor.outbox import OpsNotice, OutboxKind, enqueue
from tracing.monitor.watcher import ChainFeed, LabelRisk, Watcher, watch_status

GROUP = "-300"
BEFORE = "0x1111111111111111111111111111111111111111"
DURING = "0x2222222222222222222222222222222222222222"
AFTER = "0x3333333333333333333333333333333333333333"
ANSWERED_ALWAYS = ("/help", "/status", "/labels", "/watchlist", "/incidents", "/risk")
"""Read-only commands: they answer even when their audit row cannot be written."""
WRITES = [
    f'/label {DURING} scam "Written while full" --source https://example.org/during',
    f"/watch {DURING} --channel",
    "/role telegram:7 analyst",
]
READS = ["/help", "/status", f"/labels {BEFORE}", "/watchlist", "/incidents", f"/risk {BEFORE}", f"/trace {BEFORE}"]


@pytest.fixture(autouse=True)
def fresh_fault_record() -> Iterator[None]:
    STORE_FAULTS.reset()
    yield
    STORE_FAULTS.reset()  # other tests' ops monitors must not hear of these faults


def _settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=False,
        allowed_chats=[f"telegram:{GROUP}"],
        admins=["telegram:1"],
    )


def _mount_tmpfs(where: Path, size: str) -> bool:
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
    )
    return done.returncode == 0


class SmallDisk:
    """Where the store lives, and a way to fill it and to give the space back."""

    def __init__(self, folder: Path, mounted: bool) -> None:
        self.folder = folder
        self.mounted = mounted
        self.filler = folder / "filler"
        self._limit: Any = None

    def fill(self, engine: Engine) -> None:
        with engine.connect() as conn:  # an empty WAL: the next commit must grow a file on the full disk
            if not self.mounted:  # no free pages inside the file either (a migration that copies tables leaves some)
                conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if self.mounted:
            fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
            try:
                for size in (1 << 20, 1 << 12, 1):  # big chunks, then the last bytes
                    try:
                        while True:
                            os.write(fd, b"\0" * size)
                    except OSError as exc:
                        assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
            return

        def limit(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={int(pages)}")
            cursor.close()

        self._limit = limit
        event.listen(engine, "connect", limit)
        engine.dispose()

    def free(self, engine: Engine) -> None:
        if self.mounted:
            self.filler.unlink()
            return
        event.remove(engine, "connect", self._limit)
        engine.dispose()

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.folder)], capture_output=True, check=False)


@pytest.fixture(params=["tmpfs", "max_page_count"])
def small_disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    """A tmpfs of its own where the machine lets us mount one (CI runs as root), else SQLite's page limit."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = request.param == "tmpfs" and _mount_tmpfs(folder, "48m")
    if request.param == "tmpfs" and not mounted:
        pytest.skip("cannot mount a tmpfs here; the max_page_count case stands in")
    disk = SmallDisk(folder, mounted)
    yield disk
    disk.close()


@pytest.fixture
def full_app(tmp_path: Path, small_disk: SmallDisk, store_templates: StoreTemplates) -> Iterator[App]:
    store = small_disk.folder / "chainsleuth.sqlite3"
    shutil.copyfile(store_templates.sqlite_template(Contents.STARTED), store)
    the_app = build_app(_settings(tmp_path), database_url=f"sqlite:///{store}")
    yield the_app
    the_app.close()


def _rows(app: App, table: Any) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _one_sentence(said: str) -> bool:
    return "\n" not in said.strip() and said.strip().endswith(")")


async def test_a_full_disk_gets_one_sentence_from_every_command_and_loses_nothing(
    full_app: App, small_disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    chat = TestBackend(full_app.bot, platform="telegram", chat_id=GROUP, user_id="1")
    before = await chat.say(f'/label {BEFORE} scam "Written before" --source https://example.org/before')
    assert not before.is_error, before.text
    labels, audits = _rows(full_app, LabelRow), _rows(full_app, AuditRow)

    small_disk.fill(full_app.db.engine)
    caplog.set_level(logging.ERROR, logger="bot.core")
    faulted, labelled = [], 0
    for n in range(0 if small_disk.mounted else 300):  # the page limit leaves room in pages: use it up
        said = await chat.say(f'/label 0x{n + 1:040x} scam "{"filler " * 40}" --source https://example.org/{n}')
        if said.is_error:
            assert "disk is full" in said.text, said.text
            break
        labelled += 1
    for command in WRITES + READS + WRITES:
        said = await chat.say(command)
        assert said.reply is not None, command
        if said.is_error:
            assert "disk is full" in said.text, (command, said.text)
            assert _one_sentence(said.text), said.text
            faulted.append(said.text)
        if said.is_error:
            assert not command.startswith(ANSWERED_ALWAYS), (command, said.text)
        elif command not in READS:
            # A full filesystem refuses every write; the page limit still lets a row into a page with room.
            assert not small_disk.mounted, (command, said.text)
            labelled += command.startswith("/label ")
    assert faulted, "no write met the full disk"
    if small_disk.mounted:
        risk = await chat.say(f"/risk {BEFORE}")
        assert "This check could not be remembered (the store's disk is full" in risk.text, risk.text
    for reference in (said.split("(reference ")[-1].rstrip(")") for said in faulted):
        assert any(reference in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)
    assert _rows(full_app, LabelRow) == labels + labelled  # nothing half-written
    status = await chat.say("/status")
    assert "Store faults since start:" in status.text and "full" in status.text, status.text
    assert STORE_FAULTS.counts.get("full", 0) >= len(faulted)

    small_disk.free(full_app.db.engine)
    after = await chat.say(f'/label {AFTER} scam "Written after" --source https://example.org/after')
    assert not after.is_error, after.text
    shown = await chat.say(f"/labels {BEFORE}")
    assert "Written before" in shown.text
    assert _rows(full_app, LabelRow) == labels + labelled + 1
    assert _rows(full_app, AuditRow) >= audits + 2  # the rows from before the fault are all still there


def _read_only(engine: Engine) -> Any:
    """A connect hook that makes every new connection read-only (SQLite's query_only, PostgreSQL's read-only
    transactions): writes then fail as on a store mounted read-only, or a PostgreSQL standby."""

    def read_only(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("PRAGMA query_only=ON")
        else:
            cursor.execute("SET default_transaction_read_only = on")
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()

    return read_only


@pytest.fixture
def read_only_app(tmp_path: Path, prepared_database_url: str) -> Iterator[App]:
    the_app = build_app(_settings(tmp_path), database_url=prepared_database_url)
    yield the_app
    the_app.close()


async def test_a_read_only_store_refuses_changes_in_one_sentence_and_still_answers_reads(
    read_only_app: App, caplog: pytest.LogCaptureFixture
) -> None:
    engine = read_only_app.db.engine
    read_only = _read_only(engine)
    (button,) = read_only_app.bot.store_actions("telegram", GROUP, [Action("Label", WRITES[0], once=True)])
    event.listen(engine, "connect", read_only)
    engine.dispose()
    chat = TestBackend(read_only_app.bot, platform="telegram", chat_id=GROUP, user_id="1")
    assert read_only_app.bot.store_actions("telegram", GROUP, [Action("Again", "/help")]) == []  # sent without
    caplog.set_level(logging.ERROR, logger="bot.core")
    labels = _rows(read_only_app, LabelRow)
    pressed = await read_only_app.bot.press(IncomingMessage("telegram", GROUP, chat.user, ""), button)
    assert pressed.reply.is_error and "The store is read-only" in render_text(pressed.reply)
    assert not pressed.used_up

    refused = await chat.say(WRITES[0])
    assert refused.is_error and "The store is read-only" in refused.text, refused.text
    assert _one_sentence(refused.text)
    assert _rows(read_only_app, LabelRow) == labels
    answered = await chat.say("/help")
    assert not answered.is_error  # read-only commands answer; the missing audit row is logged and counted
    assert STORE_FAULTS.unaudited >= 2
    assert any("audit row not written" in record.getMessage() for record in caplog.records)
    assert "commands not audited" in (await chat.say("/status")).text
    # /healthz fails while writes are refused, though the database still answers a SELECT; and passes again once
    # the last refusal is older than the window
    health = HealthServer([database_check(read_only_app.db), store_check()], port=0)
    port = await health.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            answer = await client.get("/healthz")
    finally:
        await health.stop()
    assert answer.status_code == 503, answer.text
    checks = answer.json()["checks"]
    assert "database: ok" in checks
    (store_line,) = [c for c in checks if c.startswith("store writes: refused")]
    assert "read-only" in store_line and "(reference " in store_line, store_line
    later = store_check(now=lambda: datetime.now(UTC) + STORE_FAULT_WINDOW + timedelta(seconds=1))
    assert await later() == (True, "store writes: ok")

    event.remove(engine, "connect", read_only)
    engine.dispose()
    assert not (await chat.say(WRITES[0])).is_error
    assert _rows(read_only_app, LabelRow) == labels + 1


async def test_a_store_locked_past_the_timeout_is_named_and_the_ops_chat_hears_of_it(read_only_app: App) -> None:
    engine = read_only_app.db.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("the lock timeout case is SQLite's busy timeout; PostgreSQL's lock_timeout is classified above")

    def impatient(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=200")

    event.listen(engine, "connect", impatient)
    engine.dispose()
    holder = sqlite3.connect(engine.url.database or "", timeout=1)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock throughout
    try:
        chat = TestBackend(read_only_app.bot, platform="telegram", chat_id=GROUP, user_id="1")
        said = await chat.say(WRITES[0])
        assert said.is_error and "locked by another writer past the timeout" in said.text, said.text
        assert _one_sentence(said.text)
    finally:
        holder.rollback()
        holder.close()
    event.remove(engine, "connect", impatient)
    engine.dispose()

    monitor = OpsMonitor(read_only_app.db, OpsPolicy("telegram", "-100ops"), ManualClock(datetime.now(UTC)))
    notices = monitor.check()  # the store takes writes again: the notice waits in the outbox for delivery
    assert any("The store refused writes: the store stayed locked" in notice for notice in notices), notices
    metrics = generate_latest(REGISTRY).decode()
    assert 'chainsleuth_store_faults_total{kind="locked"}' in metrics


def _wrapped(exc: BaseException) -> OperationalError:
    return OperationalError("INSERT …", {}, exc)


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (_wrapped(sqlite3.OperationalError("database or disk is full")), StoreFull),
        (_wrapped(sqlite3.OperationalError("attempt to write a readonly database")), StoreReadOnly),
        (_wrapped(sqlite3.OperationalError("database is locked")), StoreLocked),
        (_wrapped(_PgError("53100")), StoreFull),
        (_wrapped(_PgError("25006")), StoreReadOnly),
        (_wrapped(_PgError("55P03")), StoreLocked),
        (OSError(errno.ENOSPC, "No space left on device"), StoreFull),
        (OSError(errno.EROFS, "Read-only file system"), StoreReadOnly),
    ],
)
def test_store_faults_are_told_apart_from_driver_errors(error: BaseException, kind: type) -> None:
    assert isinstance(store_fault(error), kind)


def test_other_errors_are_not_store_faults() -> None:
    assert store_fault(_wrapped(sqlite3.OperationalError("no such table: label"))) is None
    assert store_fault(_wrapped(_PgError("42P01"))) is None
    assert store_fault(ValueError("x")) is None


def test_a_session_raises_the_typed_fault_and_rolls_back(tmp_path: Path) -> None:
    from storage.db import open_database

    db = open_database(f"sqlite:///{tmp_path / 's.sqlite3'}")
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

        def read_only(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA query_only=ON")

        event.listen(db.engine, "connect", read_only)
        db.engine.dispose()
        with pytest.raises(StoreReadOnly) as raised, db.session() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert isinstance(raised.value.__cause__, OperationalError)
    finally:
        db.dispose()


def test_the_command_line_ends_on_a_store_fault_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.cli

    def full() -> None:
        raise _wrapped(sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr(bot.cli, "app", full)
    # only pytest's own handlers: a handler an earlier in-process command left on a stream now closed would print
    # "--- Logging error ---" into the stderr this test reads
    kept = [h for h in logging.root.handlers if type(h).__module__.startswith("_pytest")]
    monkeypatch.setattr(logging.root, "handlers", kept)
    with pytest.raises(SystemExit) as ended:
        bot.cli.main()
    assert ended.value.code == 1
    said = capsys.readouterr().err.strip()
    assert "\n" not in said and said.startswith("error: the store's disk is full;"), said


async def test_a_slack_request_that_cannot_be_remembered_gets_503_naming_the_cause(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeSlack()
    await server.start()
    harness = Slack(server, app)
    await harness.start()
    try:
        event.listen(app.db.engine, "connect", _read_only(app.db.engine))
        app.db.engine.dispose()
        body = form(slash_command(f"watch {LAZARUS}", user=BOB, channel=CHANNEL, response_url=server.response_url("w")))
        status, said, _ = await harness.post(body, "application/x-www-form-urlencoded", headers=sign(SECRET, body))
        assert status == 503 and said.startswith("The store is read-only; try again later (reference "), said
        assert not [r for r in caplog.records if r.exc_info], "a store fault needs no traceback"
    finally:
        await harness.stop()
        await server.stop()


async def test_a_watcher_on_a_read_only_store_says_so_in_one_line_and_catches_up_after(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(datetime.now(UTC))
    chain = FakeChain()
    chain.mine_empty(5)
    feed = ChainFeed("eth", chain, poll_interval=1, confirmations=0, start_block=1)
    watcher = Watcher(db, feed, risk=LabelRisk(LabelBook(db)), clock=clock)
    await watcher.catch_up()
    stored = watch_status(db)[0].block
    chain.mine_empty(3)

    read_only = _read_only(db.engine)
    event.listen(db.engine, "connect", read_only)
    db.engine.dispose()
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    for _ in range(200):
        await asyncio.sleep(0)
        if STORE_FAULTS.last is not None:
            break
    stop.set()
    clock.advance(60)
    await asyncio.wait_for(task, 5)
    assert STORE_FAULTS.last is not None and STORE_FAULTS.last.what == "watcher eth"
    assert STORE_FAULTS.last.kind == "read-only"
    assert not [r for r in caplog.records if r.exc_info and "watcher" in r.getMessage()]

    event.remove(db.engine, "connect", read_only)
    db.engine.dispose()
    await watcher.catch_up()
    assert watch_status(db)[0].block == stored + 3  # nothing skipped while the store refused writes
    notices = OpsMonitor(db, OpsPolicy("telegram", "-100ops"), clock).check()
    assert any("The store refused writes: the store is read-only" in text for text in notices), notices


async def test_the_notifier_on_a_read_only_store_logs_once_and_delivers_after(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(datetime.now(UTC))
    platform = TestBackend(platform="telegram")
    with db.session() as session:
        enqueue(
            session,
            platform="telegram",
            chat="-100ops",
            kind=OutboxKind.NOTICE,
            now=clock.now(),
            notice=OpsNotice("kept"),
        )
    read_only = _read_only(db.engine)
    event.listen(db.engine, "connect", read_only)
    db.engine.dispose()
    notifier = Notifier(db, {"telegram": platform}, clock=clock)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop, idle=1.0))
    for _ in range(100):  # many rounds: the manual clock's sleeps return at once
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 5)
    paused = [r for r in caplog.records if "notifier paused" in r.getMessage()]
    assert len(paused) == 1 and "the store is read-only" in paused[0].getMessage()
    assert not [r for r in caplog.records if r.exc_info]
    assert platform.delivered == []

    event.remove(db.engine, "connect", read_only)
    db.engine.dispose()
    assert await notifier.drain_once() == 1
    assert "kept" in platform.pop().text
