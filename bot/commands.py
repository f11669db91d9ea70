"""The command layer: a registry of commands, each with its grammar (positional arguments and `--flags`), help
text, required role and handler. Every platform turns a message into an `Invocation` here."""

from __future__ import annotations

import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from bot.messages import IncomingMessage, Reply
from bot.roles import Role
from tracing import InvalidArgument, parse_address

if TYPE_CHECKING:
    from bot.core import Context

Converter = Callable[[str], Any]
Handler = Callable[["Context", "Invocation"], Awaitable[Reply]]


def address_arg(text: str) -> str:
    return parse_address(text)


def int_arg(low: int, high: int) -> Converter:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise InvalidArgument(f"“{text[:20]}” is not a whole number.") from None
        if not low <= value <= high:
            raise InvalidArgument(f"{value} is out of range ({low}–{high}).")
        return value

    return convert


def choice_arg(*choices: str) -> Converter:
    def convert(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise InvalidArgument(f"“{text[:30]}” is not one of: {', '.join(choices)}.")
        return value

    return convert


def time_arg(text: str) -> int:
    """A date (YYYY-MM-DD), an ISO date-time, or a unix timestamp → unix seconds (UTC)."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp())
    except ValueError:
        raise InvalidArgument(f"“{raw[:30]}” is not a date (YYYY-MM-DD) or unix time.") from None


def decimal_arg(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?", text.strip()):
        raise InvalidArgument(f"“{text[:30]}” is not a positive amount.")
    return text.strip()


def text_arg(max_len: int) -> Converter:
    def convert(text: str) -> str:
        if len(text) > max_len:
            raise InvalidArgument(f"Text too long (at most {max_len} characters).")
        if any(ord(c) < 32 and c not in "\t" for c in text):
            raise InvalidArgument("Control characters are not allowed.")
        return text

    return convert


_SLACK_LINK = re.compile(r"^<([^|>]*)(?:\|[^>]*)?>$")
_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)


def url_arg(text: str) -> str:
    """An http(s) URL; Slack's `<url>` / `<url|text>` wrapping is removed."""
    raw = text.strip()
    wrapped = _SLACK_LINK.match(raw)
    if wrapped:
        raw = wrapped.group(1).strip()
    if len(raw) > 500 or not _URL.match(raw):
        raise InvalidArgument(f"“{raw[:40]}” is not an http(s) link (at most 500 characters).")
    return raw


def confidence_arg(text: str) -> float:
    """A confidence as a fraction (0.8) or a percentage (80%), above 0 and at most 1."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InvalidArgument(f"“{raw[:20]}” is not a confidence (0.8 or 80%).") from None
    if not 0 < value <= 1:
        raise InvalidArgument("A confidence is above 0 and at most 1 (or 100%).")
    return value


@dataclass(frozen=True)
class Param:
    name: str
    convert: Converter = str
    help: str = ""
    optional: bool = False
    rest: bool = False
    """Takes every remaining word (joined by spaces)."""


@dataclass(frozen=True)
class Flag:
    name: str
    convert: Converter = str
    help: str = ""
    boolean: bool = False
    default: Any = None
    metavar: str = "VALUE"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    handler: Handler
    params: tuple[Param, ...] = ()
    flags: tuple[Flag, ...] = ()
    role: Role = Role.VIEWER
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        words = [f"/{self.name}"]
        for p in self.params:
            token = p.name.upper() + ("…" if p.rest else "")
            words.append(f"[{token}]" if p.optional else token)
        for f in self.flags:
            words.append(f"[--{f.name}]" if f.boolean else f"[--{f.name} {f.metavar}]")
        return " ".join(words)


@dataclass(frozen=True)
class Invocation:
    spec: CommandSpec
    args: dict[str, Any]
    flags: dict[str, Any]
    raw: str
    message: IncomingMessage

    def __getitem__(self, key: str) -> Any:
        if key in self.args:
            return self.args[key]
        return self.flags[key]


_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})
_COMMAND = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(?:@[A-Za-z0-9_]+)?(?:\s+|$)")
_FLAG = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.*))?$", re.DOTALL)


def tokenize(text: str) -> list[str]:
    try:
        return shlex.split(text.translate(_SMART_QUOTES), posix=True)
    except ValueError:
        raise InvalidArgument("Unbalanced quotes in the command.") from None


@dataclass
class Registry:
    commands: dict[str, CommandSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add(self, spec: CommandSpec) -> None:
        if spec.name in self.commands:
            raise ValueError(f"command {spec.name} registered twice")
        self.commands[spec.name] = spec
        for alias in spec.aliases:
            self.aliases[alias] = spec.name

    def get(self, name: str) -> CommandSpec | None:
        name = name.lower()
        return self.commands.get(self.aliases.get(name, name))

    def visible_to(self, role: Role) -> list[CommandSpec]:
        return [spec for spec in self.commands.values() if role >= spec.role]

    def split(self, text: str) -> tuple[str, str] | None:
        """`/risk@Bot 0x…` → (`risk`, `0x…`); None when the text is not a command."""
        match = _COMMAND.match(text.strip())
        if not match:
            return None
        return match.group(1).lower(), text.strip()[match.end() :]

    def parse(self, spec: CommandSpec, rest: str, message: IncomingMessage) -> Invocation:
        words = tokenize(rest)
        flags: dict[str, Any] = {f.name: f.default for f in spec.flags}
        by_name = {f.name: f for f in spec.flags}
        positional: list[str] = []
        i = 0
        while i < len(words):
            word = words[i]
            match = _FLAG.match(word)
            # Once a trailing free-text parameter has begun, only known options are options: a name may hold "--".
            in_text = bool(positional and spec.params and spec.params[-1].rest and len(positional) >= len(spec.params))
            if match and (match.group(1) in by_name or not in_text):
                flag = by_name.get(match.group(1))
                if flag is None:
                    raise InvalidArgument(f"Unknown option --{match.group(1)[:20]}. Usage: {spec.usage}")
                if flag.boolean:
                    flags[flag.name] = True
                else:
                    value = match.group(2)
                    if value is None:
                        i += 1
                        if i >= len(words):
                            raise InvalidArgument(f"--{flag.name} needs a value. Usage: {spec.usage}")
                        value = words[i]
                    flags[flag.name] = flag.convert(value)
            else:
                positional.append(word)
            i += 1
        args: dict[str, Any] = {}
        for index, param in enumerate(spec.params):
            if param.rest:
                value = " ".join(positional[index:])
                positional = positional[:index]
                if not value:
                    if not param.optional:
                        raise InvalidArgument(f"Missing {param.name.upper()}. Usage: {spec.usage}")
                    args[param.name] = None
                else:
                    args[param.name] = param.convert(value)
                break
            if index >= len(positional):
                if not param.optional:
                    raise InvalidArgument(f"Missing {param.name.upper()}. Usage: {spec.usage}")
                args[param.name] = None
                continue
            args[param.name] = param.convert(positional[index])
        else:
            if len(positional) > len(spec.params):
                raise InvalidArgument(f"Too many arguments. Usage: {spec.usage}")
        return Invocation(spec=spec, args=args, flags=flags, raw=rest, message=message)


def describe(specs: Sequence[CommandSpec]) -> list[tuple[str, str]]:
    return [(spec.usage, spec.summary) for spec in specs]
