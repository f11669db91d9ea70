"""Bitcoin blocks for the watcher, read from a Bitcoin Core node's JSON-RPC: the head (`getblockcount`), the hash
at a height (`getblockhash`, for reorg checks without reading whole blocks) and one block with its transactions
(`getblock <hash> 3`, mapped by `tracing.chain.utxo_mappers`).

Every input needs the output it spends (its address and value: a watched address *spending* shows only there).
Core ≥ 23 (`/Satoshi:23…/` in `getnetworkinfo`) gives it with verbosity 3 (`prevout`); with any other node
(an older Core; Bitcoin SV, the test node, whose verbosity 3 means "the coinbase only") blocks are read with
verbosity 2 and the spent outputs with `getrawtransaction <txid> 1`, batched, which needs `-txindex=1`.
Outputs of blocks read recently are kept (`recent_txs`), so spends of young coins cost no call. A block whose
inputs cannot all be resolved is a SourceError: the watcher retries it rather than miss a spend.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from tracing.chain.config import ChainConfig
from tracing.chain.mappers import MalformedPayload
from tracing.chain.rpc import JsonRpcClient, RpcError
from tracing.chain.utxo import Outpoint, TxOutput
from tracing.chain.utxo_mappers import UtxoBlock, map_core_block, map_core_output, resolve_inputs, unresolved
from tracing.errors import SourceError

HEIGHT_OUT_OF_RANGE = -8
"""Core's error code for `getblockhash` above the tip (RPC_INVALID_PARAMETER)."""
PREVOUT_VERSION = 230000
"""The first Bitcoin Core version whose `getblock` verbosity 3 gives each input's `prevout`."""
NETWORKS = {"main": "main", "test": "test", "testnet4": "test", "signet": "test", "regtest": "regtest"}
"""`getblockchaininfo`'s `chain` → the configured `<NAME>_NETWORK` it serves."""


class NetworkMismatch(SourceError):
    """The node serves another bitcoin network than the configuration says."""


class CoreBlockSource:
    """A bitcoin chain's blocks as `UtxoBlock`s with every input resolved (see the module docstring).

    What the watcher needs (`head`, `fetch_block`) plus `block_hash`, which lets it check the tip it stands on
    (a reorg to a branch of the same height or a shorter one) with one cheap call per poll.
    """

    def __init__(
        self,
        chain: ChainConfig,
        *,
        timeout: float = 20.0,
        attempts: int = 3,
        backoff: float = 0.25,
        client: JsonRpcClient | None = None,
        recent_txs: int = 20_000,
    ) -> None:
        self.chain = chain
        self.client = client or JsonRpcClient(chain.require_rpc(), timeout=timeout, attempts=attempts, backoff=backoff)
        self.recent_txs = recent_txs
        self._outputs: OrderedDict[str, dict[int, TxOutput]] = OrderedDict()
        self.verbosity: int | None = None
        """2 or 3 (see the module docstring); read from the node on first use."""

    async def __aenter__(self) -> CoreBlockSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def connect(self) -> str:
        """The node's network (`main`, `test`, `regtest`); NetworkMismatch when the configuration says another."""
        info = await self.client.call("getblockchaininfo", [], where=self.chain.name)
        served = NETWORKS.get(str(info.get("chain") if isinstance(info, dict) else ""), "")
        if served != self.chain.network:
            raise NetworkMismatch(
                f"the RPC node for {self.chain.name} serves bitcoin network “{served or info}”, not "
                f"{self.chain.network}; check {self.chain.env_prefix}_RPC_URL (or {self.chain.env_prefix}_NETWORK)"
            )
        await self._verbosity()
        return served

    async def _verbosity(self) -> int:
        if self.verbosity is None:
            info = await self.client.call("getnetworkinfo", [], where=self.chain.name)
            info = info if isinstance(info, dict) else {}
            version, agent = info.get("version"), str(info.get("subversion") or "")
            core = agent.startswith("/Satoshi:") and isinstance(version, int) and version >= PREVOUT_VERSION
            self.verbosity = 3 if core else 2
        return self.verbosity

    async def head(self) -> int:
        height = await self.client.call("getblockcount", [], where=self.chain.name)
        if not isinstance(height, int) or isinstance(height, bool):
            raise MalformedPayload(f"getblockcount ({self.chain.name}) answered {str(height)[:40]!r}")
        return height

    async def block_hash(self, number: int) -> str | None:
        """The hash of the block at `number` on the node's best chain; None above its tip."""
        try:
            found = await self.client.call("getblockhash", [number], where=f"{self.chain.name} block {number}")
        except RpcError as exc:
            if exc.code == HEIGHT_OUT_OF_RANGE:
                return None
            raise
        if not isinstance(found, str):
            raise MalformedPayload(f"getblockhash {number} answered {str(found)[:40]!r}")
        return found.lower()

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> UtxoBlock:
        """Block `number` of the best chain, every input with its address and value. (`token_meta`: the EVM
        source's parameter; bitcoin has no tokens.)"""
        where = f"{self.chain.name} block {number}"
        block_hash = await self.block_hash(number)
        if block_hash is None:
            raise SourceError(f"getblockhash ({where}): the node has no block {number} (yet)")
        raw = await self.client.call("getblock", [block_hash, await self._verbosity()], where=where)
        if not isinstance(raw, dict):
            raise MalformedPayload(f"getblock ({where}) answered {str(raw)[:40]!r}")
        block = map_core_block(raw, self.chain.name)
        txs = list(block.txs)
        missing = unresolved(txs)
        if missing:
            txs = resolve_inputs(txs, await self._spent_outputs(missing, where))
            still = unresolved(txs)
            if still:
                raise SourceError(
                    f"{where}: {len(still)} spent outputs could not be read (first {still[0].txid}:{still[0].vout}); "
                    f"the node needs -txindex=1, or Bitcoin Core ≥ 23 (getblock verbosity 3)"
                )
        for tx in txs:
            self._remember(tx.txid, {o.n: o for o in tx.outputs})
        return UtxoBlock(
            block.chain, block.number, block.hash.lower(), block.parent_hash.lower(), block.timestamp, tuple(txs)
        )

    async def _spent_outputs(self, outpoints: Sequence[Outpoint], where: str) -> dict[Outpoint, TxOutput]:
        found: dict[Outpoint, TxOutput] = {}
        wanted: list[str] = []
        for point in outpoints:
            outputs = self._outputs.get(point.txid)
            if outputs is not None and point.vout in outputs:
                found[point] = outputs[point.vout]
            elif point.txid not in wanted:
                wanted.append(point.txid)
        if wanted:
            answers = await self.client.batch([("getrawtransaction", [txid, 1]) for txid in wanted], where=where)
            read = {
                txid: _outputs_of(answer, txid)
                for txid, answer in zip(wanted, answers, strict=True)
                if not isinstance(answer, RpcError)  # the caller reports what stays unresolved
            }
            for point in outpoints:
                if point.vout in read.get(point.txid, {}):
                    found[point] = read[point.txid][point.vout]
            for txid, outputs in read.items():
                self._remember(txid, outputs)
        return found

    def _remember(self, txid: str, outputs: dict[int, TxOutput]) -> None:
        self._outputs[txid] = outputs
        self._outputs.move_to_end(txid)
        while len(self._outputs) > self.recent_txs:
            self._outputs.popitem(last=False)


def _outputs_of(raw: Any, txid: str) -> dict[int, TxOutput]:
    if not isinstance(raw, dict) or not isinstance(raw.get("vout"), list):
        raise MalformedPayload(f"getrawtransaction {txid}: no outputs in the answer")
    return {o.n: o for o in (map_core_output(v, f"tx {txid} vout") for v in raw["vout"])}
