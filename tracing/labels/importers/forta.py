"""Forta's labelled datasets (forta-network/labelled-datasets, MIT) → hack and scam labels.

Three CSV kinds, under `labels/<chain id>/`: Etherscan's phish-hack/exploit/heist lists
(`etherscan_malicious_labels.csv`), phishing EOAs and contracts (`phishing_scams.csv`), and malicious contracts with
their deployers and creation transactions (`malicious_smart_contracts.csv`). The chain is the folder's chain id.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tracing.chain import is_address
from tracing.errors import InvalidArgument
from tracing.labels.importers import LabelImport, register
from tracing.labels.importers.tornado import chain_name
from tracing.labels.model import Category, Label, LabelSet

SOURCE = "forta"
REPO_URL = "https://github.com/forta-network/labelled-datasets"
FILE_URL = REPO_URL + "/blob/main/labels/{chain_id}/{file}"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "data" / "forta"
BUNDLED_VERSION = "forta-network/labelled-datasets 40a9c2f (2023-01-26)"
LICENCE = "MIT (Forta Foundation)"
CONFIDENCE = 0.8
"""Etherscan's tags as exported in 2022, second hand: good, but not re-checked by Forta."""

MALICIOUS_LABELS = "etherscan_malicious_labels.csv"
PHISHING = "phishing_scams.csv"
CONTRACTS = "malicious_smart_contracts.csv"
KINDS = {
    MALICIOUS_LABELS: ("banned_address", "wallet_tag", "data_source"),
    PHISHING: ("address", "etherscan_tag", "etherscan_labels"),
    CONTRACTS: ("contract_address", "contract_tag", "contract_creator", "contract_creator_tag"),
}
ETHERSCAN_LISTS = {
    "etherscan-phish-hack-list": Category.SCAM,
    "etherscan-exploit-list": Category.HACK,
    "etherscan-heist-list": Category.HACK,
}
CONTRACT_LABELS = {"phish-hack": Category.SCAM, "exploit": Category.HACK, "heist": Category.HACK}
"""`contract_creator_etherscan_label` → category. Rows without one are exploit contracts named after the hack."""


@dataclass
class _Collector:
    """Labels keyed by identity, so that one address tagged the same way in two files is one label."""

    labels: dict[tuple[str, str, Category, str], Label] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def add(self, label: Label) -> None:
        key = (label.address, label.chain, label.category, label.name)
        known = self.labels.get(key)
        if known is None:
            self.labels[key] = label
            return
        # Still being built, so merging into its details is safe: lists (files, deployed contracts) are joined.
        for name, value in label.details.items():
            old = known.details.get(name)
            if isinstance(old, list) and isinstance(value, list):
                known.details[name] = list(dict.fromkeys([*old, *value]))
            else:
                known.details.setdefault(name, value)


def _chain_of(path: Path) -> tuple[int, str]:
    """The chain of `labels/<chain id>/file.csv`; a file outside such a folder is taken as Ethereum's."""
    folder = path.parent.name
    chain_id = int(folder) if folder.isdigit() else 1
    try:
        return chain_id, chain_name(chain_id)
    except InvalidArgument as exc:
        raise InvalidArgument(f"{folder}/{path.name}: {exc}") from exc


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidArgument(f"{path.name}: missing column(s) {', '.join(missing)}.")
        for row in reader:
            yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}


def _label(address: str, category: Category, name: str, chain: str, url: str, details: dict[str, object]) -> Label:
    return Label(
        address=address.lower(),
        category=category,
        name=name,
        source=SOURCE,
        source_url=url,
        confidence=CONFIDENCE,
        chain=chain,
        details=details,
    )


def _read_file(path: Path, into: _Collector) -> None:
    kind = path.name
    if kind not in KINDS:
        raise InvalidArgument(f"{path.name}: not a Forta labelled-datasets file ({', '.join(KINDS)}).")
    chain_id, chain = _chain_of(path)
    url = FILE_URL.format(chain_id=chain_id, file=kind)
    count = 0
    for _line, row in _rows(path, KINDS[kind]):
        count += 1
        where: dict[str, object] = {"files": [f"{chain_id}/{kind}"]}
        labels: list[tuple[str, Category | None, str, dict[str, object]]]
        if kind == MALICIOUS_LABELS:
            address, category = row["banned_address"], ETHERSCAN_LISTS.get(row["data_source"])
            name = row["wallet_tag"] or f"Etherscan {row['data_source'].removeprefix('etherscan-')}"
            labels = [(address, category, name, where | {"etherscan_list": row["data_source"]})]
        elif kind == PHISHING:
            category = Category.SCAM if "phish-hack" in row["etherscan_labels"].split(",") else None
            name = row["etherscan_tag"] or "Etherscan phish-hack"
            details: dict[str, object] = where | {"is_contract": row.get("is_contract") == "True"}
            labels = [(row["address"], category, name, details)]
        else:
            labels = _contract_labels(row, where)
        for address, found, name, details in labels:
            if found is None or not is_address(address):
                into.skipped += 1
                continue
            into.add(_label(address, found, name, chain, url, details))
    into.rows[f"{chain_id}/{kind}"] = count


def _contract_labels(
    row: dict[str, str], where: dict[str, object]
) -> list[tuple[str, Category | None, str, dict[str, object]]]:
    """The contract, and its deployer when the deployer has a tag of its own."""
    label = row.get("contract_creator_etherscan_label", "")
    category = CONTRACT_LABELS.get(label, Category.HACK if not label else None)
    creator, creator_tag, notes = row["contract_creator"], row["contract_creator_tag"], row.get("notes", "")
    name = (
        row["contract_tag"]
        or (f"{creator_tag}: contract" if creator_tag else "")
        or (f"Malicious contract: {notes}" if notes else "Malicious contract")
    )
    details: dict[str, object] = where | {"deployer": creator.lower(), "reported_by": row.get("source", "")}
    if row.get("contract_creation_tx"):
        details["creation_tx"] = row["contract_creation_tx"].lower()
    if notes:
        details["notes"] = notes
    found = [(row["contract_address"], category, name, details)]
    if creator_tag:
        found.append((creator, category, creator_tag, where | {"deployed": [row["contract_address"].lower()]}))
    return found


def read_forta_files(paths: list[Path], version: str) -> LabelImport:
    collector = _Collector()
    for path in paths:
        _read_file(path, collector)
    label_set = LabelSet(SOURCE, version, REPO_URL, LICENCE)
    notes = [f"{name}: {count} rows" for name, count in sorted(collector.rows.items())]
    if collector.skipped:
        notes.append(f"{collector.skipped} rows without a usable address or tag skipped")
    return LabelImport(label_set, list(collector.labels.values()), collector.skipped, notes)


def dataset_files(directory: Path) -> list[Path]:
    """The dataset's files under a checkout, its `labels/` folder or one chain's folder."""
    found = sorted(p for p in directory.rglob("*.csv") if p.name in KINDS)
    if not found:
        raise InvalidArgument(f"{directory.name}: no Forta label files ({', '.join(KINDS)}) in this folder.")
    return found


@register("forta")
def read_forta(path: Path, version: str | None = None) -> LabelImport:
    """`labels import PATH --format forta`: the dataset folder (all files), or one file. The set is one source,
    `forta`: importing a single file replaces the whole set with that file's labels."""
    paths = dataset_files(path) if path.is_dir() else [path]
    return read_forta_files(paths, version or (path.name if path.is_dir() else f"{path.parent.name}/{path.name}"))
