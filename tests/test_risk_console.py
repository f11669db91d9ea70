"""`/risk`, `/labels` and `/help` through the push/pop test front end, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlmodel import func, select

from bot.app import App
from bot.backends.testing import TestBackend
from storage.audit import AuditLog
from storage.models import LabelRow, RiskCheckRow

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
FRESH = "0x1111111111111111111111111111111111111111"


async def test_sanctioned_address_is_severe_with_entity_program_and_source(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {LAZARUS}")
    assert not reply.is_error
    assert "SEVERE" in reply.text and "SANCTIONED" in reply.text
    assert "Lazarus Group" in reply.text
    assert "ofac-sdn" in reply.text and "DPRK3" in reply.text
    assert "2025-11-19" in reply.text  # the list date


async def test_unlabelled_address_is_unknown_never_clean(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {FRESH}")
    assert "UNKNOWN" in reply.text
    assert "not yet traced" in reply.text
    assert "clean" not in reply.text.replace("not clean", "").replace("not the same as clean", "")


async def test_bad_input_is_one_sentence_and_writes_only_the_audit_row(bot: TestBackend, app: App) -> None:
    def label_count() -> int:
        with app.db.session() as session:
            return int(session.exec(select(func.count()).select_from(LabelRow)).one())

    before = label_count()
    cases = ["/risk 0x123", f"/risk {LAZARUS[:-1]}7", "/risk hello world", "/risk", "/risk vitalik.eth"]
    for text in cases:
        reply = await bot.say(text)
        assert reply.is_error, text
        assert reply.text.startswith("Error: ") and reply.text.count("\n") == 0, reply.text
    assert label_count() == before
    with app.db.session() as session:
        checks = session.exec(select(func.count()).select_from(RiskCheckRow)).one()
    assert checks == 0
    audit = AuditLog(app.db).recent(20)
    assert [e.outcome for e in audit[: len(cases)]] == ["error"] * len(cases)
    assert {e.command for e in audit} == {"risk"}


async def test_every_command_is_audited_with_outcome(bot: TestBackend, app: App) -> None:
    await bot.say(f"/risk {LAZARUS}")
    await bot.say("/nosuchcommand")
    entries = AuditLog(app.db).recent(5)
    assert entries[0].command == "nosuchcommand" and entries[0].outcome == "error"
    assert entries[1].command == "risk" and entries[1].outcome == "ok"
    assert entries[1].arguments == LAZARUS


async def test_labels_lists_sources(bot: TestBackend) -> None:
    reply = await bot.say(f"/labels {LAZARUS.lower()}")
    assert "Lazarus Group" in reply.text
    assert "https://sanctionssearch.ofac.treas.gov/Details.aspx?id=" in reply.text


async def test_help_is_generated_from_the_registry(bot: TestBackend) -> None:
    reply = await bot.say("/help")
    for command in ("/risk", "/labels", "/help"):
        assert command in reply.text
    usage = await bot.say("/help risk")
    assert "Usage: /risk ADDRESS" in usage.text


async def test_unknown_flag_and_quotes_are_clear_errors(bot: TestBackend) -> None:
    reply = await bot.say(f"/risk {LAZARUS} --bogus 1")
    assert "Unknown option --bogus" in reply.text
    reply = await bot.say('/risk "unbalanced')
    assert "Unbalanced quotes" in reply.text
    reply = await bot.say(f"/risk {LAZARUS} --hops 99")
    assert "out of range" in reply.text
