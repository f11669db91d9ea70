"""Watched bitcoin addresses in a block: what each transaction does to each watched address it touches.

A bitcoin transaction has no one sender and one recipient: it spends outputs (each locked to an address) and
creates outputs. For a watched address the movement is its *net* value in the transaction: what the outputs pay
it minus what its spent outputs held. More in than out is "received" (from the addresses that paid in, the
largest first), more out than in is "sent" (to the other addresses paid, the largest first; the fee is part of
what the address lost), and a transaction that pays only the address (a consolidation: the fee aside) or pays it
back exactly what it spent moved coins to itself. Each becomes one `Match` with a `Transfer` (kind `utxo`) of that
net value (position `net`, so one alert per transaction per watch), and the watcher's rules, alerts, confirmations
and reorgs take it from there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tracing.chain import Direction, Transfer, TransferKind, UtxoBlock, UtxoTx
from tracing.monitor.watch import COINBASE, NO_ADDRESS, Match, WatchMatcher

NET_POSITION = "net"
BTC_DECIMALS = 8


def utxo_matches(matcher: WatchMatcher, block: UtxoBlock, symbol: str = "BTC") -> list[Match]:
    """One match per (transaction, watched address it touches) of `block`, in block order."""
    found: list[Match] = []
    for tx in block.txs:
        for address in _touched(tx):
            if (block.chain, address) in matcher:
                match = net_match(tx, address, block, symbol)
                if match is not None:
                    found.append(match)
    return found


def net_match(tx: UtxoTx, address: str, block: UtxoBlock, symbol: str = "BTC") -> Match | None:
    """What `tx` did to `address` as a match (None when it did not touch it)."""
    received = sum(o.value for o in tx.outputs if o.address == address)
    spent = sum(i.value or 0 for i in tx.inputs if i.address == address)
    if not received and not spent:
        return None
    net = received - spent
    if net > 0:
        direction = Direction.IN
        others = _ranked((i.address or NO_ADDRESS, i.value or 0) for i in tx.inputs if i.address != address)
        if tx.coinbase:
            others = [COINBASE]
    elif net < 0 and any(o.address != address for o in tx.outputs):
        direction = Direction.OUT
        others = _ranked((o.address or NO_ADDRESS, o.value) for o in tx.outputs if o.address != address)
    else:
        direction = Direction.SELF
        others = []
    counterparty = others[0] if others else address
    value = abs(net) if direction is not Direction.SELF else received
    sender, recipient = (counterparty, address) if direction is Direction.IN else (address, counterparty)
    transfer = Transfer(
        chain=block.chain,
        block_number=block.number,
        block_hash=block.hash,
        timestamp=block.timestamp,
        tx_hash=tx.txid,
        kind=TransferKind.UTXO,
        position=NET_POSITION,
        from_addr=sender,
        to_addr=recipient,
        value=value,
        decimals=BTC_DECIMALS,
        symbol=symbol,
    )
    return Match(transfer, address, direction, counterparties=tuple(others))


def _touched(tx: UtxoTx) -> list[str]:
    """The addresses a transaction spends from or pays to, each once, inputs first."""
    return list(
        dict.fromkeys([*(i.address for i in tx.inputs if i.address), *(o.address for o in tx.outputs if o.address)])
    )


def _ranked(amounts: Iterable[tuple[str, int]]) -> list[str]:
    """Counterparties by the value they moved, largest first (ties in transaction order)."""
    total: Counter[str] = Counter()
    for who, value in amounts:
        total[who] += value
    return [who for who, _ in sorted(total.items(), key=lambda item: -item[1])]
