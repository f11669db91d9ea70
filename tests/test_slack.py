"""Slack end to end: the Bolt app in HTTP mode on a loopback port receives correctly (and wrongly) signed slash
commands, app mentions, messages and button presses; its Web API client talks to a local recording Slack. Socket Mode
runs against a local websocket. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.access import AccessPolicy
from bot.app import App, build_app
from bot.backends.slack import SlackBackend, SlackSetupError, command_text
from bot.commands import CommandSpec
from bot.context import Context
from bot.messages import Action, Attachment, Identity, IncomingMessage, Reply, Text
from storage.audit import AuditLog
from storage.settings import Settings
from tests.support.chat_harness import running
from tests.support.pictures import SvgPicture
from tests.support.slack_server import (
    BOT_USER_ID,
    ApiCall,
    FakeSlack,
    block_actions,
    event_callback,
    form,
    message_event,
    sign,
    slash_command,
)
from tests.test_scopes import incident_in
from tests.test_trace import addr
from tests.test_trace_commands import disagreeing

LAZARUS = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0ALLOWED"
ELSEWHERE = "C0OTHER"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"  # admin, analyst, viewer
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=True,  # the Ronin-hack flows: /risk shows the sanctions path, /trace has funds to follow
        allowed_chats=[f"slack:{CHANNEL}", "telegram:-1001234"],
        admins=[f"slack:{ALICE}"],
        analysts=[f"slack:{BOB}"],
    )


class Slack:
    """The recording Slack and the bot's Slack front end in HTTP mode, started together."""

    def __init__(self, server: FakeSlack, app: App) -> None:
        self.server = server
        self.app = app
        self.backend: SlackBackend | None = None
        self.names = (f"r{i}" for i in range(10_000))

    async def start(self, **changes: Any) -> SlackBackend:
        settings = self.app.settings.model_copy(
            update={
                "slack_bot_token": "xoxb-test",
                "slack_signing_secret": SECRET,
                "slack_api_base_url": self.server.api_url,
                "slack_http_host": "127.0.0.1",
                "slack_http_port": 0,
                **changes,
            }
        )
        self.backend = SlackBackend(self.app.bot, settings)
        await self.backend.start()
        return self.backend

    async def stop(self) -> None:
        if self.backend is not None:
            await self.backend.stop()

    @property
    def url(self) -> str:
        assert self.backend is not None
        return f"http://127.0.0.1:{self.backend.port}/slack/events"

    async def post(
        self, body: str, content_type: str, *, headers: dict[str, str] | None = None
    ) -> tuple[int, str, float]:
        """POST as Slack does (signed unless `headers` are given); returns status, body and seconds to the ack."""
        sent = {"Content-Type": content_type, **(sign(SECRET, body) if headers is None else headers)}
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session, session.post(self.url, data=body, headers=sent) as response:
            text = await response.text()
            return response.status, text, time.perf_counter() - started

    async def command(self, text: str, *, user: str = CAROL, channel: str = CHANNEL) -> tuple[int, str]:
        """`/sleuth text`; returns the ack status and the name of its response_url."""
        name = next(self.names)
        fields = slash_command(text, user=user, channel=channel, response_url=self.server.response_url(name))
        status, _, _ = await self.post(form(fields), "application/x-www-form-urlencoded")
        return status, name

    async def ask(self, text: str, *, user: str = CAROL, channel: str = CHANNEL) -> ApiCall:
        """`/sleuth text` and the chat.postMessage that answers it."""
        before = len(self.server.sent("chat.postMessage"))
        status, _ = await self.command(text, user=user, channel=channel)
        assert status == 200
        calls = await self.server.wait_for("chat.postMessage", count=before + 1)
        return calls[before]

    async def refused(self, text: str, *, user: str = CAROL, channel: str = CHANNEL) -> ApiCall:
        """`/sleuth text` and the ephemeral response_url answer (errors and refusals go only to the asker)."""
        status, name = await self.command(text, user=user, channel=channel)
        assert status == 200
        [answer] = await self.server.wait_for("respond", lambda c: c.params["name"] == name)
        return answer


@pytest.fixture
async def slack(app: App) -> AsyncIterator[Slack]:
    async with running(FakeSlack(), lambda server: Slack(server, app)) as harness:
        yield harness


# --- the commands ----------------------------------------------------------------------------------------------


async def test_risk_on_the_lazarus_address_is_severe_with_the_sanctions_label_and_source(slack: Slack) -> None:
    answer = await slack.ask(f"risk {LAZARUS}")
    assert answer.params["channel"] == CHANNEL
    assert answer.headers["Authorization"] == "Bearer xoxb-test"
    blocks = answer.params["blocks"]
    assert blocks[0]["type"] == "context" and f"<@{CAROL}> asked: `/sleuth risk {LAZARUS}`" in json.dumps(blocks[0])
    header = next(b for b in blocks if b["type"] == "header")
    assert "SEVERE" in header["text"]["text"] and "SANCTIONED" in header["text"]["text"]
    fields = {f["text"].split("\n")[0]: f["text"].split("\n")[1] for f in blocks[2]["fields"]}
    assert fields["*Level*"] == "SEVERE" and fields["*Sanctioned*"] == "yes" and fields["*Score*"] == "100/100"
    assert "Lazarus Group" in answer.text and "ofac-sdn" in answer.text and "DPRK3" in answer.text
    assert "<https://sanctionssearch.ofac.treas.gov/Details.aspx?id=" in answer.text
    # The sanctions path: funds sent on to Lazarus Group wallets, with the transfer ids of each hop.
    assert "Sanctions (direct, outgoing)" in answer.text and "to Lazarus Group" in answer.text
    assert "path: `dune:" in answer.text
    assert "haircut taint" in answer.text
    buttons = blocks[-1]["elements"]
    assert blocks[-1]["type"] == "actions" and buttons[0]["action_id"] == "chainsleuth:0" and buttons[0]["value"]
    assert all(t["verbatim"] for b in blocks for t in _mrkdwn(b))


def _mrkdwn(block: dict[str, Any]) -> list[dict[str, Any]]:
    texts = [block.get("text")] + block.get("fields", []) + block.get("elements", [])
    return [t for t in texts if isinstance(t, dict) and t.get("type") == "mrkdwn"]


async def test_an_app_mention_is_answered_in_its_thread(slack: Slack) -> None:
    event = message_event(f"<@{BOT_USER_ID}> risk {LAZARUS}", user=CAROL, channel=CHANNEL, kind="app_mention")
    status, _, _ = await slack.post(event_callback(event), "application/json")
    assert status == 200
    [answer] = await slack.server.wait_for("chat.postMessage")
    assert answer.params["thread_ts"] == event["ts"]
    assert "SEVERE" in answer.text and "Lazarus Group" in answer.text
    # The same text also arrives as a channel message: it is the mention's, so no "Check risk" offer.
    as_message = message_event(event["text"], user=CAROL, channel=CHANNEL)
    await slack.post(event_callback(as_message), "application/json")
    await asyncio.sleep(0.3)
    assert len(slack.server.sent("chat.postMessage")) == 1


async def test_help_differs_for_a_viewer_and_an_admin(slack: Slack) -> None:
    viewer = (await slack.ask("help", user=CAROL)).text
    admin = (await slack.ask("", user=ALICE)).text  # a bare /sleuth is /help
    assert "/risk ADDRESS" in viewer and "/risk ADDRESS" in admin
    assert "/role" not in viewer and "/label ADDRESS" not in viewer
    assert "/role USER [ROLE]" in admin and "/label ADDRESS CATEGORY NAME" in admin
    usage = (await slack.ask("help risk")).text
    assert "*Usage:* `/risk ADDRESS" in usage


async def test_an_unknown_channel_is_refused_in_one_line_and_audited(slack: Slack, app: App) -> None:
    answer = await slack.refused(f"risk {LAZARUS}", user=ALICE, channel=ELSEWHERE)
    assert answer.params["response_type"] == "ephemeral"
    assert answer.params["text"] == "Error: This chat is not authorised to use chainsleuth."
    assert answer.params["blocks"][0]["text"]["text"] == ":warning: This chat is not authorised to use chainsleuth."
    assert not slack.server.sent("chat.postMessage")
    entry = AuditLog(app.db).recent(1)[0]
    assert (entry.platform, entry.chat, entry.actor) == ("slack", ELSEWHERE, f"slack:{ALICE}")
    assert (entry.command, entry.outcome) == ("risk", "refused")


def test_a_workspace_on_the_allow_list_allows_its_channels(app: App) -> None:
    policy = AccessPolicy(app.settings.model_copy(update={"allowed_chats": ["slack:T0TEAM"]}), app.db)
    carol = Identity("slack", CAROL)
    assert policy.chat_allowed(IncomingMessage("slack", "C0ANY", carol, "/help", workspace="T0TEAM"))
    assert not policy.chat_allowed(IncomingMessage("slack", "C0ANY", carol, "/help", workspace="T0ELSE"))
    assert not policy.chat_allowed(IncomingMessage("slack", "C0ANY", carol, "/help"))


async def test_a_trace_says_why_it_followed_and_takes_no_pass_through_for_haircut_only(slack: Slack) -> None:
    answer = await slack.ask(f"trace {LAZARUS} --hops 2 --no-pass-through")
    assert "Why followed: " in answer.text and "no pass-through (no link by matching amounts)" in answer.text
    refused = await slack.refused(f"trace {LAZARUS} --model poison --no-pass-through")
    assert "--no-pass-through applies to haircut (the default model)" in refused.params["text"]


async def test_labels_from_analysts_are_shown_as_text_never_as_mentions_or_links(slack: Slack, app: App) -> None:
    target = "0x3333333333333333333333333333333333333333"
    refused = await slack.refused(f"label {target} scam nope", user=CAROL)
    assert "needs the analyst role" in refused.params["text"]
    # As Slack sends them: @channel and a link as control sequences, a typed `<` escaped as `&lt;`.
    await slack.ask(f"label {target} scam <!channel> <https://evil.example|click>", user=BOB)
    await slack.ask(f"label {target} scam '&lt;b&gt;x&lt;/b&gt;&lt;a href=\"x\"&gt;' --confidence 0.9", user=BOB)
    listing = await slack.ask(f"labels {target}")
    risk = await slack.ask(f"risk {target}")
    for answer in slack.server.sent("chat.postMessage"):
        assert "<!channel>" not in answer.text and "<https://evil.example" not in answer.text
        assert "<b>x" not in answer.text and '<a href=\\"x\\">' not in answer.text
    for answer in (listing, risk):
        assert "&lt;!channel&gt; &lt;https://evil.example|click&gt;" in answer.text
        assert '&lt;b&gt;x&lt;/b&gt;&lt;a href=\\"x\\"&gt;' in answer.text
        assert "&lt;!channel&gt;" in answer.params["text"]  # the notification fallback too
    labels = app.investigator.labels.for_address(target)
    assert {lb.name for lb in labels} == {'<b>x</b><a href="x">', "<!channel> <https://evil.example|click>"}
    assert {(lb.source, lb.created_by) for lb in labels} == {("team:slack", f"slack:{BOB}")}


async def test_role_is_for_admins_and_accepts_a_mention(slack: Slack) -> None:
    refused = await slack.refused(f"role <@{CAROL}|carol> admin", user=BOB)
    assert "needs the admin role" in refused.params["text"]
    granted = await slack.ask(f"role <@{CAROL}|carol> analyst", user=ALICE)
    assert f"slack:{CAROL} is now analyst (was viewer)" in granted.text
    assert "/label ADDRESS" in (await slack.ask("help", user=CAROL)).text


async def test_scopes_unknown_chains_and_user_ids_over_slack(slack: Slack, app: App) -> None:
    unknown = await slack.refused(f"risk {LAZARUS} --chain foo", user=BOB)
    assert "not configured" in unknown.params["text"] and "SEVERE" not in unknown.params["text"]
    assert "console:bob is now officer" in (await slack.ask("role console:bob officer", user=ALICE)).text
    assert f"slack:{BOB} is now officer" in (await slack.ask(f"role slack:{BOB} officer", user=ALICE)).text
    incident = await incident_in(app, ELSEWHERE, "slack")
    elsewhere = await slack.refused(f"ack {incident}", user=BOB)
    assert f"No incident #{incident}." in elsewhere.params["text"]
    assert "No incidents here." in (await slack.ask("incidents all", user=BOB)).text
    assert f"#{incident} open" in (await slack.ask("incidents", user=ALICE)).text  # an admin sees the workspace's


# --- signatures -----------------------------------------------------------------------------------------------


async def test_forged_missing_or_stale_signatures_are_rejected_and_run_nothing(slack: Slack, app: App) -> None:
    body = form(
        slash_command(f"risk {LAZARUS}", user=ALICE, channel=CHANNEL, response_url=slack.server.response_url("x"))
    )
    stale = int(time.time()) - 6 * 60
    attempts = {
        "forged": sign("not-the-secret", body),
        "missing": {},
        "stale": sign(SECRET, body, stale),
        "tampered": sign(SECRET, body.replace("risk", "help")),
    }
    for name, headers in attempts.items():
        status, _, _ = await slack.post(body, "application/x-www-form-urlencoded", headers=headers)
        assert status == 401, name
    await asyncio.sleep(0.5)
    assert not AuditLog(app.db).recent(10)
    assert not [c for c in slack.server.calls if c.method != "auth.test"]
    status, _, _ = await slack.post(body, "application/x-www-form-urlencoded")  # the same request, signed
    assert status == 200
    await slack.server.wait_for("chat.postMessage")
    assert len(AuditLog(app.db).recent(10)) == 1


# --- buttons, pasted addresses, files, rate limits ----------------------------------------------------------


async def test_a_pasted_address_is_offered_once_and_the_button_runs_as_the_presser(slack: Slack, app: App) -> None:
    server = slack.server
    await slack.post(event_callback(message_event(f"seen {LAZARUS}?", user=CAROL, channel=CHANNEL)), "application/json")
    [offer] = await server.wait_for("chat.postMessage")
    assert "Check the risk of 0x098B716B8Aaf21512996dC57EB0615e2383E2f96?" in offer.text
    for again in (f"again {LAZARUS}", f"/risk {LAZARUS}"):
        await slack.post(event_callback(message_event(again, user=BOB, channel=CHANNEL)), "application/json")
    await slack.post(event_callback(message_event(LAZARUS, user=BOB, channel=ELSEWHERE)), "application/json")
    await asyncio.sleep(0.3)
    assert len(server.sent("chat.postMessage")) == 1

    value = offer.params["blocks"][-1]["elements"][0]["value"]
    message = {
        "type": "message",
        "ts": "1700000000.000200",
        "text": offer.params["text"],
        "blocks": offer.params["blocks"],
    }
    press = block_actions(value, user=BOB, channel=CHANNEL, message=message, response_url=server.response_url("p1"))
    status, _, _ = await slack.post(press, "application/x-www-form-urlencoded")
    assert status == 200
    [update] = await server.wait_for("chat.update")
    assert update.params["ts"] == "1700000000.000200"
    assert all(b["type"] != "actions" for b in update.params["blocks"]) and f"Checked by <@{BOB}>" in update.text
    [report] = await server.wait_for("chat.postMessage", lambda c: "SEVERE" in c.text)
    assert f"<@{BOB}> asked: `/risk {LAZARUS.lower()}`" in report.text
    entry = AuditLog(app.db).recent(1)[0]
    assert (entry.actor, entry.command, entry.outcome) == (f"slack:{BOB}", "risk", "ok")

    again = block_actions(value, user=CAROL, channel=CHANNEL, message=message, response_url=server.response_url("p2"))
    await slack.post(again, "application/x-www-form-urlencoded")
    [toast] = await server.wait_for("respond", lambda c: c.params["name"] == "p2")
    assert "already pressed" in toast.params["text"] and toast.params["response_type"] == "ephemeral"
    assert len(server.sent("chat.update")) == 1


def _register(app: App, name: str, reply: Reply) -> None:
    async def handler(ctx: Context, inv: object) -> Reply:
        return reply

    app.bot.registry.add(CommandSpec(name=name, summary=f"test command {name}", handler=handler))


async def test_files_are_uploaded_with_files_upload_v2(slack: Slack, app: App) -> None:
    csv = b"hop,from,to,tx\n1,0xa,0xb,0xc\n"
    reply = Reply(
        (Text("Here are the files <!here>"),),
        attachments=(
            Attachment("trace.png", PNG, "image/png", "flow <!channel>"),
            Attachment("trace.csv", csv, "text/csv", "transfers"),
        ),
    )
    _register(app, "files", reply)
    await slack.ask("files")
    completed = await slack.server.wait_for("files.completeUploadExternal", count=2)
    uploads = slack.server.sent("files.getUploadURLExternal")
    assert [u.params["filename"] for u in uploads] == ["trace.png", "trace.csv"]
    assert [u.params["length"] for u in uploads] == [str(len(PNG)), str(len(csv))]
    assert sorted(slack.server.uploads.values()) == sorted([PNG, csv])
    assert {c.params["channel_id"] for c in completed} == {CHANNEL}
    assert completed[0].params["initial_comment"] == "flow &lt;!channel&gt;"
    assert "<!here>" not in slack.server.sent("chat.postMessage")[0].text


async def test_trace_returns_a_picture_and_a_csv(slack: Slack, app: App) -> None:
    answer = await slack.ask(f"trace {LAZARUS} --hops 2")
    assert "Outgoing trace" in answer.text and "Lazarus Group" in answer.text
    await slack.server.wait_for("files.completeUploadExternal", count=3)
    names = [u.params["filename"] for u in slack.server.sent("files.getUploadURLExternal")]
    assert [n.rsplit(".", 1)[1] for n in names] == ["png", "svg", "csv"]  # the picture, as SVG too, and the CSV
    assert any(raw.startswith(b"\x89PNG") for raw in slack.server.uploads.values())
    assert any(raw.count(b"\n") > 10 and b"0x098b716b" in raw.lower() for raw in slack.server.uploads.values())
    (svg,) = [raw for raw in slack.server.uploads.values() if raw.startswith(b"<?xml")]
    drawn = SvgPicture(svg)
    assert drawn.title[0].startswith(f"Outgoing trace (where the funds went) of {LAZARUS} on eth, up to 2 hops")
    assert "Lazarus Group" in drawn.box_with("root").text and drawn.arrows
    assert drawn.legend[0] == "traced address (root)" and "Sanctions" in drawn.legend


async def test_429_retry_after_is_honoured(slack: Slack) -> None:
    slack.server.fail_next("chat.postMessage", 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})
    await slack.command("help")
    first, second = await slack.server.wait_for("chat.postMessage", count=2)
    assert second.at - first.at >= 0.95
    assert first.params["text"] == second.params["text"]


# --- latency, Socket Mode, configuration ----------------------------------------------------------------------


async def test_slash_commands_are_acked_at_once_and_answered_soon_after(slack: Slack) -> None:
    acks, answers = [], []
    cold = time.monotonic()
    first = await slack.ask(f"risk {LAZARUS}")  # caches and auth.test were warmed before the port opened
    cold_answer = first.at - cold
    for index in range(20):
        name = f"lat{index}"
        fields = slash_command(
            f"risk {LAZARUS}", user=CAROL, channel=CHANNEL, response_url=slack.server.response_url(name)
        )
        before = len(slack.server.sent("chat.postMessage"))
        started = time.monotonic()  # the recording server stamps calls with the same clock
        status, body, acked = await slack.post(form(fields), "application/x-www-form-urlencoded")
        assert status == 200 and body == ""
        calls = await slack.server.wait_for("chat.postMessage", count=before + 1)
        answers.append(calls[before].at - started)
        acks.append(acked)
    report = (
        f"slash command ack: median {statistics.median(acks) * 1000:.1f} ms, max {max(acks) * 1000:.1f} ms; "
        f"chat.postMessage received: median {statistics.median(answers) * 1000:.1f} ms, "
        f"max {max(answers) * 1000:.1f} ms (n={len(acks)}); first answer after start {cold_answer * 1000:.0f} ms"
    )
    print(report)
    assert max(acks) < 3.0  # Slack's deadline
    assert statistics.median(acks) < 0.5


async def test_socket_mode_when_an_app_token_is_set(app: App) -> None:
    server = FakeSlack()
    await server.start()
    harness = Slack(server, app)
    await harness.start(slack_app_token="xapp-1-test", slack_signing_secret="")
    try:
        assert harness.backend is not None and harness.backend.socket_mode
        [opened] = await server.wait_for("apps.connections.open")
        assert opened.headers["Authorization"] == "Bearer xapp-1-test"
        payload = slash_command(f"risk {LAZARUS}", user=CAROL, channel=CHANNEL, response_url=server.response_url("s"))
        envelope = {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": payload,
        }
        ack = await server.socket_send(envelope)
        assert ack["envelope_id"] == "env-1"
        [answer] = await server.wait_for("chat.postMessage")
        assert "SEVERE" in answer.text and "Lazarus Group" in answer.text
    finally:
        await harness.stop()
        await server.stop()


def test_http_mode_needs_a_signing_secret(app: App) -> None:
    settings = app.settings.model_copy(update={"slack_bot_token": "xoxb-test", "slack_signing_secret": ""})
    with pytest.raises(SlackSetupError, match="SLACK_SIGNING_SECRET"):
        SlackBackend(app.bot, settings)


def test_command_text_from_slash_commands_and_mentions() -> None:
    assert command_text("") == "/help"
    assert command_text("risk 0xabc") == "/risk 0xabc"
    assert command_text("/risk 0xabc") == "/risk 0xabc"
    assert command_text(f"<@{BOT_USER_ID}> risk 0xabc") == "/risk 0xabc"
    assert command_text(f"<@{BOT_USER_ID}|chainsleuth>: help") == "/help"
    assert command_text("label 0xabc scam &lt;b&gt; &amp;lt;") == "/label 0xabc scam <b> &lt;"


async def test_chainsleuth_run_with_only_slack_tokens_starts_slack(tmp_path: Path, prepared_database_url: str) -> None:
    server = FakeSlack()
    await server.start()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "PLATFORM"))}
    env.update(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": prepared_database_url,
            "DEMO_DATA": "false",
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_BASE_URL": server.api_url,
            "SLACK_HTTP_PORT": str(port),
            "ALLOWED_CHATS": f"slack:{CHANNEL}",
        }
    )
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "chainsleuth"),
        "run",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    body = form(slash_command("help", user=CAROL, channel=CHANNEL, response_url=server.response_url("run")))
    try:
        status = await _post_until_listening(f"http://127.0.0.1:{port}/slack/events", body)
        assert status == 200
        [answer] = await server.wait_for("chat.postMessage", within=30)
        assert "Commands you may run" in answer.text
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        await server.stop()
    assert process.returncode == 0, stderr.decode()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _post_until_listening(url: str, body: str, within: float = 60) -> int:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while True:
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    return response.status
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


def test_the_manifest_matches_what_the_app_listens_for() -> None:
    import yaml

    from bot.backends.slack import EVENTS_PATH, SLASH_COMMAND

    manifest = yaml.safe_load((Path(__file__).resolve().parent.parent / "slack-app-manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == SLASH_COMMAND and command["url"].endswith(EVENTS_PATH)
    assert command["should_escape"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"chat:write", "files:write", "commands", "app_mentions:read", "channels:history"} <= scopes
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {"app_mention", "message.channels"}
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(EVENTS_PATH)


def _clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The store's clock for remembered offers and events, moved by the test."""
    clock = [datetime(2026, 1, 5, 9, 0, tzinfo=UTC)]
    monkeypatch.setattr("bot.once.utcnow", lambda: clock[0])
    return clock


async def test_offers_come_back_after_the_quiet_period(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _clock(monkeypatch)
    message = IncomingMessage("slack", CHANNEL, Identity("slack", CAROL), f"what about {LAZARUS} and {LAZARUS}")
    first = app.bot.offer_risk_checks(message)
    assert first is not None and [a.command for a in first.actions] == [f"/risk {LAZARUS.lower()}"]
    assert first.actions[0].once
    clock[0] += timedelta(minutes=9)
    assert app.bot.offer_risk_checks(message) is None
    other_chat = IncomingMessage("slack", "C0SECOND", Identity("slack", CAROL), LAZARUS)
    assert app.bot.offer_risk_checks(other_chat) is None  # not on the allow-list
    clock[0] += timedelta(minutes=2)  # 11 minutes after the first offer (the default quiet period is 10)
    assert app.bot.offer_risk_checks(message) is not None
    typo = IncomingMessage("slack", CHANNEL, Identity("slack", CAROL), LAZARUS[:-1] + "7")  # fails its checksum
    assert app.bot.offer_risk_checks(typo) is None


async def test_pushed_messages_are_posted_and_updated_in_place(slack: Slack) -> None:
    backend = slack.backend
    assert backend is not None
    ts = await backend.send(CHANNEL, Reply((Text("Alert: <!channel> moved"),), actions=(Action("Ack", "/help"),)))
    [posted] = await slack.server.wait_for("chat.postMessage")
    assert "&lt;!channel&gt;" in posted.text and "<!channel>" not in posted.text
    assert posted.params["blocks"][-1]["type"] == "actions"
    await backend.edit(CHANNEL, ts, Reply((Text("Alert: acknowledged"),)))
    [update] = await slack.server.wait_for("chat.update")
    assert update.params["ts"] == ts and update.params["text"] == "Alert: acknowledged"


# --- re-deliveries, restarts, a cold start -------------------------------------------------------------------


def _retry_headers(body: str, attempt: int = 1) -> dict[str, str]:
    """What Slack adds when it re-delivers an event it saw no ack for (the body, event_id included, is the same)."""
    return {**sign(SECRET, body), "X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}


async def _second_process(app: App, server: FakeSlack) -> tuple[Slack, App]:
    """Another bot process over the same store and the same Slack workspace: its own app, Bot and HTTP port."""
    other = build_app(app.settings, database_url=app.db.url)
    harness = Slack(server, other)
    await harness.start()
    return harness, other


async def test_a_retried_mention_is_answered_once_even_at_another_process(slack: Slack, app: App) -> None:
    event = message_event(f"<@{BOT_USER_ID}> risk {LAZARUS}", user=CAROL, channel=CHANNEL, kind="app_mention")
    body = event_callback(event)
    assert (await slack.post(body, "application/json"))[0] == 200
    [answer] = await slack.server.wait_for("chat.postMessage")
    assert "SEVERE" in answer.text
    status, _, _ = await slack.post(body, "application/json", headers=_retry_headers(body))  # here again
    assert status == 200
    other, other_app = await _second_process(app, slack.server)
    try:
        status, _, _ = await other.post(body, "application/json", headers=_retry_headers(body, 2))  # at the other
        assert status == 200
        await asyncio.sleep(0.5)
        assert len(slack.server.sent("chat.postMessage")) == 1
        # A new event (another event_id) with the same text is a new request: answered.
        fresh = event_callback(event)
        assert json.loads(fresh)["event_id"] != json.loads(body)["event_id"]
        await other.post(fresh, "application/json")
        await slack.server.wait_for("chat.postMessage", count=2)
    finally:
        await other.stop()
        other_app.close()
    assert [e.command for e in AuditLog(app.db).recent(10)] == ["risk", "risk"]


async def test_a_retried_message_runs_once_even_without_a_quiet_period(slack: Slack, app: App) -> None:
    app.bot.settings = app.settings.model_copy(update={"address_offer_minutes": 0})  # every paste is offered
    body = event_callback(message_event(f"seen {LAZARUS}?", user=CAROL, channel=CHANNEL))
    await slack.post(body, "application/json")
    await slack.server.wait_for("chat.postMessage")
    await slack.post(body, "application/json", headers=_retry_headers(body))
    await asyncio.sleep(0.5)
    assert len(slack.server.sent("chat.postMessage")) == 1
    await slack.post(event_callback(message_event(f"seen {LAZARUS}?", user=CAROL, channel=CHANNEL)), "application/json")
    await slack.server.wait_for("chat.postMessage", count=2)  # a new message is offered again (no quiet period)


async def test_offers_are_remembered_across_a_restart_and_between_processes(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _clock(monkeypatch)
    pasted = IncomingMessage("slack", CHANNEL, Identity("slack", CAROL), f"what about {LAZARUS}?")
    assert app.bot.offer_risk_checks(pasted) is not None
    restarted = build_app(app.settings, database_url=app.db.url)  # a restart, or a second process on the store
    try:
        assert restarted.bot.offer_risk_checks(pasted) is None
        clock[0] += timedelta(minutes=9)
        assert restarted.bot.offer_risk_checks(replace(pasted, user=Identity("slack", BOB))) is None
        other_chat = replace(pasted, platform="telegram", chat_id="-1001234")
        assert restarted.bot.offer_risk_checks(other_chat) is not None  # per chat
        clock[0] += timedelta(minutes=2)  # the quiet period (10 minutes) is over
        assert restarted.bot.offer_risk_checks(pasted) is not None
        assert app.bot.offer_risk_checks(pasted) is None  # and the first process sees the new offer
    finally:
        restarted.close()


async def test_the_token_is_checked_once_before_serving(app: App) -> None:
    server = FakeSlack()
    await server.start()
    harness = Slack(server, app)
    try:
        server.fail_next("auth.test", 200, {}, {"ok": False, "error": "invalid_auth"})
        with pytest.raises(SlackSetupError, match="invalid_auth"):
            await harness.start()
        await harness.start()
        assert len(server.sent("auth.test")) == 2
        statuses = await asyncio.gather(*(harness.command("help", user=f"U0W{i}") for i in range(10)))
        assert {status for status, _ in statuses} == {200}
        await server.wait_for("chat.postMessage", count=10)
        assert len(server.sent("auth.test")) == 2  # Bolt asked no more
    finally:
        await harness.stop()
        await server.stop()


async def test_label_caches_load_off_the_event_loop_and_before_the_port_opens(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every label is held in memory for tracing (thousands in the bundled sets). Loading them on the event loop
    stalled every request behind the first /risk after a start (acks too); they load in a worker thread, at start
    and again when the label table changes."""
    from tracing.labels import Category, Label

    built = Label.from_row
    made_on: list[bool] = []  # one entry per label built from a row: on the event loop's thread?

    def from_row(row: Any) -> Label:
        made_on.append(threading.current_thread() is threading.main_thread())
        return built(row)

    monkeypatch.setattr(Label, "from_row", staticmethod(from_row))
    server = FakeSlack()
    await server.start()
    harness = Slack(server, app)
    await harness.start()
    try:
        loaded = len(made_on)
        assert loaded > 1000 and not any(made_on)  # the warm-up, in a worker thread, before the port opened

        app.investigator.labels.add(Label(LAZARUS.lower(), Category.HACK, "Ronin bridge exploiter", "analyst:test"))
        app.investigator.label_cache.check_interval = 0.05
        await asyncio.sleep(0.1)
        gaps: list[float] = []

        async def heartbeat() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        beating = asyncio.create_task(heartbeat())
        answer = await harness.ask(f"risk {LAZARUS}")
        beating.cancel()
        assert "Ronin bridge exploiter" in answer.text
        reloaded = made_on[loaded:]
        assert len(reloaded) > 1000
        on_loop = sum(reloaded)
        assert on_loop < 10, f"{on_loop} of {len(reloaded)} labels were built on the event loop"
        print(f"loop gaps while the labels reloaded: max {max(gaps) * 1000:.0f} ms over {len(gaps)} beats")
    finally:
        await harness.stop()
        await server.stop()


async def test_trace_compare_in_blocks_with_the_models_and_their_disagreement(slack: Slack, app: App) -> None:
    disagreeing(app.db)
    app.investigator.graphs.refresh("eth", force=True)  # the bot loaded the graph before these transfers
    answer = await slack.ask(f"trace {addr(1)} --model compare")
    blocks = answer.params["blocks"]
    header = next(b for b in blocks if b["type"] == "header")
    assert "Outgoing trace from" in header["text"]["text"] and "haircut, poison, fifo" in header["text"]["text"]
    body = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert "• fifo: 2 addresses reached" in body and "reached by haircut, poison only" in body
    assert "haircut 5 ETH ($15,000); poison 10 ETH ($30,000)" in body
    # then the picture of every model's flows (PNG and SVG) and the CSV, uploaded to the channel
    completed = await slack.server.wait_for("files.completeUploadExternal", count=3)
    assert {c.params["channel_id"] for c in completed} == {CHANNEL}
    names = [u.params["filename"] for u in slack.server.sent("files.getUploadURLExternal")]
    stem = f"compare-{addr(1)[:10]}-out-3h"
    assert names == [f"{stem}.png", f"{stem}.svg", f"{stem}.csv"]
    uploads = list(slack.server.uploads.values())
    assert any(raw.startswith(b"\x89PNG") for raw in uploads)
    (svg,) = [raw for raw in uploads if raw.startswith(b"<?xml")]
    drawn = SvgPicture(svg)
    assert len(drawn.addresses) == 4 and drawn.box_with("models disagree").stroke == "#d62728"
    (table,) = [raw.decode() for raw in uploads if raw.startswith(b"hop,")]
    assert len(table.splitlines()) == 4 and "fifo_taint_amount" in table.splitlines()[0]
