"""Tornado Cash pools, routers and other contracts → mixer labels, per chain.

Two CSVs (bundled in `tracing/labels/data/tornado/`): the pools and routers of every chain, transcribed from the
tornado-cli config (chain-specific: one address is the 100 BNB pool on BSC and the 100 xDAI pool on Gnosis), and the
Ethereum contracts Etherscan tags `tornado-cash` (governance, TORN, vesting, proxies, ...).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from tracing.chain import is_address
from tracing.errors import InvalidArgument
from tracing.labels.importers import LabelImport, register
from tracing.labels.model import Category, Label, LabelSet

SOURCE = "tornado-cash"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "tornado"
INSTANCES_CSV = "tornado_cash_instances.csv"
ETHERSCAN_CSV = "tornado_cash_etherscan_labels.csv"
CONFIG_URL = "https://github.com/tornadosto/tornado-cli/blob/688f84f645af3a154b7248d065e34cb34d3fc9d1/config.js"
ETHERSCAN_URL = "https://etherscan.io/address/{}"
BUNDLED_VERSION = "tornado-cli config 688f84f + Etherscan tornado-cash tags 2023-06-18"
LICENCE = "facts from tornado-cli config; Etherscan tags via brianleect/etherscan-labels (MIT)"

CHAIN_NAMES = {
    1: "eth",
    10: "optimism",
    56: "bsc",
    100: "gnosis",
    137: "polygon",
    42161: "arbitrum",
    43114: "avalanche",
}
"""Chain ids → our chain names."""

INSTANCE_COLUMNS = ("chain_id", "kind", "symbol", "denomination", "address")
ETHERSCAN_COLUMNS = ("address", "etherscan_name")

# Contracts that take or pay out user funds are the mixer; governance, TORN and vesting contracts, verifiers and
# Merkle trees never hold a depositor's coins, and calling them "mixer" would make exposure to them look like
# mixing. They stay labelled (as `other`) so that an analyst still sees whose contract it is.
_MIXING = re.compile(
    r"^tornado\.cash:? (router|proxy|old proxy|mixer \d+|l1 helper|l1 unwrapper|[\d,.]+ \w+( \d+)?( pool)?)$",
    re.IGNORECASE,
)

_POOL = re.compile(r"^tornado\.cash:? ([\d,.]+) (\w+)$", re.IGNORECASE)


def is_mixing_contract(name: str) -> bool:
    """Whether a Tornado Cash contract name (Etherscan style) is a pool, router or proxy that moves user funds."""
    return bool(_MIXING.match(name.strip()))


def chain_name(chain_id: str | int) -> str:
    try:
        return CHAIN_NAMES[int(chain_id)]
    except (KeyError, ValueError) as exc:
        raise InvalidArgument(f"Unknown chain id {chain_id!r}; known: {sorted(CHAIN_NAMES)}.") from exc


def _denomination(text: str) -> str:
    try:
        return f"{Decimal(text):,}"
    except InvalidOperation as exc:
        raise InvalidArgument(f"bad denomination {text!r}") from exc


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        for row in reader:
            address = (row.get("address") or "").strip()
            if not is_address(address):
                raise InvalidArgument(f"{path.name} line {reader.line_num}: “{address[:50]}” is not an EVM address.")
            yield reader.line_num, row


def _instance_labels(path: Path) -> list[Label]:
    labels = []
    for line, row in _rows(path, INSTANCE_COLUMNS):
        chain = chain_name(row["chain_id"])
        kind = row["kind"].strip()
        details: dict[str, object] = {"chain_id": int(row["chain_id"]), "file": path.name}
        if kind == "instance":
            try:
                amount = _denomination(row["denomination"])
            except InvalidArgument as exc:
                raise InvalidArgument(f"{path.name} line {line}: {exc}") from exc
            symbol = row["symbol"].strip()
            name, category = f"Tornado.Cash: {amount} {symbol} pool", Category.MIXER
            details |= {"kind": "pool", "denomination": f"{amount} {symbol}", "symbol": symbol}
            if row.get("token_address"):
                details["token"] = row["token_address"].strip().lower()
            if row.get("deployed_block"):
                details["deployed_block"] = int(row["deployed_block"])
        elif kind.startswith("router"):
            name, category = "Tornado.Cash: Router", Category.MIXER
            details |= {"kind": "router", "note": "deposits sent here are forwarded to a pool"}
        elif kind == "relayer registry":
            # Relayers stake TORN here; no deposit or withdrawal passes through it.
            name, category = "Tornado.Cash: Relayer Registry", Category.OTHER
            details["kind"] = "relayer registry"
        else:
            raise InvalidArgument(f"{path.name} line {line}: unknown kind {kind!r}.")
        labels.append(
            Label(
                address=row["address"].strip().lower(),
                category=category,
                name=name,
                source=SOURCE,
                source_url=CONFIG_URL,
                confidence=1.0,
                chain=chain,
                details=details,
            )
        )
    return labels


def _etherscan_labels(path: Path) -> list[Label]:
    labels = []
    for _line, row in _rows(path, ETHERSCAN_COLUMNS):
        address = row["address"].strip().lower()
        tag = row["etherscan_name"].strip()
        name = tag or "Tornado.Cash contract"
        category = Category.MIXER if is_mixing_contract(name) else Category.OTHER
        details: dict[str, object] = {"kind": "contract", "file": path.name, "etherscan_name": tag}
        pool = _POOL.match(name)
        if pool:
            amount, symbol = pool.group(1), pool.group(2)
            name = f"Tornado.Cash: {amount} {symbol} pool"
            details |= {"kind": "pool", "denomination": f"{amount} {symbol}", "symbol": symbol}
        labels.append(
            Label(
                address=address,
                category=category,
                name=name,
                source=SOURCE,
                source_url=ETHERSCAN_URL.format(address),
                confidence=1.0,
                chain="eth",
                details=details,
            )
        )
    return labels


def _merge(instances: list[Label], tagged: list[Label]) -> list[Label]:
    """One label per (address, chain): the config's pool/router name wins; Etherscan's name goes into details."""
    merged: dict[tuple[str, str], Label] = {(lb.address, lb.chain): lb for lb in instances}
    for label in tagged:
        known = merged.get((label.address, label.chain))
        if known is None:
            merged[(label.address, label.chain)] = label
        else:
            details = known.details | {"etherscan_name": label.details["etherscan_name"]}
            merged[(label.address, label.chain)] = replace(known, details=details)
    return list(merged.values())


def read_tornado_dir(directory: Path, version: str | None = None) -> LabelImport:
    """Both CSVs of a directory (either may be absent, not both)."""
    instances_csv, etherscan_csv = directory / INSTANCES_CSV, directory / ETHERSCAN_CSV
    if not instances_csv.is_file() and not etherscan_csv.is_file():
        raise InvalidArgument(f"{directory.name}: neither {INSTANCES_CSV} nor {ETHERSCAN_CSV} is there.")
    instances = _instance_labels(instances_csv) if instances_csv.is_file() else []
    tagged = _etherscan_labels(etherscan_csv) if etherscan_csv.is_file() else []
    labels = _merge(instances, tagged)
    label_set = LabelSet(SOURCE, version or f"{directory.name} ({len(labels)} contracts)", CONFIG_URL, LICENCE)
    notes = [f"{len(instances)} pools/routers, {len(tagged)} Etherscan-tagged contracts"]
    return LabelImport(label_set=label_set, labels=labels, notes=notes)


@cache
def tornado_addresses() -> frozenset[str]:
    """Every address of the bundled Tornado Cash set, on any chain (for naming delisted OFAC entries)."""
    return frozenset(label.address for label in read_tornado_dir(BUNDLED_DIR).labels)


@register("tornado")
def read_tornado(path: Path, version: str | None = None) -> LabelImport:
    """`labels import PATH --format tornado`: a folder with the two CSVs, or one of them."""
    if path.is_dir():
        return read_tornado_dir(path, version)
    with path.open(newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    if "chain_id" in header:
        labels, kind = _instance_labels(path), "pools/routers"
    elif "etherscan_name" in header:
        labels, kind = _etherscan_labels(path), "Etherscan-tagged contracts"
    else:
        raise InvalidArgument(f"{path.name}: not a Tornado Cash contract list (no chain_id or etherscan_name column).")
    label_set = LabelSet(SOURCE, version or path.name, CONFIG_URL, LICENCE)
    return LabelImport(label_set=label_set, labels=labels, notes=[f"{len(labels)} {kind}"])
