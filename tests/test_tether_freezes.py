"""Tether's USDT-TRC20 freezes: blacklist logs decoded (address indexed or in data), folded into one label per
address with its history, merged part by part into the store, imported from a TronGrid export and a CSV, and rated
by the risk policy (at least high, with the freeze's block, date and transaction; a lifted freeze is history)."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from storage.db import Database
from tests.support.cli import run_cli
from tracing.chain import ContractLogs, RawLog, tron_to_hex
from tracing.labels import (
    USDT_TRC20,
    Category,
    FreezeEvent,
    FreezeKind,
    FreezeLogError,
    Label,
    LabelBook,
    decode_freeze_log,
    freeze_cursor,
    freeze_labels,
    record_freeze_logs,
    record_freezes,
)
from tracing.labels.freezes import SOURCE, TOPICS
from tracing.labels.importers import load_formats
from tracing.labels.importers.tether import read_tether_csv, read_tether_trongrid
from tracing.risk.policy import DEFAULT_POLICY, score_own_labels
from tracing.risk.report import Level

FROZEN = "TFwjPScaJRCbSWVAywE1S1WgaUgSnyYUbD"
OTHER = "TNDjh6WGLYyWmkh8vfu42bXVHUqFNQ3rDq"
TOPIC = {kind: topic for topic, kind in TOPICS.items()}
TX1, TX2, TX3 = ("0x" + c * 64 for c in "abc")
T0 = 1_714_564_803  # 2024-05-01 12:00:03 UTC


def word(value: int | str) -> str:
    if isinstance(value, str):
        return value.removeprefix("0x").rjust(64, "0")
    return f"{value:064x}"


def raw_log(kind: FreezeKind, address: str, *, indexed: bool, amount: int | None = None, **extra: object) -> dict:
    hex20 = tron_to_hex(address)
    topics = [TOPIC[kind]] + (["0x" + word(hex20)] if indexed else [])
    data = ([] if indexed else [word(hex20)]) + ([word(amount)] if amount is not None else [])
    log = {
        "address": tron_to_hex(USDT_TRC20),
        "topics": topics,
        "data": "0x" + "".join(data),
        "blockNumber": hex(1000),
        "transactionHash": TX1,
        "logIndex": "0x0",
    }
    return log | extra


def event(
    kind: FreezeKind, block: int, tx: str, at: int, address: str = FROZEN, amount: int | None = None
) -> FreezeEvent:
    return FreezeEvent(address, kind, block, tx.removeprefix("0x"), at, amount)


@pytest.mark.parametrize("indexed", [True, False])
def test_blacklist_logs_decode_with_the_address_indexed_or_in_data(indexed: bool) -> None:
    added = decode_freeze_log(raw_log(FreezeKind.ADDED, FROZEN, indexed=indexed), T0 * 1000)  # TRON's milliseconds
    assert added == FreezeEvent(FROZEN, FreezeKind.ADDED, 1000, TX1[2:], T0, None, 0, USDT_TRC20)
    burnt = decode_freeze_log(raw_log(FreezeKind.DESTROYED, FROZEN, indexed=indexed, amount=12_345_678), T0)
    assert burnt is not None and burnt.kind is FreezeKind.DESTROYED and burnt.amount == 12_345_678
    assert "DestroyedBlackFunds of 12.345678 USDT at block 1,000 on 2024-05-01 12:00:03 UTC" in burnt.words()


def test_other_and_broken_logs() -> None:
    transfer = raw_log(FreezeKind.ADDED, FROZEN, indexed=True) | {"topics": ["0x" + "dd" * 32]}
    assert decode_freeze_log(transfer, T0) is None
    assert decode_freeze_log(raw_log(FreezeKind.ADDED, FROZEN, indexed=True, removed=True), T0) is None
    with pytest.raises(FreezeLogError, match="block time"):
        decode_freeze_log(raw_log(FreezeKind.ADDED, FROZEN, indexed=True))
    assert decode_freeze_log(raw_log(FreezeKind.ADDED, FROZEN, indexed=True, blockTimestamp=hex(T0))) is not None
    with pytest.raises(FreezeLogError, match="amount"):
        decode_freeze_log(raw_log(FreezeKind.DESTROYED, FROZEN, indexed=True), T0)
    dirty = raw_log(FreezeKind.ADDED, FROZEN, indexed=False)
    dirty["data"] = "0x" + "ff" * 12 + dirty["data"][26:]  # bytes above the address's 20
    with pytest.raises(FreezeLogError, match="above its 20"):
        decode_freeze_log(dirty, T0)


def test_a_lifted_freeze_is_history_and_a_new_one_makes_it_current_again() -> None:
    lifted_at = T0 + 30 * 86400
    (label,) = freeze_labels(
        [event(FreezeKind.ADDED, 100, TX1, T0), event(FreezeKind.REMOVED, 200, TX2, lifted_at)]
        + [event(FreezeKind.ADDED, 100, TX1, T0)]  # the same event read twice counts once
    )
    assert (label.category, label.chain, label.source, label.address) == (Category.FROZEN, "tron", SOURCE, FROZEN)
    assert not label.active and label.delisted_on == date(2024, 5, 31) and label.first_seen == date(2024, 5, 1)
    assert label.details["frozen_block"] == 100 and label.details["removed_tx"] == TX2[2:]
    assert len(label.details["events"]) == 2  # type: ignore[arg-type]
    (again,) = freeze_labels(
        [event(FreezeKind.ADDED, 100, TX1, T0), event(FreezeKind.REMOVED, 200, TX2, lifted_at)]
        + [event(FreezeKind.ADDED, 300, TX3, lifted_at + 86400)]
    )
    assert again.active and again.details["frozen_tx"] == TX3[2:] and again.first_seen == date(2024, 6, 1)
    assert again.source_url == f"https://tronscan.org/#/transaction/{TX3[2:]}"


def test_events_recorded_part_by_part_keep_the_history(db: Database) -> None:
    book = LabelBook(db)
    first = record_freezes(book, [event(FreezeKind.ADDED, 100, TX1, T0), event(FreezeKind.ADDED, 101, TX3, T0, OTHER)])
    assert (first.addresses, first.frozen, first.lifted) == (2, 2, 0)
    second = record_freezes(book, [event(FreezeKind.REMOVED, 200, TX2, T0 + 86400)])
    assert (second.addresses, second.frozen, second.lifted) == (1, 0, 1)
    (label,) = book.for_address(FROZEN, "tron")
    assert not label.active and label.details["frozen_tx"] == TX1[2:] and len(label.details["events"]) == 2  # type: ignore[arg-type]
    assert book.for_address(OTHER, "tron")[0].active
    assert book.for_address(FROZEN, "eth") == []  # a TRON label answers for TRON only
    assert {i.source: i.rows for i in book.sets()}[SOURCE] == 2


def rawlog(kind: FreezeKind, block: int, *, at: int | None = T0, contract: str = USDT_TRC20) -> RawLog:
    hex20 = word(tron_to_hex(FROZEN))
    return RawLog("tron", block, "0x" + "0" * 64, TX1, 0, contract, (TOPIC[kind], "0x" + hex20), "0x", at)


def test_logs_already_read_become_labels_and_move_the_cursor_only_along_an_unbroken_run(db: Database) -> None:
    """The indexer's (or the watcher's) logs: the USDT contract's blacklist events become labels, other contracts'
    logs are passed over, a log without its block time is noted; the cursor follows blocks read without a gap."""
    book = LabelBook(db)
    other = "TXLAQ63Xg1NAzckPwKHvzw7CSEmLMEqcdj"
    scan = record_freeze_logs(
        book,
        ContractLogs(
            "tron",
            100,
            199,
            (USDT_TRC20, other),
            (rawlog(FreezeKind.ADDED, 150), rawlog(FreezeKind.REMOVED, 160, contract=other)),
        ),
    )
    assert (scan.events, scan.frozen, scan.skipped) == (1, 1, 0)
    assert book.for_address(FROZEN, "tron")[0].details["frozen_block"] == 150
    assert freeze_cursor(book, "tron") == 199  # no cursor yet: where reading started
    untimed = record_freeze_logs(
        book, ContractLogs("tron", 200, 299, (USDT_TRC20,), (rawlog(FreezeKind.REMOVED, 250, at=None),))
    )
    assert untimed.skipped == 1 and "block 250: no block time" in untimed.notes[0]
    assert book.for_address(FROZEN, "tron")[0].active  # the removal was not recorded
    assert freeze_cursor(book, "tron") == 299  # joins the run
    record_freeze_logs(book, ContractLogs("tron", 400, 499, (USDT_TRC20,), ()))
    assert freeze_cursor(book, "tron") == 299  # after a gap (300-399 unread): left where it was
    record_freeze_logs(book, ContractLogs("tron", 120, 180, (USDT_TRC20,), ()))
    assert freeze_cursor(book, "tron") == 299  # within the run: never back
    record_freeze_logs(book, ContractLogs("tron", 250, 420, (USDT_TRC20,), ()))
    assert freeze_cursor(book, "tron") == 420


def test_the_policy_rates_a_freeze_at_least_high_and_says_why() -> None:
    (label,) = freeze_labels([event(FreezeKind.ADDED, 100, TX1, T0)])
    score, level, reasons = score_own_labels([label])
    assert level is Level.HIGH and score >= DEFAULT_POLICY.high_at
    assert "frozen at block 100 on 2024-05-01 12:00:03 UTC, tx " + TX1[2:] in reasons[0]
    assert "tether-blacklist" in reasons[0] and "at least high" in reasons[0]
    unsure = Label(FROZEN, Category.FROZEN, "frozen (team note)", "team:x", confidence=0.3, chain="tron")
    assert score_own_labels([unsure])[1] is Level.HIGH  # a freeze is high whatever the confidence
    (lifted,) = freeze_labels([event(FreezeKind.ADDED, 100, TX1, T0), event(FreezeKind.REMOVED, 200, TX2, T0 + 86400)])
    score, level, reasons = score_own_labels([lifted])
    assert level is Level.UNKNOWN and score == 0
    assert "lifted on 2024-05-02: history, not a current freeze" in reasons[0] and TX2[2:] in reasons[0]


def test_csv_import_reports_bad_rows(tmp_path: Path) -> None:
    assert {"tether-csv", "tether-trongrid"} <= set(load_formats())
    path = tmp_path / "freezes.csv"
    path.write_text(
        "address,block,date,tx,event,amount\n"
        f"{FROZEN},100,2024-05-01,{TX1},AddedBlackList,\n"
        f"41{tron_to_hex(OTHER)[2:]},101,2024-05-01T12:00:03Z,{TX2[2:]},added,\n"
        f"{FROZEN},102,1714600000,{TX3},DestroyedBlackFunds,5000000\n"
        f"{FROZEN[:-1]}x,103,2024-05-01,{TX1},added,\n"
        f"{FROZEN},104,yesterday,{TX1},added,\n"
        f"{FROZEN},105,2024-05-01,{TX1},Transfer,\n"
    )
    result = read_tether_csv(path)
    assert result.skipped == 3 and len(result.notes) == 4
    assert result.notes[1].startswith("freezes.csv:5: ") and "checksum" in result.notes[1]
    assert "yesterday" in result.notes[2] and "Transfer" in result.notes[3]
    by_address = {lb.address: lb for lb in result.labels}
    assert by_address[FROZEN].details["frozen_at"] == "2024-05-01"  # a day only: no invented time
    assert by_address[FROZEN].details["destroyed"] == [
        f"DestroyedBlackFunds of 5 USDT at block 102 on 2024-05-01 21:46:40 UTC, tx {TX3[2:]}"
    ]
    assert by_address[OTHER].active
    missing = tmp_path / "missing.csv"
    missing.write_text("address,block\n")
    with pytest.raises(Exception, match="missing column"):
        read_tether_csv(missing)


@pytest.fixture
def cli_env(tmp_path: Path, prepared_database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "CHAINS", "ETH_", "TRON_"))}
    return env | {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"}


def trongrid_page(*events: dict, fingerprint: str | None = None) -> dict:
    meta: dict[str, object] = {"at": 1_733_000_000_000, "page_size": len(events)}
    if fingerprint:
        meta["fingerprint"] = fingerprint
    return {"data": list(events), "success": True, "meta": meta}


def trongrid_event(name: str, address: str, block: int, tx: str, **result: str) -> dict:
    return {
        "block_number": block,
        "block_timestamp": T0 * 1000,
        "caller_contract_address": USDT_TRC20,
        "contract_address": USDT_TRC20,
        "event_index": 0,
        "event_name": name,
        "result": {"0": tron_to_hex(address), "_user": tron_to_hex(address), **result},
        "result_type": {"_user": "address"},
        "event": f"{name}(address _user)",
        "transaction_id": tx.removeprefix("0x"),
    }


def test_trongrid_export_pages_become_freezes(tmp_path: Path) -> None:
    destroyed = trongrid_event("DestroyedBlackFunds", FROZEN, 102, TX3, _balance="7000000")
    destroyed["result"] = {"0": FROZEN, "1": "7000000", "_blackListedUser": FROZEN, "_balance": "7000000"}
    pages = [
        trongrid_page(trongrid_event("AddedBlackList", FROZEN, 100, TX1), fingerprint="abc"),
        trongrid_page(destroyed, trongrid_event("Transfer", OTHER, 101, TX2)),
        trongrid_page(trongrid_event("AddedBlackList", OTHER, 103, TX2) | {"contract_address": OTHER}),
    ]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(pages))
    result = read_tether_trongrid(path)
    (label,) = result.labels
    assert label.address == FROZEN and label.active and label.details["frozen_block"] == 100
    assert "7 USDT" in str(label.details["destroyed"])
    assert "2 other events (not USDT-TRC20 blacklist events) ignored" in result.notes
    single = tmp_path / "page.json"
    single.write_text(json.dumps(pages[0]))
    assert [lb.address for lb in read_tether_trongrid(single).labels] == [FROZEN]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(Exception, match="not JSON"):
        read_tether_trongrid(broken)


def test_cli_imports_freezes_and_risk_reports_them(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "freezes.csv"
    path.write_text(f"address,block,date,tx,event\n{OTHER},100,2024-05-01T12:00:03Z,{TX1},AddedBlackList\n")
    result = run_cli(["labels", "import", str(path), "--format", "tether-csv"], cli_env)
    assert result.returncode == 0, result.stderr
    assert "1 labels from tether-blacklist" in result.stdout and "1 AddedBlackList" in result.stdout
    lifted = tmp_path / "lifted.csv"
    lifted.write_text(f"address,block,date,tx,event\n{OTHER},200,2024-06-01T00:00:09Z,{TX2},RemovedBlackList\n")
    again = run_cli(["labels", "import", str(lifted), "--format", "tether-csv", "--version", "export 2024-06"], cli_env)
    assert again.returncode == 0, again.stderr
    stats = run_cli(["labels", "stats"], cli_env)
    assert "tether-blacklist" in stats.stdout and "export 2024-06" in stats.stdout
    listed = run_cli(["labels", "list", OTHER], cli_env)
    assert "Frozen by issuer: Frozen by Tether (USDT-TRC20) — tether-blacklist" in listed.stdout
    assert f"frozen at block 100 on 2024-05-01 12:00:03 UTC, tx {TX1[2:]}" in listed.stdout
    assert f"lifted at block 200 on 2024-06-01 00:00:09 UTC, tx {TX2[2:]}" in listed.stdout
    assert "LIFTED 2024-06-01" in listed.stdout


def test_a_new_freeze_alerts_whoever_checked_the_address(db: Database) -> None:
    from storage.models import RiskCheckRow
    from tracing.monitor.alerts import AlertBook, AlertKind, retro_alerts
    from tracing.monitor.clock import ManualClock

    clock = ManualClock()
    with db.session() as session:
        session.add(RiskCheckRow(address=FROZEN, chain="tron", platform="slack", chat="C1", actor="slack:U1"))
        session.add(RiskCheckRow(address=OTHER, chain="eth", platform="slack", chat="C2", actor="slack:U2"))
    book = LabelBook(db, hooks=[lambda s, b, a: retro_alerts(db, b, a, session=s, clock=clock)])
    record_freezes(book, [event(FreezeKind.ADDED, 100, TX1, T0), event(FreezeKind.ADDED, 101, TX3, T0, OTHER)])
    record_freezes(book, [event(FreezeKind.DESTROYED, 150, TX3, T0, amount=5)])  # still frozen: nothing new
    record_freezes(book, [event(FreezeKind.REMOVED, 200, TX2, T0 + 86400)])  # lifted: no alert either
    (alert,) = AlertBook(db).all()  # OTHER was checked on eth: a TRON label is not its business
    assert (alert.kind, alert.address, alert.chat) == (AlertKind.LABEL_CHANGE, FROZEN, "C1")
    assert "Frozen by Tether" in alert.reasons[0]


def test_funds_to_a_frozen_counterparty_are_graded_and_before_the_freeze_weighed_down() -> None:
    from tracing.chain.transfer import Direction
    from tracing.risk.policy import rate
    from tracing.risk.report import Amount, Exposure, Rule, Timing

    (label,) = freeze_labels([event(FreezeKind.ADDED, 100, TX1, T0)])  # frozen 2024-05-01
    usdt = (Amount(50_000 * 10**6, USDT_TRC20, "USDT", 6, None),)

    def to_frozen(day: int) -> Exposure:
        return Exposure(Category.FROZEN, Direction.OUT, 1, FROZEN, (label,), usdt, None, (), first_at=day, last_at=day)

    after = rate(to_frozen(T0 + 86400), "tron")
    before = rate(to_frozen(T0 - 10 * 86400), "tron")
    assert (
        after.rule is Rule.GRADED and after.timing is Timing.AFTER and after.score == 60
    )  # 70 × 0.85 (200 dust floors)
    assert before.rule is Rule.PREDATES_LISTING and before.timing is Timing.BEFORE and before.score == 30  # × 0.5
    assert "10 days before: labelled since 2024-05-01" in before.timing_note


def test_risk_json_carries_the_freeze_evidence(cli_env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "freezes.csv"
    path.write_text(
        "address,block,date,tx,event\n"
        f"{OTHER},100,2024-05-01T12:00:03Z,{TX1},AddedBlackList\n"
        f"{OTHER},200,2024-06-01T00:00:09Z,{TX2},RemovedBlackList\n"
    )
    assert run_cli(["labels", "import", str(path), "--format", "tether-csv"], cli_env).returncode == 0
    result = run_cli(["risk", OTHER, "--json"], cli_env | {"CHAINS": "eth,tron"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (frozen,) = [lb for lb in report["labels"] if lb["category"] == "frozen"]
    assert (frozen["active"], frozen["chain"], frozen["delisted_on"]) == (False, "tron", "2024-06-01")
    assert frozen["freeze"]["frozen_tx"] == TX1[2:] and frozen["freeze"]["removed_block"] == 200
    assert [e["kind"] for e in frozen["freeze"]["events"]] == ["added", "removed"]
    assert any("TRON_RPC_URL" in gap for gap in report["coverage"]["gaps"])


def test_tether_freezes_from_a_dead_node_is_one_error_line(cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = cli_env | {"CHAINS": "eth,tron", "TRON_RPC_URL": f"http://127.0.0.1:{port}"}
    result = run_cli(["labels", "tether-freezes", "--from-block", "1", "--to-block", "10"], env)
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "no usable answer" in result.stderr
    assert run_cli(["labels", "tether-freezes", "--from-block", "x1"], env).returncode == 2
    unconfigured = run_cli(["labels", "tether-freezes", "--from-block", "1"], cli_env | {"CHAINS": "eth,tron"})
    assert unconfigured.returncode == 2 and "TRON_RPC_URL" in unconfigured.stderr
