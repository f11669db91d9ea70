"""TRON's blocks through its Ethereum-style JSON-RPC (`/jsonrpc` of a java-tron full node or TronGrid).

TRON serves EVM-shaped answers with 20-byte addresses (the `41` prefix dropped): `eth_getBlockByNumber` with full
transactions gives each transaction's `from`, `to` and `value` in sun — a TRX transfer (TransferContract) is a
transaction with a recipient and a value, a contract call (TriggerSmartContract) one to the contract with its
call value; `eth_getBlockReceipts` gives each transaction's `status` and logs, and a TRC-20 `Transfer` is the same
event as an ERC-20 one. So `TronRpcSource` reads blocks with the EVM source and mappers and turns every address into
its `T…` form (`tracing.chain.address.tron_from_hex`); token contracts are asked for `symbol()`/`decimals()` with
their 20 bytes.

One trap: java-tron fills a transaction object's `value` with the "amount" of whatever contract it holds — a TRC-10
transfer's token amount, frozen or unfrozen TRX, votes, fixed fees — and its `to` with the contract's recipient, so
a TRC-10 transfer looks exactly like a TRX transfer there. The full node's HTTP API (`/wallet/getblockbynum`, which
TronGrid serves beside `/jsonrpc`, at `TRON_API_URL`) names each transaction's contract type: when it is configured,
a transaction's value counts as TRX only for a TransferContract or a TriggerSmartContract, the rest are counted in the
block's notes; without it, the amounts cannot be checked and the index and every TRON report say so.

What TRON's `/jsonrpc` does not give, and so what a TRON index never holds (said in every report on TRON, see
`TRON_GAPS`): internal TRX transfers (there is no `trace_*`/`debug_*` method), TRC-10 token transfers (their
`value` is 0 in the transaction object), and stake/vote/resource operations. It has no `pending`/`safe` tags
(only `latest`, `earliest`, `finalized`), reads state only at `latest`, and answers `eth_getLogs` for at most
5,000 blocks and 10,000 results a call (`RpcSource.logs` splits ranges).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from tracing.chain.address import Family, normalise_address, tron_from_hex, tron_to_hex
from tracing.chain.config import ChainConfig
from tracing.chain.mappers import BlockTransfers, InternalSource, MalformedPayload, TokenMeta, Traces
from tracing.chain.rpc import RpcSource
from tracing.chain.transfer import Transfer, TransferKind
from tracing.errors import SourceError

log = logging.getLogger(__name__)

NO_INTERNAL = (
    "internal TRX transfers (TRX paid out by contracts) are not covered: TRON's /jsonrpc has no trace methods and "
    "TronGrid's account history gives none"
)
UNTYPED = (
    "TRON: TRX amounts indexed from a node without TRON_API_URL were not checked against the transaction's type "
    "(TRON's /jsonrpc shows a TRC-10 transfer or a staking operation like a TRX transfer)."
)
TRX_TYPES = frozenset({"TransferContract", "TriggerSmartContract"})
"""Contract types whose `value` on TRON's `/jsonrpc` is TRX moved from the sender to the recipient."""
TRON_GAPS = (
    f"TRON: {NO_INTERNAL}.",
    "TRON: TRC-10 token transfers and staking, voting and resource delegation are not covered (only TRX transfers, "
    "TRX sent with contract calls, and TRC-20 Transfer events).",
)
"""What every report on a TRON address says it did not cover."""


def tron_address(value: str) -> str:
    """The `T…` form of an address in a TRON payload (20-byte `0x…` hex, `41…` hex, or `T…` already)."""
    if value[:1] == "T":
        return value
    return tron_from_hex(value)


def tron_transfer(transfer: Transfer) -> Transfer:
    """A transfer read from TRON's `/jsonrpc` with its addresses (sender, recipient, token) in `T…` form."""
    return replace(
        transfer,
        from_addr=tron_address(transfer.from_addr),
        to_addr=tron_address(transfer.to_addr),
        token=tron_address(transfer.token) if transfer.token is not None else None,
    )


def tron_block(block: BlockTransfers) -> BlockTransfers:
    return replace(block, transfers=tuple(tron_transfer(t) for t in block.transfers))


class TronRpcSource(RpcSource):
    """A TRON chain's blocks as `BlockTransfers` with `T…` addresses, read from its `/jsonrpc` (see the module
    docstring). Block and transaction hashes keep the node's `0x` + 64 hex form."""

    def __init__(
        self,
        chain: ChainConfig,
        *,
        wallet_url: str | None = None,
        wallet_key: str | None = None,
        wallet_attempts: int = 3,
        **kwargs: Any,
    ) -> None:
        """`wallet_url`: the full node's HTTP API root (`/wallet/getblockbynum` below it) that types transactions;
        by default the chain's TronGrid URL (`TRON_API_URL`) and key."""
        if chain.family is not Family.TRON:
            raise ValueError(f"chain {chain.name} is not a TRON chain")
        super().__init__(chain, trace_methods=(), **kwargs)
        self.wallet_url = (wallet_url or chain.explorer_url or "").rstrip("/") or None
        key = wallet_key if wallet_key is not None else chain.explorer_key
        self._wallet_headers = {"TRON-PRO-API-KEY": key} if key else {}
        self._wallet_attempts = max(1, wallet_attempts)
        self._wallet: httpx.AsyncClient | None = None
        self.untyped_blocks = 0
        """Blocks whose TRX amounts could not be checked against their transactions' types (no wallet API)."""

    async def aclose(self) -> None:
        if self._wallet is not None:
            await self._wallet.aclose()
            self._wallet = None
        await super().aclose()

    async def _fetch_once(self, number: int, where: str) -> BlockTransfers | None:
        block = await super()._fetch_once(number, where)
        if block is None:
            return None
        candidates = [t for t in block.transfers if t.kind is TransferKind.NATIVE and t.position == "tx"]
        if not candidates:
            return block
        if self.wallet_url is None:
            self.untyped_blocks += 1
            return block
        found = await self._contract_types(number, where)
        if found is None:
            return None
        block_id, types = found
        if "0x" + block_id.lower() != block.hash:
            log.info("%s of %s changed between calls; reading it again", where, self.chain.name)
            return None
        kept: list[Transfer] = []
        dropped: dict[str, int] = {}
        for t in block.transfers:
            kind = types.get(t.tx_hash[2:]) if t.kind is TransferKind.NATIVE and t.position == "tx" else None
            if kind is not None and kind not in TRX_TYPES:
                dropped[kind] = dropped.get(kind, 0) + 1
                continue
            kept.append(t)
        if not dropped:
            return block
        listed = ", ".join(f"{k} {n}" for k, n in sorted(dropped.items()))
        note = f"{where}: {sum(dropped.values())} transaction(s) whose value is not TRX moved ({listed}): not counted"
        return replace(
            block, transfers=tuple(kept), coverage=replace(block.coverage, notes=(*block.coverage.notes, note))
        )

    async def _contract_types(self, number: int, where: str) -> tuple[str, Mapping[str, str]] | None:
        """(blockID, txID → contract type) from `/wallet/getblockbynum`; None when the node does not have it."""
        assert self.wallet_url is not None
        if self._wallet is None:
            self._wallet = httpx.AsyncClient(
                timeout=20.0, headers={"User-Agent": "chainsleuth", **self._wallet_headers}
            )
        url = f"{self.wallet_url}/wallet/getblockbynum"
        last = ""
        for attempt in range(self._wallet_attempts):
            if attempt:
                await asyncio.sleep(0.25 * 2 ** (attempt - 1))
            try:
                response = await self._wallet.post(url, json={"num": number})
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise SourceError(f"/wallet/getblockbynum ({where}): HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                last = "not JSON"
                continue
            if not isinstance(body, dict) or not body.get("blockID"):
                return None  # not there (yet): read the block again
            types: dict[str, str] = {}
            for tx in body.get("transactions") or []:
                contract = ((tx.get("raw_data") or {}).get("contract") or [{}])[0] if isinstance(tx, dict) else {}
                if isinstance(contract, dict) and isinstance(tx.get("txID"), str):
                    types[str(tx["txID"]).lower()] = str(contract.get("type") or "")
            return str(body["blockID"]), types
        raise SourceError(
            f"/wallet/getblockbynum ({where}): no usable answer after {self._wallet_attempts} attempts; last: {last}"
        )

    async def _traces(self, tag: str, where: str) -> Traces:
        # No trace method exists on TRON: asking would cost a call per block for a certain "method not found".
        return Traces(InternalSource.UNAVAILABLE, ())

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers:
        return tron_block(await super().fetch_block(number, token_meta=token_meta))

    async def fetch_blocks(
        self, numbers: Sequence[int], *, token_meta: bool = True
    ) -> list[BlockTransfers | SourceError]:
        found = await super().fetch_blocks(numbers, token_meta=token_meta)
        return [tron_block(b) if isinstance(b, BlockTransfers) else b for b in found]

    async def token_meta(self, tokens: Iterable[str]) -> dict[str, TokenMeta]:
        """decimals() and symbol() of TRC-20 tokens given as `T…` (or as the node's 20-byte hex), keyed as given."""
        given = {token: (tron_to_hex(token) if token[:1] == "T" else token) for token in tokens}
        metas = await super().token_meta(set(given.values()))
        return {
            token: replace(metas[hex_form], address=token) for token, hex_form in given.items() if hex_form in metas
        }

    def _node_address(self, address: str) -> str:
        return tron_to_hex(address) if address[:1] == "T" else address

    def _chain_address(self, value: object, where: str) -> str:
        address = normalise_address(value, hex_digits=True)
        if address is None:
            raise MalformedPayload(f"{where}: {str(value)[:50]!r} is not a TRON contract address")
        return tron_from_hex(address)


def rpc_source(chain: ChainConfig, **kwargs: Any) -> RpcSource:
    """The JSON-RPC source of a configured chain: `TronRpcSource` for a TRON chain, `RpcSource` for an EVM one."""
    if chain.family is Family.TRON:
        return TronRpcSource(chain, **kwargs)
    if chain.family is not Family.EVM:
        raise SourceError(f"chain {chain.name} ({chain.family}) has no JSON-RPC block source")
    return RpcSource(chain, **kwargs)
