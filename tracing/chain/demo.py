"""The demo data set: ETH transactions of the Lazarus Group's Ronin-hack wallets (a Dune export by DspytDAO, MIT;
see `data/demo/SOURCE.md`), loaded into an empty store on first run so that `/risk` and `/trace` show real flows.

The export has no tx hashes and no block numbers: each row becomes a native transfer with `source="demo"`,
block 0 and a stable synthetic id `dune:<sha256 of the row>`; reports built on it say so in their evidence.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy import delete
from sqlmodel import col

from storage import Database, KeyValueRow, TransferRow, utcnow
from tracing.chain.address import normalise_address
from tracing.chain.index import TransferIndex
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import InvalidArgument

log = logging.getLogger(__name__)

SOURCE = "demo"
DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"
DEMO_CSV = DEMO_DIR / "LazarusTabularTxs1322519.csv"
VERSION = "dspytdao/Eth_Data@3c66dcb LazarusTabularTxs1322519"
STATE_KEY = "demo_data"
RONIN_EXPLOITER = "0x098b716b8aaf21512996dc57eb0615e2383e2f96"
"""The Ronin bridge exploiter (OFAC SDN, Lazarus Group): the demo's main address."""
RONIN_INTERMEDIARY = "0x35fb6f6db4fb05e6a4ce86f2c93691425626d4b1"
"""One of the exploiter's OFAC-listed intermediaries, which forwarded funds toward Tornado Cash."""


@dataclass(frozen=True, slots=True)
class DemoLoad:
    added: int
    removed: int = 0
    skipped: bool = False


def _demo_address(text: str, where: str) -> str:
    raw = text.strip().lower()
    if raw.startswith("\\x"):  # PostgreSQL's bytea notation, as the demo rows were exported
        raw = "0x" + raw[2:]
    address = normalise_address(raw, hex_digits=False)
    if address is None:
        raise InvalidArgument(f"{where}: “{text[:50]}” is not an address.")
    return address


def _wei(text: str, where: str) -> int:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise InvalidArgument(f"{where}: “{text[:30]}” is not an ETH amount.") from None
    if amount < 0:
        raise InvalidArgument(f"{where}: negative amount.")
    return int(amount.scaleb(18).to_integral_value())


def read_demo_transfers(path: Path = DEMO_CSV, chain: str = "eth") -> list[Transfer]:
    """The export's rows as transfers (wei, synthetic ids), oldest first."""
    transfers: list[Transfer] = []
    seen: Counter[str] = Counter()
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for line, row in enumerate(reader, start=2):
            where = f"{path.name} line {line}"
            raw = ",".join(row[k] for k in ("block_time", "from", "to", "total_eth"))
            seen[raw] += 1
            digest = hashlib.sha256(f"{raw}#{seen[raw]}".encode()).hexdigest()[:40]
            moment = datetime.fromisoformat(row["block_time"].replace("Z", "+00:00"))
            transfers.append(
                Transfer(
                    chain=chain,
                    block_number=0,
                    block_hash="",
                    timestamp=int(moment.timestamp()),
                    tx_hash=f"dune:{digest}",
                    kind=TransferKind.NATIVE,
                    position="tx",
                    from_addr=_demo_address(row["from"], where),
                    to_addr=_demo_address(row["to"], where),
                    value=_wei(row["total_eth"], where),
                    source=SOURCE,
                )
            )
    transfers.sort(key=lambda t: (t.timestamp, t.tx_hash))
    return transfers


def remove_demo(db: Database) -> int:
    """Delete the demo transfers (and remember that, so the first-run load does not bring them back)."""
    with db.session() as session:
        result = session.execute(delete(TransferRow).where(col(TransferRow.source) == SOURCE))
        row = session.get(KeyValueRow, STATE_KEY) or KeyValueRow(key=STATE_KEY)
        row.value = {"version": VERSION, "transfers": 0, "removed": True}
        row.updated_at = utcnow()
        session.add(row)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def load_demo(db: Database, *, reset: bool = False, chain: str = "eth") -> DemoLoad:
    """Load the demo transfers (idempotent); with `reset`, delete them first."""
    removed = remove_demo(db) if reset else 0
    added = TransferIndex(db).add(read_demo_transfers(chain=chain))
    with db.session() as session:
        row = session.get(KeyValueRow, STATE_KEY) or KeyValueRow(key=STATE_KEY)
        row.value = {"version": VERSION, "transfers": added, "chain": chain}
        row.updated_at = utcnow()
        session.add(row)
    log.info("demo data: %d transfers loaded (%d removed first)", added, removed)
    return DemoLoad(added=added, removed=removed)


def ensure_demo_data(db: Database, chain: str = "eth") -> DemoLoad:
    """On first run, load the demo into an empty store. Never again once loaded (or removed) by the operator, and
    never into a store that already holds transfers."""
    with db.session() as session:
        state = session.get(KeyValueRow, STATE_KEY)
    if state is not None or TransferIndex(db).count() > 0:
        return DemoLoad(added=0, skipped=True)
    return load_demo(db, chain=chain)


def demo_loaded(db: Database) -> bool:
    with db.session() as session:
        state = session.get(KeyValueRow, STATE_KEY)
    return state is not None and bool(state.value.get("transfers"))
