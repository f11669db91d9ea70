"""TRON's blocks through its Ethereum-style JSON-RPC (`/jsonrpc` of a java-tron full node or TronGrid).

TRON serves EVM-shaped answers with 20-byte addresses (the `41` prefix dropped): `eth_getBlockByNumber` with full
transactions gives each transaction's `from`, `to` and `value` in sun — a TRX transfer (TransferContract) is a
transaction with a recipient and a value, a contract call (TriggerSmartContract) one to the contract with its
call value; `eth_getBlockReceipts` gives each transaction's `status` and logs, and a TRC-20 `Transfer` is the same
event as an ERC-20 one. So `TronRpcSource` reads blocks with the EVM source and mappers and turns every address into
its `T…` form (`tracing.chain.address.tron_from_hex`); token contracts are asked for `symbol()`/`decimals()` with
their 20 bytes.

What TRON's `/jsonrpc` does not give, and so what a TRON index never holds (said in every report on TRON, see
`TRON_GAPS`): internal TRX transfers (there is no `trace_*`/`debug_*` method), TRC-10 token transfers (their
`value` is 0 in the transaction object), and stake/vote/resource operations. It has no `pending`/`safe` tags
(only `latest`, `earliest`, `finalized`), reads state only at `latest`, and answers `eth_getLogs` for at most
5,000 blocks and 10,000 results a call (`RpcSource.logs` splits ranges).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from tracing.chain.address import Family, normalise_address, tron_from_hex, tron_to_hex
from tracing.chain.config import ChainConfig
from tracing.chain.mappers import BlockTransfers, InternalSource, MalformedPayload, TokenMeta, Traces
from tracing.chain.rpc import RpcSource
from tracing.chain.transfer import Transfer
from tracing.errors import SourceError

NO_INTERNAL = (
    "internal TRX transfers (TRX paid out by contracts) are not covered: TRON's /jsonrpc has no trace methods and "
    "TronGrid's account history gives none"
)
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

    def __init__(self, chain: ChainConfig, **kwargs: Any) -> None:
        if chain.family is not Family.TRON:
            raise ValueError(f"chain {chain.name} is not a TRON chain")
        super().__init__(chain, trace_methods=(), **kwargs)

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
