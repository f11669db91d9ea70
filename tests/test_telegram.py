"""Telegram end to end: the real python-telegram-bot Application, long polling (and a webhook) against a local Bot API
server that feeds update JSON and records what the bot sends — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, update

from bot.app import App, build_app
from bot.backends.telegram import CALLBACK_PREFIX, TelegramBackend, TelegramSetupError
from bot.backends.testing import TestBackend
from bot.commands import CommandSpec
from bot.context import Context
from bot.core import Pressed
from bot.messages import Action, Attachment, ErrorText, Identity, IncomingMessage, Reply, Text
from storage.audit import AuditLog
from storage.models import ButtonRow, utcnow
from storage.settings import Settings
from tests.support.chat_harness import running
from tests.support.pictures import SvgPicture
from tests.support.telegram_server import TOKEN, Call, FakeTelegram, chat, user
from tests.test_scopes import incident_in
from tests.test_trace import addr
from tests.test_trace_commands import disagreeing

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
GROUP = chat(-1001234)
STRANGERS = chat(-1009999, title="Somewhere else")
ALICE = user(1, "Alice")  # admin
BOB = user(2, "Bob")  # analyst
CAROL = user(3, "Carol")  # viewer (a member of the allowed group)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=True,  # the Ronin-hack flows: /risk shows the sanctions path, /trace has funds to follow
        allowed_chats=["telegram:-1001234", "slack:C0ALLOWED"],
        admins=["telegram:1"],
        analysts=["telegram:2"],
    )


class Telegram:
    """The fake Bot API server and the bot's Telegram front end, started together."""

    def __init__(self, server: FakeTelegram, app: App) -> None:
        self.server = server
        self.app = app
        self.backend: TelegramBackend | None = None

    def settings(self, **changes: Any) -> Settings:
        return self.app.settings.model_copy(
            update={"telegram_bot_token": TOKEN, "telegram_base_url": self.server.base_url, **changes}
        )

    async def start(self, app: App | None = None, **changes: Any) -> TelegramBackend:
        self.backend = TelegramBackend((app or self.app).bot, self.settings(**changes), poll_timeout=1)
        await self.backend.start()
        return self.backend

    async def stop(self) -> None:
        if self.backend is not None:
            await self.backend.stop()
            self.backend = None

    async def say(self, text: str, *, sender: dict[str, Any] = CAROL, where: dict[str, Any] = GROUP) -> list[Call]:
        """Push a message and wait for the bot's text answer(s) to it."""
        before = len(self.server.sent("sendMessage"))
        update = self.server.push(self.server.message(text, chat=where, user=sender))
        message_id = update["message"]["message_id"]
        first = await self.server.wait_for("sendMessage", lambda c: _replies_to(c) == message_id)
        await asyncio.sleep(0.05)  # a split reply's later parts follow at once
        return [first[0]] + [c for c in self.server.sent("sendMessage")[before:] if c is not first[0]]

    async def say_one(self, text: str, **kwargs: Any) -> str:
        calls = await self.say(text, **kwargs)
        return str(calls[0].params["text"])


def _replies_to(call: Call) -> int | None:
    parameters = call.json("reply_parameters") or {}
    return parameters.get("message_id")


@pytest.fixture
async def telegram(app: App) -> AsyncIterator[Telegram]:
    async with running(FakeTelegram(), lambda server: Telegram(server, app)) as harness:
        yield harness


# --- the commands ----------------------------------------------------------------------------------------------


async def test_starts_with_get_me_and_delete_webhook_then_polls(telegram: Telegram) -> None:
    await telegram.server.wait_for("getUpdates")
    methods = [c.method for c in telegram.server.calls]
    assert methods[0] == "getMe"
    assert "deleteWebhook" in methods and "getUpdates" in methods
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    menu = telegram.server.sent("setMyCommands")[0].json("commands")
    assert {"help", "risk", "labels"} <= {c["command"] for c in menu}
    assert "role" not in {c["command"] for c in menu}  # the menu shows what a viewer may run


async def test_risk_on_the_lazarus_address_is_severe_with_the_sanctions_label_and_source(telegram: Telegram) -> None:
    calls = await telegram.say(f"/risk {LAZARUS}")
    text = "\n".join(c.params["text"] for c in calls)
    assert all(c.params["parse_mode"] == "HTML" for c in calls)
    assert "SEVERE" in text and "SANCTIONED" in text
    assert "Lazarus Group" in text and "ofac-sdn" in text and "DPRK3" in text
    assert '<a href="https://sanctionssearch.ofac.treas.gov/Details.aspx?id=' in text
    # The sanctions path: funds sent on to Lazarus Group wallets, with the transfer ids of each hop.
    assert "Sanctions (direct, outgoing)" in text and "to Lazarus Group" in text
    assert "    path: <code>dune:" in text
    assert "<b>Coverage</b>" in text and "haircut taint" in text
    data = calls[-1].callback_data
    assert data and all(d.startswith(CALLBACK_PREFIX) and len(d.encode()) <= 64 for d in data)


async def test_help_differs_for_a_viewer_and_an_admin(telegram: Telegram) -> None:
    viewer = await telegram.say_one("/help", sender=CAROL)
    admin = await telegram.say_one("/help@chainsleuth_test_bot", sender=ALICE)
    assert "/risk" in viewer and "/risk" in admin
    assert "/role" not in viewer and "/label " not in viewer
    assert "/role USER [ROLE]" in admin and "/label ADDRESS CATEGORY NAME…" in admin
    assert "(role: viewer)" in viewer and "(role: admin)" in admin
    usage = await telegram.say_one("/help label", sender=BOB)
    assert "<b>Usage:</b> <code>/label ADDRESS CATEGORY NAME… [--source URL] [--confidence X]</code>" in usage


async def test_an_unknown_chat_is_refused_in_one_line_and_audited(telegram: Telegram, app: App) -> None:
    text = await telegram.say_one(f"/risk {LAZARUS}", sender=ALICE, where=STRANGERS)
    assert text == "⚠️ This chat is not authorised to use chainsleuth."
    entry = AuditLog(app.db).recent(1)[0]
    assert (entry.platform, entry.chat, entry.actor) == ("telegram", "-1009999", "telegram:1")
    assert (entry.command, entry.outcome) == ("risk", "refused")
    # A viewer's direct message is not an allowed chat either.
    direct = await telegram.say_one("/help", sender=CAROL, where=chat(3, "private"))
    assert "not authorised" in direct


async def test_labels_from_analysts_are_shown_as_text_never_markup(telegram: Telegram, app: App) -> None:
    target = "0x2222222222222222222222222222222222222222"
    refused = await telegram.say_one(f"/label {target} scam Nope", sender=CAROL)
    assert "needs the analyst role" in refused
    first = await telegram.say_one(f"/label {target} scam <!channel> <https://evil.example|click>", sender=BOB)
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in first
    second = await telegram.say_one(f"/label {target} scam '<b>x</b><a href=\"x\">' --confidence 80%", sender=BOB)
    assert "&lt;b&gt;x&lt;/b&gt;&lt;a href=&quot;x&quot;&gt;" in second
    for text in (first, second, await telegram.say_one(f"/labels {target}"), await telegram.say_one(f"/risk {target}")):
        assert "<b>x" not in text and '<a href="x">' not in text and "<!channel>" not in text
    shown = await telegram.say_one(f"/labels {target}")
    assert "&lt;b&gt;x&lt;/b&gt;" in shown and "&lt;!channel&gt;" in shown and "team:telegram" in shown
    labels = app.investigator.labels.for_address(target.lower())
    assert {lb.name for lb in labels} == {'<b>x</b><a href="x">', "<!channel> <https://evil.example|click>"}
    assert {lb.created_by for lb in labels} == {"telegram:2"}
    assert sorted(lb.confidence for lb in labels) == [0.8, 1.0]


async def test_an_admin_gives_a_role_with_role_and_a_viewer_cannot(telegram: Telegram, app: App) -> None:
    refused = await telegram.say_one("/role telegram:3 admin", sender=CAROL)
    assert "needs the admin role" in refused
    assert AuditLog(app.db).recent(1)[0].outcome == "refused"
    granted = await telegram.say_one("/role 3 analyst", sender=ALICE)
    assert "telegram:3 is now analyst (was viewer)" in granted
    assert "/label ADDRESS" in await telegram.say_one("/help", sender=CAROL)
    own = await telegram.say_one("/role 1 viewer", sender=ALICE)
    assert "cannot change your own role" in own
    status = await telegram.say_one("/status", sender=CAROL)
    assert "telegram:3" in status and "role analyst" in status and "telegram:-1001234, allowed" in status


async def test_scopes_unknown_chains_and_user_ids_over_telegram(telegram: Telegram, app: App) -> None:
    unknown = await telegram.say_one(f"/risk {LAZARUS} --chain foo", sender=BOB)
    assert "not configured" in unknown and "SEVERE" not in unknown
    assert "console:bob is now officer" in await telegram.say_one("/role console:bob officer", sender=ALICE)
    assert "telegram:2 is now officer" in await telegram.say_one("/role telegram:2 officer", sender=ALICE)
    incident = await incident_in(app, "-1005555")
    assert f"No incident #{incident}." in await telegram.say_one(f"/ack {incident}", sender=BOB)
    assert "No incidents here." in await telegram.say_one("/incidents all", sender=BOB)
    assert f"#{incident} open" in await telegram.say_one("/incidents", sender=ALICE)


# --- buttons, pasted addresses, files, long replies ----------------------------------------------------------


async def test_a_pasted_address_is_offered_a_check_once_and_the_button_works_after_a_restart(
    telegram: Telegram, app: App
) -> None:
    server = telegram.server
    offers = await telegram.say(f"have a look at {LAZARUS.lower()} please", sender=CAROL)
    assert "Check the risk of 0x098B716B8Aaf21512996dC57EB0615e2383E2f96?" in offers[0].params["text"]
    [data] = offers[0].callback_data
    # The same address again, a command, and an unknown chat: no offer.
    server.push(server.message(f"again {LAZARUS}", chat=GROUP, user=BOB))
    server.push(server.message(f"{LAZARUS}", chat=STRANGERS, user=BOB))
    await telegram.say("/help")
    assert len([c for c in server.sent("sendMessage") if c.callback_data and "Check the risk" in c.params["text"]]) == 1

    # Restart: a new Application and a new Bot over the same store.
    await telegram.stop()
    again = build_app(app.settings, database_url=app.db.url)
    try:
        await telegram.start(again)
        pressed = server.push(server.press(data, message=offers[0].result, user=BOB))
        query_id = pressed["callback_query"]["id"]
        await server.wait_for("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id)
        [edit] = await server.wait_for("editMessageText")
        assert "Checked by @bob" in edit.params["text"] and "reply_markup" not in edit.params
        [report] = await server.wait_for("sendMessage", lambda c: "SEVERE" in c.params["text"])
        assert "Lazarus Group" in report.params["text"]
        entry = AuditLog(again.db).recent(1)[0]
        assert (entry.actor, entry.command, entry.outcome) == ("telegram:2", "risk", "ok")

        # Used up: a second press gets a toast and runs nothing.
        second = server.push(server.press(data, message=offers[0].result, user=CAROL))
        [toast] = await server.wait_for(
            "answerCallbackQuery", lambda c: c.params["callback_query_id"] == second["callback_query"]["id"]
        )
        assert "already pressed" in toast.params["text"]
        forged = server.push(server.press(CALLBACK_PREFIX + "forged-id", message=offers[0].result, user=CAROL))
        [toast] = await server.wait_for(
            "answerCallbackQuery", lambda c: c.params["callback_query_id"] == forged["callback_query"]["id"]
        )
        assert "no longer valid" in toast.params["text"]
        assert len(server.sent("editMessageText")) == 1
        assert len([c for c in server.sent("sendMessage") if "SEVERE" in c.params["text"]]) == 1
    finally:
        again.close()


async def test_a_button_from_another_chat_is_refused(telegram: Telegram) -> None:
    risk = await telegram.say(f"/risk {LAZARUS}")
    data = risk[-1].callback_data[0]
    elsewhere = dict(risk[-1].result, chat=STRANGERS)
    pressed = telegram.server.push(telegram.server.press(data, message=elsewhere, user=ALICE))
    [toast] = await telegram.server.wait_for(
        "answerCallbackQuery", lambda c: c.params["callback_query_id"] == pressed["callback_query"]["id"]
    )
    assert "belongs to another chat" in toast.params["text"]


def _register(app: App, name: str, reply: Reply) -> None:
    async def handler(ctx: Context, inv: object) -> Reply:
        return reply

    app.bot.registry.add(CommandSpec(name=name, summary=f"test command {name}", handler=handler))


async def test_long_replies_are_split_on_lines_and_files_go_as_photo_and_document(telegram: Telegram, app: App) -> None:
    lines = [f"line {i:04d} <{'x' * 60}>" for i in range(200)]
    csv = b"hop,from,to,tx\n1,0xa,0xb,0xc\n"
    reply = Reply(
        (Text("\n".join(lines)),),
        actions=(Action("Again", "/help"),),
        attachments=(
            Attachment("trace.png", PNG, "image/png", "flow <b>"),
            Attachment("trace.csv", csv, "text/csv", "transfers"),
        ),
    )
    _register(app, "bigreply", reply)
    await telegram.stop()
    await telegram.start()  # handlers are built from the registry at start
    before = len(telegram.server.sent("sendMessage"))
    await telegram.say("/bigreply")
    # The parts follow one another at once, but on a busy machine later than `say` waits: wait for the last line.
    await telegram.server.wait_for("sendMessage", lambda c: "line 0199 " in c.params["text"])
    calls = telegram.server.sent("sendMessage")[before:]
    texts = [c.params["text"] for c in calls]
    assert len(texts) >= 4 and all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    rebuilt = "\n".join(texts).split("\n")
    assert rebuilt == [line.replace("<", "&lt;").replace(">", "&gt;") for line in lines]
    assert all(not c.callback_data for c in calls)  # the keyboard rides on the last file
    [photo] = await telegram.server.wait_for("sendPhoto")
    [document] = await telegram.server.wait_for("sendDocument")
    assert photo.files["photo"].content == PNG and photo.files["photo"].filename == "trace.png"
    assert photo.params["caption"] == "flow &lt;b&gt;" and photo.params["parse_mode"] == "HTML"
    assert document.files["document"].content == csv and document.files["document"].filename == "trace.csv"
    assert document.callback_data and not photo.callback_data


async def test_trace_returns_a_picture_and_a_csv(telegram: Telegram, app: App) -> None:
    calls = await telegram.say(f"/trace {LAZARUS} --hops 2")
    assert "Outgoing trace" in calls[0].params["text"] and "Lazarus Group" in calls[0].params["text"]
    [photo] = await telegram.server.wait_for("sendPhoto")
    svg, document = await telegram.server.wait_for("sendDocument", count=2)
    assert photo.files["photo"].content.startswith(b"\x89PNG") and photo.files["photo"].content_type == "image/png"
    assert svg.files["document"].filename.endswith(".svg") and b"<svg" in svg.files["document"].content
    drawn = SvgPicture(svg.files["document"].content)
    assert drawn.title[0].startswith(f"Outgoing trace (where the funds went) of {LAZARUS} on eth, up to 2 hops")
    assert "Lazarus Group" in drawn.box_with("root").text and drawn.arrows
    assert drawn.legend[0] == "traced address (root)" and "Sanctions" in drawn.legend
    assert document.files["document"].filename.endswith(".csv")
    rows = document.files["document"].content.decode().splitlines()
    assert len(rows) > 10 and any("0x098b716b8aaf21512996dc57eb0615e2383e2f96" in row.lower() for row in rows)


async def test_a_trace_says_why_it_followed_and_takes_no_pass_through_for_haircut_only(telegram: Telegram) -> None:
    calls = await telegram.say(f"/trace {LAZARUS} --hops 2 --no-pass-through")
    text = calls[0].params["text"]
    assert "Why followed: " in text and "no pass-through (no link by matching amounts)" in text
    refused = await telegram.say_one(f"/trace {LAZARUS} --model fifo --no-pass-through")
    assert "--no-pass-through applies to haircut (the default model)" in refused


async def test_flood_limits_are_respected_by_retrying_after_429(telegram: Telegram) -> None:
    telegram.server.fail_next(
        "sendMessage",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    calls = await telegram.say("/help")
    asked = _replies_to(calls[0])
    attempts = await telegram.server.wait_for("sendMessage", lambda c: _replies_to(c) == asked, count=2)
    assert attempts[0].params["text"] == attempts[1].params["text"]
    assert attempts[1].at - attempts[0].at >= 0.9


# --- webhook mode -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_checks_the_secret_token(telegram: Telegram, app: App) -> None:
    await telegram.stop()
    port = _free_port()
    await telegram.start(
        telegram_webhook_url="https://bot.example.org/telegram/hook",
        telegram_webhook_secret="s3cret-token",
        telegram_webhook_listen="127.0.0.1",
        telegram_webhook_port=port,
    )
    server = telegram.server
    [hook] = server.sent("setWebhook")
    assert hook.params["url"] == "https://bot.example.org/telegram/hook"
    assert hook.params["secret_token"] == "s3cret-token"
    audited = len(AuditLog(app.db).recent(100))
    url = f"http://127.0.0.1:{port}/telegram/hook"
    update = {"update_id": 1, **server.message("/help", chat=GROUP, user=ALICE)}
    async with aiohttp.ClientSession() as session:
        for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
            async with session.post(url, json=update, headers=headers) as response:
                assert response.status == 403
        await asyncio.sleep(0.3)
        assert not server.sent("sendMessage")
        assert len(AuditLog(app.db).recent(100)) == audited
        async with session.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "s3cret-token"}) as ok:
            assert ok.status == 200
    [answer] = await server.wait_for("sendMessage")
    assert "Commands you may run" in answer.params["text"]


def test_webhook_mode_without_a_secret_does_not_start(app: App) -> None:
    settings = app.settings.model_copy(
        update={"telegram_bot_token": TOKEN, "telegram_webhook_url": "https://bot.example.org/hook"}
    )
    with pytest.raises(TelegramSetupError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramBackend(app.bot, settings)


# --- choosing the platform ----------------------------------------------------------------------------------


def test_the_platform_is_chosen_from_the_configured_tokens() -> None:
    def chosen(**values: str) -> str:
        return Settings(_env_file=None, **values).chosen_platform  # type: ignore[call-arg, arg-type]

    assert chosen() == "console"
    assert chosen(telegram_bot_token=TOKEN) == "telegram"
    assert chosen(slack_bot_token="xoxb-1", slack_signing_secret="s") == "slack"
    assert chosen(slack_bot_token="xoxb-1", slack_app_token="xapp-1") == "slack"
    assert chosen(slack_bot_token="xoxb-1") == "console"  # a bot token alone cannot receive anything
    assert chosen(platform="console", telegram_bot_token=TOKEN) == "console"


@pytest.fixture
def run_env(tmp_path: Path, prepared_database_url: str) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "PLATFORM"))}
    env.update({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": prepared_database_url, "DEMO_DATA": "false"})
    yield env


async def test_chainsleuth_run_with_only_a_telegram_token_starts_telegram(run_env: dict[str, str]) -> None:
    server = FakeTelegram()
    await server.start()
    env = dict(run_env, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=server.base_url, ALLOWED_CHATS="telegram:-1001234")
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "chainsleuth"),
        "run",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await server.wait_for("getUpdates", within=60)
        server.push(server.message("/help", chat=GROUP, user=CAROL))
        [answer] = await server.wait_for("sendMessage", within=30)
        assert "Commands you may run" in answer.params["text"]
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        await server.stop()
    assert process.returncode == 0, stderr.decode()


# --- buttons and roles through the core ----------------------------------------------------------------------


async def test_buttons_are_kept_to_their_chat_person_and_lifetime(app: App) -> None:
    direct = IncomingMessage("telegram", "2", Identity("telegram", "2", "bob"), "", is_direct=True)
    intruder = IncomingMessage("telegram", "2", Identity("telegram", "9", "mallory"), "", is_direct=True)
    [mine] = app.bot.store_actions("telegram", "2", [Action("Help", "/help")], pressable_by="telegram:2")
    assert "someone else" in _error(await app.bot.press(intruder, mine))
    pressed = await app.bot.press(direct, mine)
    assert not pressed.reply.is_error and not pressed.used_up and pressed.command == "/help"
    assert not (await app.bot.press(direct, mine)).reply.is_error  # not a one-off: it can be pressed again
    with app.db.session() as session:
        session.execute(
            update(ButtonRow).where(col(ButtonRow.id) == mine).values(expires_at=utcnow() - timedelta(days=1))
        )
    assert "expired" in _error(await app.bot.press(direct, mine))
    entries = AuditLog(app.db).recent(10)
    assert [(e.command, e.outcome) for e in entries[:1]] == [("button", "error")]
    assert ("button", "refused") in [(e.command, e.outcome) for e in entries]


async def test_a_one_off_button_stays_for_someone_allowed_when_the_presser_lacks_the_role(app: App) -> None:
    [button] = app.bot.store_actions("telegram", "-1001234", [Action("Grant", "/role telegram:7 analyst", once=True)])
    viewer = IncomingMessage("telegram", "-1001234", Identity("telegram", "3"), "")
    admin = IncomingMessage("telegram", "-1001234", Identity("telegram", "1"), "")
    refused = await app.bot.press(viewer, button)
    assert "needs the admin role" in _error(refused) and not refused.used_up
    done = await app.bot.press(admin, button)
    assert done.used_up and not done.reply.is_error
    assert "already pressed" in _error(await app.bot.press(admin, button))


def _error(pressed: Pressed) -> str:
    errors = [p.text for p in pressed.reply.parts if isinstance(p, ErrorText)]
    assert errors, pressed.reply
    return str(errors[0])


async def test_roles_from_the_console_name_the_platform(bot: TestBackend) -> None:
    unclear = await bot.say("/role 12345 analyst")
    assert "Name the platform" in unclear.text
    assert "@username" in (await bot.say("/role @someone analyst")).text
    assert "not a telegram user id" in (await bot.say("/role telegram:abc analyst")).text
    granted = await bot.say("/role telegram:12345 officer")
    assert "telegram:12345 is now officer (was viewer)" in granted.text
    assert "telegram:12345 is officer." in (await bot.say("/role telegram:12345")).text


def test_access_lists_are_read_as_comma_separated_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_CHATS", "telegram:-1001234, slack:C0123")
    monkeypatch.setenv("ADMINS", "telegram:1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.allowed_chats == ["telegram:-1001234", "slack:C0123"] and settings.admins == ["telegram:1"]


async def test_pushed_messages_are_sent_and_edited_in_place(telegram: Telegram) -> None:
    backend = telegram.backend
    assert backend is not None
    message_id = await backend.send(
        "-1001234", Reply((Text("Alert: <new> transfer"),), actions=(Action("Ack", "/help"),))
    )
    [sent] = await telegram.server.wait_for("sendMessage")
    assert sent.params["text"] == "Alert: &lt;new&gt; transfer" and sent.callback_data
    assert message_id == str(sent.result["message_id"])
    await backend.edit("-1001234", message_id, Reply((Text("Alert: acknowledged " + "x" * 5000),)))
    [edit] = await telegram.server.wait_for("editMessageText")
    assert edit.params["message_id"] == message_id and edit.params["parse_mode"] == "HTML"
    assert edit.params["text"].endswith("\n…") and len(edit.params["text"]) <= 4096


async def test_a_failure_outside_the_command_layer_is_logged_and_the_chat_gets_a_reference(
    telegram: Telegram, caplog: pytest.LogCaptureFixture
) -> None:
    telegram.server.fail_next("sendMessage", 400, {"ok": False, "error_code": 400, "description": "Bad Request: boom"})
    telegram.server.push(telegram.server.message("/help", chat=GROUP, user=CAROL))
    _, sorry = await telegram.server.wait_for("sendMessage", count=2)
    ref = sorry.params["text"].split("<code>")[1].split("</code>")[0]
    assert sorry.params["text"].startswith("⚠️ Something went wrong on our side") and len(ref) == 8
    assert f"update failed (ref {ref})" in caplog.text


async def test_trace_compare_is_html_with_the_models_and_their_disagreement(telegram: Telegram, app: App) -> None:
    disagreeing(app.db)
    app.investigator.graphs.refresh("eth", force=True)  # the bot loaded the graph before these transfers
    text = await telegram.say_one(f"/trace {addr(1)} --model compare")
    assert text.startswith("<b>⚖️ Outgoing trace from ") and "models compared: haircut, poison, fifo" in text
    assert "<b>Where they disagree (1 address):</b>" in text, text
    assert "reached by haircut, poison only" in text
    assert "haircut 5 ETH ($15,000); poison 10 ETH ($30,000)" in text
    assert set(re.findall(r"</?[a-z]+>", text)) <= {"<b>", "</b>"}  # everything else escaped
    # then the picture of every model's flows as a photo, and its SVG and the CSV as documents
    [photo] = await telegram.server.wait_for("sendPhoto")
    svg, table = await telegram.server.wait_for("sendDocument", count=2)
    picture = photo.files["photo"]
    assert picture.content.startswith(b"\x89PNG") and picture.filename == f"compare-{addr(1)[:10]}-out-3h.png"
    assert photo.params["caption"].startswith("Flow graph of every taint model")
    drawn = SvgPicture(svg.files["document"].content)
    assert drawn.title[0].endswith("the models disagree on 1 address (outlined in red)")
    assert len(drawn.addresses) == 4 and "red border: the models disagree on this address" in drawn.legend
    rows = table.files["document"].content.decode().splitlines()
    assert table.files["document"].filename.endswith(".csv") and len(rows) == 4
    assert "haircut_taint_usd" in rows[0] and ",haircut;poison," in rows[2]
