"""Token metadata: the symbol and decimals of every token an answer mentions.

Where they come from, in order: the transfer itself (when the indexer read them), the tokens cached in the store
(`token` table: what a contract answered before), the bundled token list (`data/tokens/`, see its SOURCE.md), and
the contract itself (`symbol()`, `decimals()` over the chain's JSON-RPC, when configured; the answer is cached in
the store, a contract that answers neither included, so it is asked once). A token found nowhere keeps its raw
units and its address is named once in the answer's coverage.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage import Database, TokenRow, utcnow
from tracing.chain.address import canonical
from tracing.chain.config import WELL_KNOWN

log = logging.getLogger(__name__)

TOKEN_LIST = Path(__file__).parent / "data" / "tokens" / "evm_erc20_tokens.csv"
TRON_TOKEN_LIST = Path(__file__).parent / "data" / "tokens" / "tron_trc20_tokens.csv"
_NATIVE_PLACEHOLDERS = {"0x" + "e" * 40, "0x" + "0" * 40}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token's symbol and decimals, and where they were found (`transfer`, `store`, `token list`, `rpc`)."""

    address: str
    symbol: str | None
    decimals: int | None
    source: str

    @property
    def known(self) -> bool:
        """Both symbol and decimals are known: its amounts can be printed in units."""
        return self.symbol is not None and self.decimals is not None


class TokenMetaReader(Protocol):
    """What reads metadata from contracts: `tracing.chain.rpc.RpcSource.token_meta` answers this."""

    async def token_meta(self, tokens: Iterable[str]) -> Mapping[str, object]: ...


@cache
def bundled_tokens() -> dict[int, dict[str, TokenInfo]]:
    """The bundled token lists (ERC-20 on EVM chains, TRC-20 on TRON) by chain id and canonical address (rows
    without decimals and native placeholders skipped; the first of duplicate rows wins)."""
    found: dict[int, dict[str, TokenInfo]] = {}
    with TOKEN_LIST.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            address = row["address"].strip().lower()
            digits = row["decimals"].strip()
            if address in _NATIVE_PLACEHOLDERS or not digits.isdigit() or not row["chain_id"].strip().isdigit():
                continue
            tokens = found.setdefault(int(row["chain_id"]), {})
            tokens.setdefault(
                address, TokenInfo(address, row["symbol"].strip()[:32] or None, int(digits), "token list")
            )
    tron = WELL_KNOWN["tron"].chain_id
    assert tron is not None
    with TRON_TOKEN_LIST.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            address, digits = row["address"].strip(), row["decimals"].strip()
            if digits.isdigit():
                found.setdefault(tron, {}).setdefault(
                    address, TokenInfo(address, row["symbol"].strip()[:32] or None, int(digits), "token list")
                )
    return found


def chain_id_of(chain: str) -> int | None:
    """The chain id of a chain name: well-known names, then the configured chains."""
    known = WELL_KNOWN.get(chain)
    if known is not None:
        return known.chain_id
    try:
        from tracing.chain.config import configured_chains

        configured = configured_chains().get(chain)
    except Exception:  # a broken chain variable is reported by the chain commands, not here
        return None
    return configured.chain_id if configured is not None else None


def listed_token(chain: str, token: str) -> TokenInfo | None:
    """The bundled token list's entry for a token of a chain, if any."""
    chain_id = chain_id_of(chain)
    if chain_id is None:
        return None
    return bundled_tokens().get(chain_id, {}).get(canonical(token))


class TokenBook:
    """Token metadata for one store: the cached rows, the bundled list, and contracts read through a chain's RPC."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seen: dict[tuple[str, str], TokenInfo] = {}
        """What this process found already (the store and list only change through `remember`)."""

    def known(self, chain: str, tokens: Iterable[str]) -> dict[str, TokenInfo]:
        """What the store and the bundled list know of these tokens, without asking the chain. A store row that
        found nothing is returned too (source `rpc`, symbol and decimals None): the contract was asked already."""
        wanted = {canonical(t) for t in tokens}
        found = {t: self._seen[(chain, t)] for t in wanted if (chain, t) in self._seen}
        unseen = wanted - found.keys()
        if unseen:
            with self.db.session() as session:
                rows = session.exec(
                    select(TokenRow).where(TokenRow.chain == chain, col(TokenRow.address).in_(sorted(unseen)))
                ).all()
            for row in rows:
                found[row.address] = TokenInfo(row.address, row.symbol, row.decimals, "store")
            for token in unseen:
                listed = listed_token(chain, token)
                if listed is not None and (token not in found or not found[token].known):
                    found[token] = listed
                if token in found:
                    self._seen[(chain, token)] = found[token]
        return found

    async def resolve(
        self, chain: str, tokens: Iterable[str], reader: TokenMetaReader | None = None
    ) -> dict[str, TokenInfo]:
        """Metadata for every token given: known ones from the store and list, the rest read from the contracts
        through `reader` (the chain's RPC source) and cached. Tokens found nowhere map to an unknown `TokenInfo`."""
        wanted = {canonical(t) for t in tokens}
        found = self.known(chain, wanted)
        missing = sorted(t for t in wanted if t not in found)
        if missing and reader is not None:
            answers = await reader.token_meta(missing)
            read = {}
            for token in missing:
                meta = answers.get(token)
                symbol = getattr(meta, "symbol", None)
                decimals = getattr(meta, "decimals", None)
                read[token] = TokenInfo(token, symbol, decimals, "rpc")
            self.remember(chain, read.values())
            found.update(read)
        for token in wanted:
            found.setdefault(token, TokenInfo(token, None, None, "not found"))
        return found

    def remember(self, chain: str, infos: Iterable[TokenInfo]) -> None:
        """Cache what contracts answered (an empty answer too: it is not asked again)."""
        infos = list(infos)
        try:
            with self.db.session() as session:
                for info in infos:
                    row = session.get(TokenRow, (chain, info.address))
                    if row is None:
                        row = TokenRow(chain=chain, address=info.address)
                    row.symbol, row.decimals, row.source = info.symbol, info.decimals, info.source
                    row.checked_at = utcnow()
                    session.add(row)
        except IntegrityError:  # another process cached the same token a moment ago: its answer is as good
            log.info("token metadata of %s cached concurrently", chain)
        for info in infos:
            self._seen[(chain, info.address)] = TokenInfo(info.address, info.symbol, info.decimals, "store")


def unknown_token_note(tokens: Iterable[str]) -> str | None:
    """The one sentence an answer gives about tokens whose metadata was found nowhere, with their addresses."""
    from tracing.chain.address import checksum

    names = sorted({checksum(t) for t in tokens})
    if not names:
        return None
    which = "token " + names[0] if len(names) == 1 else f"{len(names)} tokens (" + ", ".join(names) + ")"
    return (
        f"No symbol or decimals found for {which} (not in the token list, and its contract did not answer or the "
        "chain has no RPC configured): its amounts are in raw units, without a USD value."
    )
