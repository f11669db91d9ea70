"""An in-memory chain for watcher tests: mine blocks of transfers, fork it to replace blocks (a reorg).

`FakeChain` answers the watcher's `BlockSource` calls (`head`, `fetch_block`) like `tracing.chain.rpc.RpcSource`.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

from tracing.chain.mappers import BlockCoverage, BlockTransfers, InternalSource
from tracing.chain.rpc import BlockNotFound
from tracing.chain.transfer import Transfer, TransferKind

GENESIS_PARENT = "0x" + "00" * 32


def move(
    frm: str,
    to: str,
    value: int = 10**18,
    *,
    tx: int | str = 1,
    kind: TransferKind = TransferKind.NATIVE,
    position: str = "tx",
    token: str | None = None,
    decimals: int | None = None,
    symbol: str | None = None,
) -> Transfer:
    """A transfer template; `FakeChain.mine` fills in the chain and block fields."""
    tx_hash = tx if isinstance(tx, str) else "0x" + f"{tx:064x}"
    return Transfer(
        chain="",
        block_number=0,
        block_hash="",
        timestamp=0,
        tx_hash=tx_hash,
        kind=kind,
        position=position,
        from_addr=frm,
        to_addr=to,
        value=value,
        token=token,
        decimals=decimals,
        symbol=symbol,
    )


class FakeChain:
    def __init__(self, chain: str = "eth") -> None:
        self.chain = chain
        self.blocks: list[BlockTransfers] = []
        self._salt = 0
        self.fetches = 0
        self._mine_block(())

    def _mine_block(self, moves: tuple[Transfer, ...]) -> BlockTransfers:
        number = len(self.blocks)
        parent = self.blocks[-1].hash if self.blocks else GENESIS_PARENT
        block_hash = "0x" + hashlib.sha256(f"{self._salt}:{number}:{parent}".encode()).hexdigest()
        timestamp = 1_700_000_000 + 12 * number
        transfers = tuple(
            replace(t, chain=self.chain, block_number=number, block_hash=block_hash, timestamp=timestamp) for t in moves
        )
        block = BlockTransfers(
            chain=self.chain,
            number=number,
            hash=block_hash,
            parent_hash=parent,
            timestamp=timestamp,
            tx_count=len({t.tx_hash for t in transfers}),
            transfers=transfers,
            coverage=BlockCoverage(InternalSource.CALL_TRACER),
        )
        self.blocks.append(block)
        return block

    def mine(self, *moves: Transfer) -> BlockTransfers:
        return self._mine_block(moves)

    def mine_empty(self, count: int) -> None:
        for _ in range(count):
            self._mine_block(())

    def fork(self, keep: int) -> None:
        """Drop every block after `keep`: what is mined next replaces them (with different hashes)."""
        del self.blocks[keep + 1 :]
        self._salt += 1

    @property
    def head_number(self) -> int:
        return self.blocks[-1].number

    async def head(self) -> int:
        return self.head_number

    async def fetch_block(self, number: int, *, token_meta: bool = True) -> BlockTransfers:
        self.fetches += 1
        if not 0 <= number < len(self.blocks):
            raise BlockNotFound(f"block {number} does not exist on {self.chain} (yet)")
        return self.blocks[number]
