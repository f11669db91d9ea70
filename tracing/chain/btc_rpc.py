"""The Bitcoin Core JSON-RPC source: blocks as `UtxoBlock`s (and as `BlockTransfers` for the indexer), read with
`getblockcount`, `getblockhash`, `getblock` and `getrawtransaction` through the same client as the EVM source
(`tracing.chain.rpc.JsonRpcClient`: fail-over across URLs, time-outs, retries with back-off, batches), amounts read
as exact decimals. Credentials go in the URL (`http://user:password@host:8332`, sent as HTTP basic auth, never
logged: `redact`).

Per block: `getblock <hash> 3`, whose inputs carry `prevout` on Core ≥ 25 (no `-txindex` needed); a node that
refuses verbosity 3, or answers it with another shape (Bitcoin SV: the coinbase only, which the stated `num_tx`
gives away), is asked for 2 from then on. Inputs without `prevout` are filled from the other blocks fetched
with it, then from the store (`UtxoStore`, when given), then from `getrawtransaction <txid> 1` of the previous
transactions (one batch; needs `-txindex` for transactions outside the wallet). What is still unknown is said in the
block's coverage notes, and those transactions give no transfers (never a guessed amount).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tracing.chain.config import ChainConfig
from tracing.chain.mappers import BlockCoverage, BlockTransfers, InternalSource, MalformedPayload
from tracing.chain.rpc import ChainIdMismatch, JsonRpcClient, NodeSource, RpcError
from tracing.chain.transfer import Transfer
from tracing.chain.utxo import Outpoint, TxOutput, UtxoTx
from tracing.chain.utxo_mappers import (
    UtxoBlock,
    block_tx_count,
    map_core_block,
    map_core_transaction,
    outputs_of,
    resolve_inputs,
    unresolved,
)
from tracing.chain.utxo_store import UtxoStore
from tracing.chain.utxo_transfers import Allocation, derive_transfers
from tracing.errors import SourceError

log = logging.getLogger(__name__)

CORE_CHAINS = {"main": "main", "test": "test", "testnet4": "test", "signet": "test", "regtest": "regtest"}
"""Core's `getblockchaininfo.chain` → the network of the configuration (`<NAME>_NETWORK`)."""


HEIGHT_OUT_OF_RANGE = -8
"""Core's error code for `getblockhash` above the tip (RPC_INVALID_PARAMETER)."""


class CoreRpcSource(NodeSource):
    """A bitcoin chain's blocks from Bitcoin Core (or a node answering like it) over JSON-RPC."""

    def __init__(
        self,
        chain: ChainConfig,
        *,
        timeout: float = 20.0,
        attempts: int = 3,
        backoff: float = 0.25,
        client: JsonRpcClient | None = None,
        store: UtxoStore | None = None,
        allocation: Allocation | None = None,
    ) -> None:
        """`allocation`: how transfers are derived (default: the chain's `<NAME>_ALLOCATION`, proportional)."""
        self.chain = chain
        self.client = client or JsonRpcClient(
            chain.require_rpc(), timeout=timeout, attempts=attempts, backoff=backoff, parse_float=Decimal
        )
        self.store = store
        self.allocation = allocation or Allocation(chain.allocation)
        self.verbosity = 3
        self.network: str | None = None

    async def connect(self) -> None:
        """Check that the node serves the configured network (main, test or regtest)."""
        info = await self.client.call("getblockchaininfo", [], where=self.chain.name)
        name = str(info.get("chain")) if isinstance(info, Mapping) else "?"
        network = CORE_CHAINS.get(name, name)
        if network != self.chain.network:
            raise ChainIdMismatch(
                f"the bitcoin node for {self.chain.name} serves {name}, not {self.chain.network}; check "
                f"{self.chain.env_prefix}_RPC_URL (or {self.chain.env_prefix}_NETWORK)"
            )
        self.network = network

    async def head(self) -> int:
        count = await self.client.call("getblockcount", [], where=self.chain.name)
        if not isinstance(count, int):
            raise MalformedPayload(f"getblockcount ({self.chain.name}) answered {str(count)[:40]}, not a number")
        return count

    async def block_hash(self, number: int) -> str | None:
        """The hash of the block at `number` on the node's best chain, None above its tip: what the watcher asks
        to see its tip replaced by a branch of the same height or a shorter one."""
        try:
            found = await self.client.call("getblockhash", [number], where=f"{self.chain.name} block {number}")
        except RpcError as exc:
            if exc.code == HEIGHT_OUT_OF_RANGE:
                return None
            raise
        if not isinstance(found, str):
            raise MalformedPayload(f"getblockhash {number} ({self.chain.name}) answered {str(found)[:40]}")
        return found.lower()

    async def utxo_blocks(self, numbers: Sequence[int]) -> list[UtxoBlock | SourceError]:
        """Blocks `numbers` with their inputs resolved as far as the sources allow; per block the block or the
        SourceError that stopped it."""
        where = f"{self.chain.name} blocks {numbers[0]}-{numbers[-1]}" if numbers else self.chain.name
        hashes = await self.client.batch([("getblockhash", [n]) for n in numbers], where=where)
        raw = await self._blocks([h for h in hashes if isinstance(h, str)], where)
        results: list[UtxoBlock | SourceError] = []
        answers = iter(raw)
        for number, block_hash in zip(numbers, hashes, strict=True):
            if isinstance(block_hash, SourceError):
                results.append(block_hash)
                continue
            if not isinstance(block_hash, str):
                results.append(MalformedPayload(f"getblockhash {number} ({self.chain.name}): not a hash"))
                continue
            answer = next(answers)
            if isinstance(answer, SourceError):
                results.append(answer)
                continue
            try:
                results.append(map_core_block(answer, self.chain.name))
            except SourceError as exc:
                results.append(exc)
        blocks = [b for b in results if isinstance(b, UtxoBlock)]
        resolved = iter(await self.resolve([tx for b in blocks for tx in b.txs]))
        return [b if not isinstance(b, UtxoBlock) else _with_txs(b, [next(resolved) for _ in b.txs]) for b in results]

    async def _blocks(self, hashes: Sequence[str], where: str) -> list[Any]:
        if not hashes:
            return []
        asked = self.verbosity  # batches run concurrently: judge the answers by what this one asked for
        answers = await self.client.batch([("getblock", [h, asked]) for h in hashes], where=where)
        if asked == 3 and any(_refused_verbosity(a) for a in answers):
            log.info("%s: the node refuses getblock verbosity 3; reading verbosity 2 and previous transactions", where)
            self.verbosity = 2
            answers = await self.client.batch([("getblock", [h, 2]) for h in hashes], where=where)
        return answers

    async def resolve(self, txs: Sequence[UtxoTx]) -> list[UtxoTx]:
        """`txs` with their unknown input values filled from each other, the store, then the node."""
        txs = resolve_inputs(txs, outputs_of(txs))
        missing = unresolved(txs)
        if missing and self.store is not None:
            txs = resolve_inputs(txs, self.store.outputs(self.chain.name, missing))
            missing = unresolved(txs)
        if missing:
            txs = resolve_inputs(txs, await self.previous_outputs(missing))
        return txs

    async def previous_outputs(self, outpoints: Iterable[Outpoint]) -> dict[Outpoint, TxOutput]:
        """The outputs `outpoints` spend, from `getrawtransaction` of their transactions (those the node does not
        find are left out)."""
        txids = list(dict.fromkeys(o.txid for o in outpoints))
        if not txids:
            return {}
        answers = await self.client.batch(
            [("getrawtransaction", [t, 1]) for t in txids], where=f"{self.chain.name} previous transactions"
        )
        found = [map_core_transaction(a, self.chain.name) for a in answers if isinstance(a, Mapping)]
        return outputs_of(found)

    async def transaction(self, txid: str) -> UtxoTx:
        """One transaction by its id (needs `-txindex` unless it is in the node's wallet or mempool)."""
        answer = await self.client.call("getrawtransaction", [txid, 1], where=self.chain.name)
        if not isinstance(answer, Mapping):
            raise MalformedPayload(f"getrawtransaction {txid}: not a transaction object")
        return (await self.resolve([map_core_transaction(answer, self.chain.name)]))[0]

    async def fetch_blocks(
        self, numbers: Sequence[int], *, token_meta: bool = True
    ) -> list[BlockTransfers | SourceError]:
        """Blocks as the indexer takes them: transfers derived by `allocation`, the transactions beside them."""
        return [b if isinstance(b, SourceError) else self.block_transfers(b) for b in await self.utxo_blocks(numbers)]

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers:
        (result,) = await self.fetch_blocks([number])
        if isinstance(result, SourceError):
            raise result
        return result

    def block_transfers(self, block: UtxoBlock) -> BlockTransfers:
        transfers: list[Transfer] = []
        notes: list[str] = []
        blind = 0
        for tx in block.txs:
            derived = derive_transfers(tx, self.allocation, symbol=self.chain.symbol, source="rpc")
            transfers.extend(derived.transfers)
            if derived.missing:
                blind += 1
                if len(notes) < 3:
                    notes.append(f"block {block.number} tx {tx.txid}: {derived.missing}; no transfers derived")
        if blind:
            notes.append(
                f"block {block.number}: {blind} transaction(s) without every input value (the node gave no prevout "
                "and getrawtransaction did not find the previous transaction: -txindex?): their transfers are "
                "missing"
            )
        return BlockTransfers(
            chain=block.chain,
            number=block.number,
            hash=block.hash,
            parent_hash=block.parent_hash,
            timestamp=block.timestamp,
            tx_count=len(block.txs),
            transfers=tuple(transfers),
            coverage=BlockCoverage(internal=InternalSource.UTXO, receipts="", notes=tuple(notes)),
            utxo_txs=block.txs,
        )


def _with_txs(block: UtxoBlock, txs: Sequence[UtxoTx]) -> UtxoBlock:
    return UtxoBlock(block.chain, block.number, block.hash, block.parent_hash, block.timestamp, tuple(txs))


def _refused_verbosity(answer: Any) -> bool:
    """Whether a getblock answer says the node does not know verbosity 3 (an error, or a block without objects)."""
    if isinstance(answer, RpcError):
        return answer.code in (-8, -1, -32602) or "verbos" in answer.rpc_message.lower()
    if isinstance(answer, Mapping):
        txs = answer.get("tx")
        if not isinstance(txs, list) or any(not isinstance(t, Mapping) for t in txs) or "height" not in answer:
            return True
        count = block_tx_count(answer)  # Bitcoin SV's verbosity 3 is another thing: the coinbase only
        return count is not None and count != len(txs)
    return False
