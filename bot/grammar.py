"""The command grammar: how the words after `/name` become a typed arguments object.

A command's `Syntax` lists its positional `Param`s and `--flag`s, each with a converter that checks one value and
returns it typed; `Grammar.parse` turns the words into the command's frozen arguments dataclass (one per command,
its fields named after the params and flags). Chat platforms and the command line (`chainsleuth trace`, `risk`)
go through the same parse, so an input is refused with the same sentence everywhere.

One number grammar: ASCII digits only (`²`, `٣`, `３` are refused), every number and time bounded (dates between
2009 and 2100), amounts parsed by `tracing.parse_threshold`, a flag given twice refused. Every value is checked
here, before it reaches the compiled walk or the store; a refusal is an `InvalidArgument`, one sentence.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any

from bot.roles import Role
from tracing import Direction, InvalidArgument, Threshold, foreign_digits, parse_address, parse_threshold

Converter = Callable[[str], Any]

FIRST_YEAR = 2009
LAST_YEAR = 2100
EARLIEST = int(datetime(FIRST_YEAR, 1, 1, tzinfo=UTC).timestamp())
LATEST = int(datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC).timestamp()) - 1
"""Times a command accepts (unix seconds): from the first block of Bitcoin's year to the end of 2100."""

MAX_WORDS = 200
"""Words in one command, at most (the longest real command has about 20)."""


def refuse_foreign_digits(text: str) -> None:
    if foreign_digits(text):
        raise InvalidArgument(f"“{text[:20]}” has digits other than 0–9; write numbers with the ASCII digits 0–9.")


def decimal_number(text: str, low: float, high: float) -> float:
    """A plain ASCII decimal (`2`, `0.5`; no exponent, sign, nan or inf) between `low` and `high`."""
    raw = text.strip()
    refuse_foreign_digits(raw)
    if not re.fullmatch(r"[0-9]{1,12}(?:\.[0-9]{1,6})?", raw, re.ASCII):
        raise InvalidArgument(f"“{raw[:20]}” is not a number ({low:g}–{high:g}).")
    value = float(raw)
    if not low <= value <= high:
        raise InvalidArgument(f"{raw} is out of range ({low:g}–{high:g}).")
    return value


def whole_number(text: str, low: int, high: int) -> int:
    """An ASCII decimal whole number between `low` and `high` (inclusive)."""
    raw = text.strip()
    refuse_foreign_digits(raw)
    if not re.fullmatch(r"[0-9]+", raw, re.ASCII):
        raise InvalidArgument(f"“{raw[:20]}” is not a whole number ({low}–{high}).")
    if len(raw) > len(str(high)) + 2 or not low <= int(raw) <= high:
        raise InvalidArgument(f"{raw[:20]} is out of range ({low}–{high}).")
    return int(raw)


# --- converters: one value each, checked and typed ------------------------------------------------------------


def address_arg(text: str) -> str:
    return parse_address(text)


def int_arg(low: int, high: int) -> Converter:
    def convert(text: str) -> int:
        return whole_number(text, low, high)

    return convert


def choice_arg(*choices: str) -> Converter:
    def convert(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise InvalidArgument(f"“{text[:30]}” is not one of: {', '.join(choices)}.")
        return value

    return convert


def direction_arg(text: str) -> Direction:
    return Direction.parse(text)


def time_arg(text: str) -> int:
    """A date (YYYY-MM-DD), an ISO date-time, or a unix timestamp → unix seconds (UTC), between 2009 and 2100."""
    raw = text.strip()
    refuse_foreign_digits(raw)
    if re.fullmatch(r"[0-9]+", raw, re.ASCII):
        if len(raw) > 11 or not EARLIEST <= int(raw) <= LATEST:
            raise InvalidArgument(f"{raw[:20]} is out of range: times are between {FIRST_YEAR} and {LAST_YEAR}.")
        return int(raw)
    try:
        if len(raw) > 40 or not raw.isascii():
            raise ValueError(raw)
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise InvalidArgument(f"“{raw[:30]}” is not a date (YYYY-MM-DD) or unix time.") from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR or not EARLIEST <= moment.timestamp() <= LATEST:
        raise InvalidArgument(f"{raw[:30]} is out of range: dates are between {FIRST_YEAR} and {LAST_YEAR}.")
    return int(moment.timestamp())


def threshold_arg(text: str) -> Threshold:
    """A positive minimum amount: `10`, `0.5` (the asset's units) or `$500` (US dollars)."""
    return parse_threshold(text)


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


_CONFIDENCE = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,6})?|\.[0-9]{1,6})(%?)", re.ASCII)


def confidence_arg(text: str) -> float:
    """A confidence as a fraction (0.8) or a percentage (80%), above 0 and at most 1."""
    raw = text.strip()
    refuse_foreign_digits(raw)
    match = _CONFIDENCE.fullmatch(raw)
    if not match:
        raise InvalidArgument(f"“{raw[:20]}” is not a confidence (0.8 or 80%).")
    value = float(match.group(1)) / (100 if match.group(2) else 1)
    if not 0 < value <= 1:
        raise InvalidArgument("A confidence is above 0 and at most 1 (or 100%).")
    return value


# --- the grammar of one command -------------------------------------------------------------------------------


def attribute(name: str) -> str:
    """The arguments field of a param or flag: `min-value` → `min_value`."""
    return name.replace("-", "_")


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
    metavar: str = "VALUE"


@dataclass(frozen=True, slots=True)
class NoArguments:
    """The arguments of a command that takes none."""


@dataclass(frozen=True)
class Syntax:
    """A command's name, grammar and help. `arguments` is the frozen dataclass the parse produces: one field per
    param and flag (named by `attribute`), its defaults the values of what was not given."""

    name: str
    summary: str
    params: tuple[Param, ...] = ()
    flags: tuple[Flag, ...] = ()
    role: Role = Role.VIEWER
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    arguments: type[Any] = field(default=NoArguments, kw_only=True)

    @property
    def usage(self) -> str:
        words = [f"/{self.name}"]
        for p in self.params:
            token = p.name.upper() + ("…" if p.rest else "")
            words.append(f"[{token}]" if p.optional else token)
        for f in self.flags:
            words.append(f"[--{f.name}]" if f.boolean else f"[--{f.name} {f.metavar}]")
        return " ".join(words)

    def check(self) -> None:
        """Raise ValueError unless `arguments` has exactly one field per param and flag, and only the required
        params lack a default (a mistake found at start-up, not by the first user)."""
        if not is_dataclass(self.arguments):
            raise ValueError(f"/{self.name}: arguments must be a dataclass")
        declared = {f.name: f for f in fields(self.arguments)}
        names = [attribute(p.name) for p in self.params] + [attribute(f.name) for f in self.flags]
        if sorted(declared) != sorted(names):
            raise ValueError(f"/{self.name}: arguments fields {sorted(declared)} differ from the grammar {names}")
        required = {attribute(p.name) for p in self.params if not p.optional}
        for name, spec_field in declared.items():
            has_default = spec_field.default is not MISSING or spec_field.default_factory is not MISSING
            if has_default == (name in required):
                raise ValueError(f"/{self.name}: {name} must have a default exactly when it is optional")


_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "\u00a0": " "})
_COMMAND = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]*)(?:@[A-Za-z0-9_]+)?(?:\s+|$)")
_FLAG = re.compile(r"^--([a-z][a-z0-9-]*)(?:=(.*))?$", re.DOTALL)


def tokenize(text: str) -> list[str]:
    try:
        words = shlex.split(text.translate(_SMART_QUOTES), posix=True)
    except ValueError:
        raise InvalidArgument("Unbalanced quotes in the command.") from None
    if len(words) > MAX_WORDS:
        raise InvalidArgument(f"Too many words in one command (at most {MAX_WORDS}).")
    return words


@dataclass
class Grammar:
    """Every command's syntax by name (and alias): finds the command in a message and parses its arguments."""

    commands: dict[str, Syntax] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def add(self, syntax: Syntax) -> None:
        if syntax.name in self.commands:
            raise ValueError(f"command {syntax.name} registered twice")
        syntax.check()
        self.commands[syntax.name] = syntax
        for alias in syntax.aliases:
            self.aliases[alias] = syntax.name

    def get(self, name: str) -> Syntax | None:
        name = name.lower()
        return self.commands.get(self.aliases.get(name, name))

    def visible_to(self, role: Role) -> Sequence[Syntax]:
        return [syntax for syntax in self.commands.values() if role >= syntax.role]

    def split(self, text: str) -> tuple[str, str] | None:
        """`/risk@Bot 0x…` → (`risk`, `0x…`); None when the text is not a command."""
        match = _COMMAND.match(text.strip())
        if not match:
            return None
        return match.group(1).lower(), text.strip()[match.end() :]

    def parse(self, syntax: Syntax, rest: str) -> Any:
        return parse(syntax, rest)

    def parse_words(self, syntax: Syntax, words: Sequence[str]) -> Any:
        return parse_words(syntax, words)


def parse(syntax: Syntax, rest: str) -> Any:
    """The words after the command name → the command's arguments object (or InvalidArgument)."""
    return parse_words(syntax, tokenize(rest))


def parse_words(syntax: Syntax, words: Sequence[str]) -> Any:
    """Words already split (the command line's) → the command's arguments object (or InvalidArgument)."""
    if len(words) > MAX_WORDS:
        raise InvalidArgument(f"Too many words in one command (at most {MAX_WORDS}).")
    values: dict[str, Any] = {}
    by_name = {f.name: f for f in syntax.flags}
    given: set[str] = set()
    positional: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        match = _FLAG.match(word)
        # Once a trailing free-text parameter has begun, only known options are options: a name may hold "--".
        in_text = bool(
            positional and syntax.params and syntax.params[-1].rest and len(positional) >= len(syntax.params)
        )
        if match and (match.group(1) in by_name or not in_text):
            flag = by_name.get(match.group(1))
            if flag is None:
                raise InvalidArgument(f"Unknown option --{match.group(1)[:20]}. Usage: {syntax.usage}")
            if flag.name in given:
                raise InvalidArgument(f"--{flag.name} is given twice; give it once. Usage: {syntax.usage}")
            given.add(flag.name)
            if flag.boolean:
                if match.group(2) is not None:
                    raise InvalidArgument(f"--{flag.name} takes no value. Usage: {syntax.usage}")
                values[attribute(flag.name)] = True
            else:
                value = match.group(2)
                if value is None:
                    i += 1
                    if i >= len(words):
                        raise InvalidArgument(f"--{flag.name} needs a value. Usage: {syntax.usage}")
                    value = words[i]
                values[attribute(flag.name)] = flag.convert(value)
        else:
            positional.append(word)
        i += 1
    for index, param in enumerate(syntax.params):
        if param.rest:
            value = " ".join(positional[index:])
            positional = positional[:index]
            if not value.strip():
                if not param.optional:
                    raise InvalidArgument(f"Missing {param.name.upper()}. Usage: {syntax.usage}")
            else:
                values[attribute(param.name)] = param.convert(value)
            break
        if index >= len(positional):
            if not param.optional:
                raise InvalidArgument(f"Missing {param.name.upper()}. Usage: {syntax.usage}")
            continue
        values[attribute(param.name)] = param.convert(positional[index])
    else:
        if len(positional) > len(syntax.params):
            raise InvalidArgument(f"Too many arguments. Usage: {syntax.usage}")
    return syntax.arguments(**values)
