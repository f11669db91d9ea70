"""Property-based fuzzing of the whole command grammar (hypothesis): every command and alias, every role,
adversarial words (other scripts' digits, huge and negative numbers, exponents, dates out of range, dollar
amounts, quotes, repeated and unknown flags, control characters). Whatever comes in, the bot answers: never an
internal error, a refusal is one sentence, and a refused command writes nothing to the store but its audit row.

`FUZZ_EXAMPLES` (default 2,000 over the two tests) sets how many commands are tried."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from bot.app import App, build_app
from bot.handlers import build_registry
from bot.messages import ErrorText, Identity, IncomingMessage
from storage import Settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
REGISTRY = build_registry()
NAMES = sorted(REGISTRY.commands) + sorted(REGISTRY.aliases) + ["nosuch", "Risk", "TRACE"]

GROUP = "-1001"
USERS = [
    (Identity("console", "operator", "operator"), "console"),  # the local operator: admin, every scope
    (Identity("telegram", "1", "viewer"), GROUP),
    (Identity("telegram", "2", "analyst"), GROUP),
    (Identity("telegram", "3", "officer"), GROUP),
    (Identity("telegram", "4", "admin"), GROUP),
    (Identity("telegram", "5", "stranger"), "-999"),  # a chat that is not allowed
]

ODD_DIGITS = "²³¹٠١٢٣٤٥٦٧٨٩０１２３４５６７８９৪߃½⅓"
ADDRESSES = [
    "0x098B716B8Aaf21512996dC57EB0615e2383E2f96",
    "0x098b716b8aaf21512996dc57eb0615e2383e2f96",
    "0x098B716B8Aaf21512996dC57EB0615e2383E2f97",  # bad checksum
    "0x1234",
    "vitalik.eth",
    "<0x1111111111111111111111111111111111111111|x>",
]
SPECIAL = [
    "1E-999999999",
    "1e99",
    "nan",
    "inf",
    "-0",
    "-1",
    "0",
    "0x10",
    "$500",
    "500 USD",
    "US$1",
    "$",
    "1.5",
    "0.000000000000000000001",
    "99999999999999999999",
    "9" * 400,
    "2008-12-31",
    "2101-01-01",
    "2022-03-01",
    "2022-03-01T10:00:00Z",
    "2022-02-30",
    "#12",
    "#²",
    "#0",
    "15,30",
    "10,²",
    ",,,",
    "80%",
    "0.8",
    "101%",
    "me",
    "@alice",
    "telegram:2",
    "console:bob",
    "slack:U0123ABC",
    "<@U0123ABC|bob>",
    "native",
    "out",
    "in",
    "sideways",
    "poison",
    "haircut",
    "scam",
    "mixer",
    "true_positive",
    "fp",
    "all",
    "open",
    "mine",
    "viewer",
    "admin",
    "eth",
    "foo",
    "Bad Name!",
    "https://example.org/x",
    "javascript:alert(1)",
    "--",
    "'",
    '"',
    "“quoted”",
    "\u202e",
    "\x00",
    "\n",
    "a\tb",
]

numbers = st.one_of(
    st.integers(-(10**40), 10**40).map(str),
    st.text(alphabet="0123456789" + ODD_DIGITS, min_size=1, max_size=24),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
)
values = st.one_of(numbers, st.sampled_from(SPECIAL + ADDRESSES), st.text(max_size=24))


@st.composite
def command_text(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(NAMES))
    spec = REGISTRY.get(name)
    flag_names = [f"--{f.name}" for f in spec.flags] if spec is not None else []
    flag_names += ["--hops", "--since", "--min", "--x", "--json"]
    flag = st.sampled_from(flag_names)
    piece = st.one_of(
        values.map(lambda v: [v]),
        flag.map(lambda f: [f]),
        st.tuples(flag, values).map(list),  # --flag value
        st.tuples(flag, values).map(lambda fv: [f"{fv[0]}={fv[1]}"]),
    )
    words = [w for part in draw(st.lists(piece, max_size=5)) for w in part]
    if spec is not None and spec.params and spec.params[0].name == "address" and draw(st.booleans()):
        words = [ADDRESSES[0], *words]  # mostly well-formed: the grammar's later checks and the handler run too
    if draw(st.booleans()):
        rest = " ".join(shlex.quote(w) for w in words)
    else:
        rest = " ".join(words)  # unbalanced quotes and stray newlines too
    return f"/{name} {rest}".rstrip()


@pytest.fixture
def fuzz_app(tmp_path: Path) -> Iterator[App]:
    config = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path / "data",
        demo_data=True,  # the Ronin flows: /trace and /risk on ADDRESSES[0] run the compiled walk for real
        allowed_chats=[f"telegram:{GROUP}"],
        analysts=["telegram:2"],
        officers=["telegram:3"],
        admins=["telegram:4"],
    )
    the_app = build_app(config, database_url=f"sqlite:///{tmp_path / 'fuzz.sqlite3'}")
    yield the_app
    the_app.close()


_WRITE = re.compile(r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+\"?(\w+)", re.I)


def _table_written(statement: str) -> str | None:
    match = _WRITE.match(statement)
    return match.group(1).lower() if match else None


class Recorder:
    """The tables each command changed (every INSERT/UPDATE/DELETE the engine ran that touched a row)."""

    def __init__(self, the_app: App) -> None:
        self.written: list[str] = []
        event.listen(the_app.db.engine, "after_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        table = _table_written(statement)
        if table is not None and cursor.rowcount != 0:  # a DELETE that matched nothing changed nothing
            self.written.append(table)


def _check(the_app: App, recorder: Recorder, loop: asyncio.AbstractEventLoop, text: str, who: int) -> bool:
    """Run one command and check the reply; True when it ran (not refused)."""
    user, chat = USERS[who]
    message = IncomingMessage(user.platform, chat, user, text, is_direct=False)
    recorder.written.clear()
    reply = loop.run_until_complete(the_app.bot.handle(message))
    assert reply is not None, text
    errors = [p for p in reply.parts if isinstance(p, ErrorText)]
    assert not any(e.ref for e in errors), f"internal error for {text!r}"
    assert "audit_log" in recorder.written, f"no audit row for {text!r}"
    if errors:
        (error,) = errors
        sentence = error.text
        assert sentence.strip() and "\n" not in sentence and len(sentence) <= 600, (text, sentence)
        assert "Traceback" not in sentence and "Something went wrong" not in sentence, (text, sentence)
        assert set(recorder.written) == {"audit_log"}, (text, sentence, recorder.written)
    return not errors


def test_the_grammar_never_fails_inside(fuzz_app: App) -> None:
    recorder = Recorder(fuzz_app)
    loop = asyncio.new_event_loop()
    ran: list[str] = []

    @settings(
        max_examples=EXAMPLES * 3 // 4,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(text=command_text(), who=st.integers(0, len(USERS) - 1))
    def run(text: str, who: int) -> None:
        if _check(fuzz_app, recorder, loop, text, who):
            ran.append(text)

    try:
        run()
    finally:
        loop.close()
    # Not only refusals: enough commands get through the grammar to reach their handlers (and the walk).
    assert len(ran) >= EXAMPLES // 100 and any(t.startswith(("/trace 0x", "/risk 0x")) for t in ran), len(ran)


def test_any_text_after_any_command(fuzz_app: App) -> None:
    """Wholly arbitrary text (any unicode) after every command name."""
    recorder = Recorder(fuzz_app)
    loop = asyncio.new_event_loop()

    @settings(
        max_examples=EXAMPLES // 4,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(name=st.sampled_from(NAMES), rest=st.text(max_size=80), who=st.integers(0, len(USERS) - 1))
    def run(name: str, rest: str, who: int) -> None:
        _check(fuzz_app, recorder, loop, f"/{name} {rest}", who)

    try:
        run()
    finally:
        loop.close()
