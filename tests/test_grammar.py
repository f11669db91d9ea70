"""The command grammar: typed arguments per command, one number grammar (ASCII digits, bounded numbers and times,
a flag once, amounts and USD parsed in one place), the same grammar on the command line, `say`'s exit codes, and
no import circle among the bot's modules."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.app import App
from bot.backends.testing import TestBackend
from bot.cli import app as cli_app
from bot.commands import CommandSpec, Registry
from bot.grammar import NoArguments, Param, parse, time_arg, whole_number
from bot.handlers import build_registry
from bot.handlers.trace import SPEC as TRACE
from bot.handlers.trace import TraceArgs
from bot.handlers.watch import WatchArgs
from bot.messages import Reply
from storage import get_settings
from tracing import Direction, InvalidArgument, TaintModel, Threshold, parse_threshold

A = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
ROOT = Path(__file__).resolve().parents[1]


# --- typed arguments -------------------------------------------------------------------------------------------


def test_trace_arguments_are_a_typed_object() -> None:
    args = parse(TRACE, f"{A} --direction in --hops 2 --model poison --min-value 0.5 --since 2022-03-01")
    assert isinstance(args, TraceArgs)
    assert (args.address, args.direction, args.hops, args.model) == (A, Direction.IN, 2, TaintModel.POISON)
    assert args.min_value == Threshold(units=Decimal("0.5")) and args.since == 1646092800 and args.until is None
    defaults = parse(TRACE, A)
    assert (defaults.direction, defaults.hops, defaults.min_value, defaults.chain) == (Direction.OUT, 3, None, None)


def test_every_command_has_arguments_matching_its_grammar() -> None:
    registry = build_registry()  # checks every spec's arguments type against its params and flags
    assert {"trace", "risk", "watch", "ack", "resolve", "oncall", "label"} <= set(registry.commands)

    @dataclass(frozen=True)
    class Wrong:
        address: str

    async def handler(ctx: object, args: object) -> Reply:
        return Reply.text("")

    with pytest.raises(ValueError, match="differ from the grammar"):
        Registry().add(CommandSpec(name="x", summary="", handler=handler, params=(Param("other"),), arguments=Wrong))
    Registry().add(CommandSpec(name="x", summary="", handler=handler, params=(Param("address"),), arguments=Wrong))
    with pytest.raises(ValueError, match="default exactly when"):
        Registry().add(
            CommandSpec(
                name="y", summary="", handler=handler, params=(Param("address", optional=True),), arguments=Wrong
            )
        )
    Registry().add(CommandSpec(name="z", summary="", handler=handler, arguments=NoArguments))


# --- one number grammar ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("digits", ["²", "٣", "３", "½", "1²", "2٠"])
def test_only_ascii_digits(digits: str) -> None:
    with pytest.raises(InvalidArgument, match="digits other than 0–9"):
        whole_number(digits, 1, 10)
    with pytest.raises(InvalidArgument, match="digits other than 0–9"):
        time_arg(digits)
    with pytest.raises(InvalidArgument, match="digits other than 0–9"):
        parse_threshold(digits)


def test_numbers_and_times_are_bounded() -> None:
    with pytest.raises(InvalidArgument, match=r"out of range \(1–10\)"):
        whole_number("99999999999999999999999999", 1, 10)
    for too_far in ("99999999999999999999", "1230767999", "4133980800", "2008-12-31", "2101-01-01", "0001-01-01"):
        with pytest.raises(InvalidArgument, match="between 2009 and 2100"):
            time_arg(too_far)
    assert time_arg("2009-01-01") == 1230768000 and time_arg("2100-12-31T23:59:59Z") == 4133980799
    assert time_arg("1646092800") == 1646092800
    for not_a_date in ("soon", "2022-13-01", "-5", "1e9", "2022-03-01T25:00"):
        with pytest.raises(InvalidArgument, match="not a date"):
            time_arg(not_a_date)


def test_amounts_and_usd_are_parsed_in_one_place() -> None:
    assert parse_threshold("10") == Threshold(units=Decimal(10))
    assert parse_threshold(" 0.25 ") == Threshold(units=Decimal("0.25"))
    for usd in ("$500", "$ 500", "US$500", "500 USD", "500usd", "$1.5"):
        assert parse_threshold(usd).usd is not None and parse_threshold(usd).units is None
    assert parse_threshold("$500") == Threshold(usd=Decimal(500))
    for bad in ("1E-999999999", "1e3", "-1", "nan", "inf", "0x10", "1,000", "$", "USD", "1." + "0" * 40, "9" * 31):
        with pytest.raises(InvalidArgument, match="not an amount"):
            parse_threshold(bad)
    with pytest.raises(InvalidArgument, match="positive"):
        parse_threshold("0")
    watch_args = parse(build_registry().commands["watch"], f"{A} --min $250")
    assert isinstance(watch_args, WatchArgs) and watch_args.min == Threshold(usd=Decimal(250))


def test_a_flag_is_given_once() -> None:
    for text in (f"{A} --hops 2 --hops 3", f"{A} --hops=2 --hops 2", f"{A} --since 2022-01-01 --since=2022-01-02"):
        with pytest.raises(InvalidArgument, match="given twice"):
            parse(TRACE, text)
    with pytest.raises(InvalidArgument, match="given twice"):
        parse(build_registry().commands["watch"], f"{A} --channel --channel")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (f"/trace {A} --since ²", "digits other than 0–9"),
        (f"/trace {A} --hops ٣", "digits other than 0–9"),
        (f"/trace {A} --hops 2 --hops 3", "given twice"),
        (f"/trace {A} --since 99999999999999999999", "between 2009 and 2100"),
        (f"/trace {A} --min-value 1E-999999999", "not an amount"),
        (f"/trace {A} --through casino", "not a kind of stop"),
        (f"/trace {A} --model fifo2", "not one of"),
        (f"/watch {A} --min ３", "digits other than 0–9"),
        (f"/risk {A} --hops 99999999999999999999", "out of range"),
        ("/ack ²", "digits other than 0–9"),
        ("/resolve ²", "digits other than 0–9"),
        ("/assign ² me", "digits other than 0–9"),
        ("/ack 99999999999999999999", "not an incident number"),
        ("/oncall --level ３", "digits other than 0–9"),
        ("/oncall --after 10,²", "digits other than 0–9"),
        ("/oncall --after 10,1e9", "minutes separated by commas"),
        ("/oncall --after 999999999999999999999", "out of range"),
        (f"/label {A} scam x --confidence ٠.٥", "digits other than 0–9"),
        (f"/label {A} scam x --confidence 1e-999", "not a confidence"),
    ],
)
async def test_chat_refuses_unusual_numbers_with_one_sentence(bot: TestBackend, command: str, expected: str) -> None:
    said = await bot.say(command)
    assert said.reply is not None and said.is_error and not said.reply.failed, said.text
    assert expected in said.text and "\n" not in said.text.strip(), said.text


async def test_incidents_and_acks_answer_in_one_sentence(bot: TestBackend) -> None:
    listed = await bot.say("/incidents")
    assert not listed.is_error and "No open incidents here." in listed.text
    for command in ("/incidents all", "/incidents mine", "/ack 7", "/resolve 7", "/assign 7 me", "/oncall"):
        said = await bot.say(command)
        assert said.reply is not None and not said.reply.failed, said.text


# --- the command line uses the same grammar --------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for key, value in {
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": sqlite_url,
        "DEMO_DATA": "false",
        "PLATFORM": "console",
        "CHAINS": "eth",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no .env
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "words",
    [
        [A, "--hops", "2", "--hops", "3"],
        [A, "--hops", "٣"],
        [A, "--since", "99999999999999999999"],
        [A, "--min-value", "1E-999999999"],
        [A, "--direction", "up"],
        ["0x1234"],
        [A, "--colour", "red"],
    ],
)
async def test_the_command_line_refuses_with_the_chat_sentence(
    cli: CliRunner, bot: TestBackend, words: list[str]
) -> None:
    chat = await bot.say("/trace " + " ".join(words))
    assert chat.reply is not None and chat.is_error
    result = cli.invoke(cli_app, ["trace", *words])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {chat.text.strip().removeprefix('Error: ')}"


def test_the_command_line_png_must_be_a_png(cli: CliRunner) -> None:
    result = cli.invoke(cli_app, ["trace", A, "--png", "flow.jpg"])
    assert result.exit_code == 1 and "ending in .png" in result.stderr


def test_say_exit_codes(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.invoke(cli_app, ["say", "/help"]).exit_code == 0
    refused = cli.invoke(cli_app, ["say", "/ack ²"])
    assert refused.exit_code == 2 and "digits other than 0–9" in refused.stdout
    assert cli.invoke(cli_app, ["say", "/nosuchcommand"]).exit_code == 2

    async def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("the store caught fire")

    monkeypatch.setattr("tracing.investigator.Investigator.labels_of", broken)
    failed = cli.invoke(cli_app, ["say", f"/labels {A}"])
    assert failed.exit_code == 1 and "Something went wrong" in failed.stdout


# --- no import circle ------------------------------------------------------------------------------------------


def _bot_imports() -> dict[str, set[str]]:
    """Module → the bot modules it imports (anywhere in the file, type-checking imports included)."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "bot").rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def test_no_import_circles_among_bot_modules() -> None:
    graph = _bot_imports()
    assert "bot.context" in graph["bot.commands"] and "bot.commands" not in graph["bot.context"]
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_app_builds_one_incident_desk_and_watch_book(app: App) -> None:
    assert app.bot.incidents is app.incidents and app.bot.watches is app.watches
