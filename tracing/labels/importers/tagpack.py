"""TagPacks: a team's own labels, in YAML or CSV, after GraphSense's TagPack format.

A pack has a header (title, creator, source URL, optional default confidence, category and chain, licence) and
tags (address, name, category, optional chain, confidence, source, first_seen, notes). YAML carries the header as
top-level keys and the tags under `tags:`; CSV carries the header as `# key: value` lines above the column row.

Validation is strict and all-or-nothing: a pack with any invalid entry is rejected whole, and the error lists every
invalid entry (file, entry or line, what is wrong). A team's curated labels are evidence; importing the good half of
a pack silently would hide the mistake that broke the other half. Each pack is its own label set,
`tagpack:<title-slug>`, so re-importing one pack replaces that pack only. See examples/tagpack-example.yaml.

GraphSense's public packs (graphsense/graphsense-tagpacks) read as they are: a pack that names a `currency` is one
of theirs. Its concepts (`category`, `abuse`; an abuse wins) map to our categories and its confidence ids to numbers
(`importers.graphsense`); `label` is the name; each tag's `source` is its source link; BTC tags become bitcoin labels
(chain `btc`, the address checked against its checksum), ETH tags EVM labels, and tags of other currencies are
skipped and counted. A published pack repeats a few tags: exact repeats are merged, not refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import yaml

from storage import ANY_EVM
from tracing.chain import Family, chain_arg, family_of, normalise_address, parse_address
from tracing.errors import InvalidArgument, UserError
from tracing.labels.importers import LabelImport, graphsense, register
from tracing.labels.model import ANY_BTC, Category, Label, LabelSet

SOURCE_PREFIX = "tagpack:"
DEFAULT_LICENCE = "private"
HEADER_KEYS = frozenset(
    {"title", "creator", "source", "description", "licence", "license", "lastmod", "confidence", "category", "chain"}
)
TAG_KEYS = frozenset({"address", "name", "label", "category", "chain", "confidence", "source", "first_seen", "notes"})
GRAPHSENSE_HEADER_KEYS = frozenset(
    {"currency", "abuse", "label", "actor", "is_cluster_definer", "network", "owner", "is_public"}
)
GRAPHSENSE_TAG_KEYS = frozenset(
    {"currency", "abuse", "actor", "context", "is_cluster_definer", "network", "lastmod", "tag_type", "concepts"}
)
REQUIRED_HEADER = ("title", "creator", "source")
MAX_NAME = 300
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")
T = TypeVar("T")


class TagPackError(InvalidArgument):
    """A pack with invalid entries: `problems` lists each one, the message all of them."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{file}: {count}, nothing imported:\n  " + "\n  ".join(problems))


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's where PyYAML has it: GraphSense's packs run to megabytes) that leaves integers and
    booleans as text: YAML 1.1 reads an unquoted `0x…` address as a number (and `0x12` would become a valid-looking
    address once padded), and a name like `No` as False."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}


class _Skipped(Exception):
    """A GraphSense tag of a currency we do not label (LTC, BCH, TRX, ...)."""


@dataclass(frozen=True)
class Header:
    title: str
    creator: str
    source: str
    licence: str
    version: str
    confidence: float | None
    category: Category | None
    chain: str | None
    graphsense: bool = False
    """A GraphSense pack (it names a currency): their keys, concepts and confidence ids are read."""
    currency: str = ""
    abuse: Category | None = None
    name: str = ""
    """The pack's default label (GraphSense `label`)."""
    abuse_text: str = ""


def slug(title: str) -> str:
    return _SLUG.sub("-", title.lower()).strip("-")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _confidence(value: object) -> float:
    if isinstance(value, bool):
        raise InvalidArgument(f"confidence must be a number from 0 to 1, not {value!r}")
    named = graphsense.confidence_of(_text(value))
    if named is not None:
        return named
    try:
        number = float(_text(value))
    except ValueError as exc:
        raise InvalidArgument(f"confidence must be a number from 0 to 1, not “{_text(value)[:20]}”") from exc
    if not 0.0 <= number <= 1.0:
        raise InvalidArgument(f"confidence {number:g} is outside 0..1")
    return number


def _chain(value: object) -> str:
    text = _text(value).lower()
    return ANY_EVM if text in ("*", "any", "evm") else chain_arg(text)


def _first_seen(value: object) -> date:
    if isinstance(value, datetime):  # YAML reads `2024-05-01 12:00` as a datetime
        found = value.date()
    elif isinstance(value, date):
        found = value
    else:
        try:
            found = date.fromisoformat(_text(value))
        except ValueError as exc:
            raise InvalidArgument(f"first_seen “{_text(value)[:20]}” is not a date (YYYY-MM-DD)") from exc
    if found > date.today():
        raise InvalidArgument(f"first_seen {found.isoformat()} is in the future")
    return found


def _tag_address(value: object) -> str:
    text = _text(value)
    if normalise_address(text) is None:
        raise InvalidArgument(f"“{text[:50]}” is not an EVM address (0x + 40 hex digits)")
    return parse_address(text)


def _btc_address(value: object) -> str:
    text = _text(value)
    found = parse_address(text)
    if family_of(found) is not Family.BTC:
        raise InvalidArgument(f"“{text[:50]}” is not a bitcoin address")
    return found


def _parsed(value: object, parse: Callable[[object], T], problems: list[str], prefix: str = "") -> T | None:
    """`parse(value)`, or None when the value is absent or invalid (then the problem is recorded)."""
    if not _text(value):
        return None
    try:
        return parse(value)
    except UserError as exc:
        problems.append(prefix + str(exc).rstrip("."))
        return None


def _category(value: object) -> Category:
    return Category.parse(_text(value))


def _concept(value: object) -> Category:
    """A GraphSense concept id (`mixing_service`, `ransomware`, ...) or one of our categories."""
    found = graphsense.category_of(_text(value))
    if found is not None:
        return found
    try:
        return Category.parse(_text(value))
    except InvalidArgument:
        raise InvalidArgument(
            f"GraphSense concept “{_text(value)[:40]}” has no category here; set category: to one of ours"
        ) from None


def _header(
    raw: dict[str, object], problems: list[str], fallback_version: str, *, is_graphsense: bool = False
) -> Header | None:
    allowed = HEADER_KEYS | GRAPHSENSE_HEADER_KEYS if is_graphsense else HEADER_KEYS
    unknown = sorted(str(k) for k in raw if k not in allowed and k != "tags")
    if unknown:
        problems.append(f"header: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    for key in REQUIRED_HEADER:
        if not _text(raw.get(key)) and not (is_graphsense and key == "source"):  # theirs may source each tag
            problems.append(f"header: {key} is missing")
    source = _text(raw.get("source"))
    if source and not _URL.match(source):
        problems.append(f"header: source “{source[:60]}” is not an http(s) URL")
    title = _text(raw.get("title"))
    if title and not slug(title):
        problems.append("header: title needs letters or digits")
    confidence = _parsed(raw.get("confidence"), _confidence, problems, "header: default ")
    category = _parsed(raw.get("category"), _concept if is_graphsense else _category, problems, "header: default ")
    abuse_text = _text(raw.get("abuse"))
    if abuse_text.lower() == graphsense.SANCTION:
        abuse_text = ""  # sanctions come from OFAC's list only
    abuse = _parsed(abuse_text, _concept, problems, "header: ") if is_graphsense else None
    chain = _parsed(raw.get("chain"), _chain, problems, "header: default ")
    if problems:
        return None
    return Header(
        title=title,
        creator=_text(raw["creator"]),
        source=source,
        licence=_text(raw.get("licence") or raw.get("license")) or DEFAULT_LICENCE,
        version=_text(raw.get("lastmod")) or fallback_version,
        confidence=confidence,
        category=category,
        chain=chain,
        graphsense=is_graphsense,
        currency=_text(raw.get("currency")).upper(),
        abuse=abuse,
        name=_text(raw.get("label")),
        abuse_text=_text(raw.get("abuse")),
    )


def _tag(raw: dict[str, object], header: Header) -> Label:
    """One tag → a Label; raises InvalidArgument with every problem of this tag joined by '; '."""
    problems: list[str] = []
    allowed = TAG_KEYS | GRAPHSENSE_TAG_KEYS if header.graphsense else TAG_KEYS
    unknown = sorted(str(k) for k in raw if k not in allowed)
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    currency = (_text(raw.get("currency")) or header.currency).upper() if header.graphsense else ""
    if header.graphsense and currency not in graphsense.CURRENCIES:
        raise _Skipped(currency or "no currency")
    bitcoin = currency == "BTC"
    address = _parsed(raw.get("address"), _btc_address if bitcoin else _tag_address, problems)
    if not _text(raw.get("address")):
        problems.append("address is missing")
    name = _text(raw.get("name") or raw.get("label")) or header.name
    if not name:
        problems.append("name is missing")
    elif len(name) > MAX_NAME:
        problems.append(f"name is longer than {MAX_NAME} characters")
    if header.graphsense:  # an abuse (the tag's, else the pack's) says more than what the entity is
        abuse_text = _text(raw.get("abuse"))
        abuse = None if abuse_text.lower() == graphsense.SANCTION else _parsed(abuse_text, _concept, problems)
        abuse = abuse or (None if abuse_text else header.abuse)
        category = abuse or _parsed(raw.get("category"), _concept, problems) or header.category
        given = _text(raw.get("category")) or _text(raw.get("abuse"))
    else:
        category = _parsed(raw.get("category"), _category, problems) or header.category
        given = _text(raw.get("category"))
    if category is None and not given and header.graphsense:
        category = Category.OTHER  # GraphSense's category is optional: a tag that names none is just an entity
    if category is None and not given:
        problems.append("category is missing (and the header sets no default)")
    confidence = _parsed(raw.get("confidence"), _confidence, problems)
    if confidence is None and not _text(raw.get("confidence")):
        confidence = header.confidence
        if confidence is None:
            problems.append("confidence is missing (and the header sets no default)")
    chain = _parsed(raw.get("chain"), _chain, problems) or header.chain or ANY_EVM
    if bitcoin:
        chain = ANY_BTC
    first_seen = _parsed(raw.get("first_seen"), _first_seen, problems)
    source = _text(raw.get("source")) or header.source
    if len(source) > 500:
        problems.append("source is longer than 500 characters")
    if not source:
        problems.append("source is missing (and the header sets none)")
    if problems or address is None or category is None or confidence is None:
        raise InvalidArgument("; ".join(problems))
    details: dict[str, object] = {"tagpack": header.title}
    if _text(raw.get("notes")):
        details["notes"] = _text(raw["notes"])
    if header.graphsense:
        for key in ("actor", "context", "confidence", "abuse"):
            if _text(raw.get(key)):
                details[key] = _text(raw[key])
        if "abuse" not in details and header.abuse_text:
            details["abuse"] = header.abuse_text
    return Label(
        address=address,
        category=category,
        name=name,
        source=source_of(header.title),
        source_url=source,
        confidence=confidence,
        chain=chain,
        first_seen=first_seen,
        created_by=header.creator,
        details=details,
    )


def source_of(title: str) -> str:
    """The label-set source of a pack: `tagpack:<title-slug>`, within the store's 64 characters."""
    return SOURCE_PREFIX + slug(title)[: 64 - len(SOURCE_PREFIX)]


def _yaml_pack(text: str, file: str) -> tuple[dict[str, object], list[tuple[str, object]]]:
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TagPackError(file, [f"not valid YAML{where}"]) from exc
    if not isinstance(data, dict):
        raise TagPackError(file, ["expected a mapping with a header and `tags:`"])
    tags = data.get("tags")
    if not isinstance(tags, list) or not tags:
        raise TagPackError(file, ["`tags:` must be a non-empty list"])
    return data, [(f"entry {number}", tag) for number, tag in enumerate(tags, start=1)]


def _csv_pack(text: str, file: str) -> tuple[dict[str, object], list[tuple[str, object]]]:
    header: dict[str, object] = {}
    lines = text.splitlines(keepends=True)
    start = 0
    problems = []
    for start, line in enumerate(lines):  # after the loop, `start` is where the CSV part begins
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        key, sep, value = stripped.lstrip("#").partition(":")
        if sep:
            header[key.strip().lower()] = value.strip()
        else:
            problems.append(f"line {start + 1}: header lines look like `# key: value`")
    else:
        start = len(lines)
    reader = csv.DictReader(io.StringIO("".join(lines[start:])))
    columns = [c.strip() for c in reader.fieldnames or []]
    reader.fieldnames = columns
    unknown = [c for c in columns if c not in TAG_KEYS | GRAPHSENSE_TAG_KEYS]
    if not columns or "address" not in columns:
        problems.append("no column row with an `address` column after the `# key: value` header")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(sorted(TAG_KEYS))}")
    if problems:
        raise TagPackError(file, problems)
    entries: list[tuple[str, object]] = []
    for row in reader:
        number = start + reader.line_num
        if None in row:
            problems.append(f"line {number}: more cells than columns")
            continue
        if not any(_text(v) for v in row.values()):
            continue
        entries.append((f"line {number}", {k: v for k, v in row.items() if _text(v)}))
    if problems:
        raise TagPackError(file, problems)
    if not entries:
        raise TagPackError(file, ["no tags below the column row"])
    return header, entries


def _is_graphsense(raw_header: dict[str, object], entries: list[tuple[str, object]]) -> bool:
    """A GraphSense pack names a currency (in its header or in its tags)."""
    return "currency" in raw_header or any(isinstance(raw, dict) and "currency" in raw for _, raw in entries[:50])


def read_tagpack_text(text: str, file: str, *, csv_format: bool, version: str | None = None) -> LabelImport:
    """Parse and validate a whole pack; raises `TagPackError` listing every invalid entry."""
    raw_header, entries = _csv_pack(text, file) if csv_format else _yaml_pack(text, file)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    problems: list[str] = []
    is_graphsense = _is_graphsense(raw_header, entries)
    header = _header(raw_header, problems, version or f"{file} sha256:{digest}", is_graphsense=is_graphsense)
    if header is None:
        raise TagPackError(file, problems)
    labels: list[Label] = []
    seen: dict[tuple[str, str, Category, str], str] = {}
    skipped: dict[str, int] = {}
    merged = 0
    for where, raw in entries:
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a mapping of {', '.join(sorted(TAG_KEYS))}")
            continue
        address = _text(raw.get("address"))[:14]
        try:
            label = _tag(raw, header)
        except _Skipped as other:
            skipped[str(other)] = skipped.get(str(other), 0) + 1
            continue
        except UserError as exc:
            problems.append(f"{where}{f' ({address}…)' if address else ''}: {exc}")
            continue
        key = (label.address, label.chain, label.category, label.name)
        if key in seen and header.graphsense:
            merged += 1  # a published pack's repeat: the same label again (the first one's source is kept)
            continue
        if key in seen:
            problems.append(f"{where}: repeats {seen[key]} (same address, chain, category and name)")
            continue
        seen[key] = where
        labels.append(label)
    if problems:
        raise TagPackError(file, problems)
    version = (version or header.version)[:120]
    url = header.source or (graphsense.GRAPHSENSE_URL if header.graphsense else "")
    label_set = LabelSet(source_of(header.title), version, url, header.licence[:120])
    notes = [f"pack “{header.title}” by {header.creator}"]
    if header.graphsense:
        notes.append("GraphSense pack: concepts and confidence ids mapped")
    if merged:
        notes.append(f"{merged} repeated tag(s) merged")
    for currency, count in sorted(skipped.items()):
        notes.append(f"{count} tag(s) of {currency} skipped (no chain of it here)")
    return LabelImport(label_set=label_set, labels=labels, skipped=sum(skipped.values()), notes=notes)


@register("tagpack")
def read_tagpack(path: Path, version: str | None = None) -> LabelImport:
    """`labels import FILE --format tagpack`: a `.yaml`/`.yml` or `.csv` TagPack (by extension)."""
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in (".yaml", ".yml", ".csv"):
        raise InvalidArgument(f"{path.name}: a TagPack is a .yaml, .yml or .csv file.")
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets save CSV with a byte-order mark
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{path.name}: not UTF-8 text.") from exc
    return read_tagpack_text(text, path.name, csv_format=suffix == ".csv", version=version)


def write_csv_pack(yaml_path: Path, csv_path: Path) -> int:
    """Write a YAML pack as the same pack in CSV (`# key: value` header lines, one row per tag, the columns its tags
    use), which reads back into the same labels many times faster. Returns the number of tags written. Made for
    bundling GraphSense's large packs; the test suite checks the bundled copy still equals its YAML."""
    raw, entries = _yaml_pack(yaml_path.read_text(encoding="utf-8"), yaml_path.name)
    tags = [tag for _, tag in entries if isinstance(tag, dict)]
    columns = list(dict.fromkeys(str(key) for tag in tags for key in tag))
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        for key, value in raw.items():
            if key != "tags":
                handle.write(f"# {key}: {_text(value)}\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for tag in tags:
            writer.writerow([_text(tag.get(column)) for column in columns])
    return len(tags)
