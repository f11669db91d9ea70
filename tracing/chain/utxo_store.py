"""Bitcoin transactions in the store: `utxo_tx`, `utxo_input`, `utxo_output`, idempotent writes, and the reads a
trace needs: a transaction, the transactions touching an address, the outputs an input spent, and the transaction
that spent an output (`spender`, kept on the output row as `spent_by_txid`/`spent_by_input`, set whichever of the
two transactions is stored first).

Only mined transactions are stored (no mempool). A reorg forgets everything from a height up (`delete_from_block`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from storage import Database, UtxoInputRow, UtxoOutputRow, UtxoTxRow
from tracing.chain.utxo import Outpoint, TxInput, TxOutput, UtxoTx

CHUNK = 500
"""Rows per IN (…) list."""


class UtxoStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, txs: Iterable[UtxoTx], *, source: str = "rpc") -> int:
        """Store mined transactions with their inputs and outputs, skipping those already stored; link outputs and
        the inputs that spend them both ways round. Returns the transactions added."""
        txs = list(txs)
        if not txs:
            return 0
        for tx in txs:
            if tx.block_height is None or tx.block_hash is None or tx.timestamp is None:
                raise ValueError(f"transaction {tx.txid} is not mined; the store holds mined transactions only")
        tx_rows = [_tx_values(tx, source) for tx in txs]
        input_rows = [_input_values(tx, k, i) for tx in txs for k, i in enumerate(tx.inputs)]
        output_rows = [_output_values(tx, o) for tx in txs for o in tx.outputs]
        chain = txs[0].chain
        if any(tx.chain != chain for tx in txs):
            raise ValueError("transactions of several chains in one add; add each chain's separately")
        wanted = sorted({tx.txid for tx in txs})
        with self.db.session() as session:
            stored: set[str] = set()
            for start in range(0, len(wanted), CHUNK):
                query = select(UtxoTxRow.txid).where(
                    col(UtxoTxRow.chain) == chain, col(UtxoTxRow.txid).in_(wanted[start : start + CHUNK])
                )
                stored.update(str(t) for t in session.scalars(query))
            self._insert(session, UtxoTxRow, tx_rows)
            self._insert(session, UtxoInputRow, input_rows)
            self._insert(session, UtxoOutputRow, output_rows)
            self._link(session, txs)
        return len(set(wanted) - stored)

    def _insert(self, session: Any, model: Any, rows: Sequence[dict[str, object]]) -> None:
        if not rows:
            return
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        for start in range(0, len(rows), CHUNK):
            session.execute(dialect.insert(model).on_conflict_do_nothing(), rows[start : start + CHUNK])

    def _link(self, session: Any, txs: Sequence[UtxoTx]) -> None:
        """Set `spent_by` on the outputs the new inputs spend, and on the new outputs already spent by stored
        inputs."""
        chain = txs[0].chain
        links = [
            {"c": tx.chain, "t": i.spends.txid, "v": i.spends.vout, "by": tx.txid, "k": k}
            for tx in txs
            for k, i in enumerate(tx.inputs)
            if i.spends is not None
        ]
        new = sorted({tx.txid for tx in txs})
        for start in range(0, len(new), CHUNK):
            query = select(UtxoInputRow).where(
                col(UtxoInputRow.chain) == chain, col(UtxoInputRow.spent_txid).in_(new[start : start + CHUNK])
            )
            for row in session.scalars(query):
                links.append({"c": row.chain, "t": row.spent_txid, "v": row.spent_vout, "by": row.txid, "k": row.idx})
        if not links:
            return
        statement = (
            update(UtxoOutputRow)
            .where(
                col(UtxoOutputRow.chain) == bindparam("c"),
                col(UtxoOutputRow.txid) == bindparam("t"),
                col(UtxoOutputRow.n) == bindparam("v"),
            )
            .values(spent_by_txid=bindparam("by"), spent_by_input=bindparam("k"))
        )
        session.connection().execute(statement, links)

    def get(self, chain: str, txid: str) -> UtxoTx | None:
        found = self.transactions(chain, [txid])
        return found[0] if found else None

    def transactions(self, chain: str, txids: Iterable[str]) -> list[UtxoTx]:
        """The stored transactions among `txids`, in block order."""
        wanted = sorted({t.lower() for t in txids})
        rows: list[UtxoTxRow] = []
        inputs: dict[str, list[UtxoInputRow]] = {}
        outputs: dict[str, list[UtxoOutputRow]] = {}
        with self.db.session() as session:
            for start in range(0, len(wanted), CHUNK):
                part = wanted[start : start + CHUNK]
                rows.extend(
                    session.scalars(
                        select(UtxoTxRow).where(col(UtxoTxRow.chain) == chain, col(UtxoTxRow.txid).in_(part))
                    )
                )
                for i in session.scalars(
                    select(UtxoInputRow).where(col(UtxoInputRow.chain) == chain, col(UtxoInputRow.txid).in_(part))
                ):
                    inputs.setdefault(i.txid, []).append(i)
                for o in session.scalars(
                    select(UtxoOutputRow).where(col(UtxoOutputRow.chain) == chain, col(UtxoOutputRow.txid).in_(part))
                ):
                    outputs.setdefault(o.txid, []).append(o)
        rows.sort(key=lambda r: (r.block_height, r.position))
        return [_from_rows(r, inputs.get(r.txid, []), outputs.get(r.txid, [])) for r in rows]

    def txids_of(self, chain: str, address: str) -> list[str]:
        """The stored transactions that paid `address` or spent from it, in block order."""
        paid = select(UtxoOutputRow.txid).where(
            col(UtxoOutputRow.chain) == chain, col(UtxoOutputRow.address) == address
        )
        spent = select(UtxoOutputRow.spent_by_txid).where(
            col(UtxoOutputRow.chain) == chain,
            col(UtxoOutputRow.address) == address,
            col(UtxoOutputRow.spent_by_txid).is_not(None),
        )
        # Inputs whose spent output is not stored (an index that starts mid-chain) carry the address themselves.
        spent_here = select(UtxoInputRow.txid).where(
            col(UtxoInputRow.chain) == chain, col(UtxoInputRow.address) == address
        )
        with self.db.session() as session:
            ids = {str(t) for q in (paid, spent, spent_here) for t in session.scalars(q)}
            query = (
                select(UtxoTxRow.txid)
                .where(col(UtxoTxRow.chain) == chain, col(UtxoTxRow.txid).in_(sorted(ids)))
                .order_by(col(UtxoTxRow.block_height), col(UtxoTxRow.position))
            )
            return [str(t) for t in session.scalars(query)] if ids else []

    def of_address(self, chain: str, address: str) -> list[UtxoTx]:
        """The stored transactions touching `address`, in block order."""
        return self.transactions(chain, self.txids_of(chain, address))

    def outputs(self, chain: str, outpoints: Iterable[Outpoint]) -> dict[Outpoint, TxOutput]:
        """The stored outputs among `outpoints` (to fill inputs a block left without values)."""
        wanted = list(dict.fromkeys(outpoints))
        by_tx: dict[str, set[int]] = {}
        for o in wanted:
            by_tx.setdefault(o.txid, set()).add(o.vout)
        found: dict[Outpoint, TxOutput] = {}
        txids = sorted(by_tx)
        with self.db.session() as session:
            for start in range(0, len(txids), CHUNK):
                query = select(UtxoOutputRow).where(
                    col(UtxoOutputRow.chain) == chain, col(UtxoOutputRow.txid).in_(txids[start : start + CHUNK])
                )
                for row in session.scalars(query):
                    if row.n in by_tx[row.txid]:
                        found[Outpoint(row.txid, row.n)] = _output(row)
        return found

    def spender(self, chain: str, outpoint: Outpoint) -> tuple[str, int] | None:
        """(txid, input index) of the stored transaction that spent `outpoint`, or None (unspent, or its spender
        not stored)."""
        with self.db.session() as session:
            row = session.scalars(
                select(UtxoOutputRow).where(
                    col(UtxoOutputRow.chain) == chain,
                    col(UtxoOutputRow.txid) == outpoint.txid,
                    col(UtxoOutputRow.n) == outpoint.vout,
                )
            ).first()
            if row is not None and row.spent_by_txid is not None and row.spent_by_input is not None:
                return row.spent_by_txid, int(row.spent_by_input)
            found = session.scalars(
                select(UtxoInputRow).where(
                    col(UtxoInputRow.chain) == chain,
                    col(UtxoInputRow.spent_txid) == outpoint.txid,
                    col(UtxoInputRow.spent_vout) == outpoint.vout,
                )
            ).first()
            return (found.txid, int(found.idx)) if found is not None else None

    def delete_from_block(self, chain: str, height: int) -> int:
        """Forget the transactions at and above `height` (after a reorg), and the spends they made. Returns the
        transactions removed."""
        with self.db.session() as session:
            doomed = select(UtxoTxRow.txid).where(col(UtxoTxRow.chain) == chain, col(UtxoTxRow.block_height) >= height)
            session.execute(
                update(UtxoOutputRow)
                .where(col(UtxoOutputRow.chain) == chain, col(UtxoOutputRow.spent_by_txid).in_(doomed))
                .values(spent_by_txid=None, spent_by_input=None)
            )
            session.execute(
                delete(UtxoInputRow).where(col(UtxoInputRow.chain) == chain, col(UtxoInputRow.txid).in_(doomed))
            )
            session.execute(
                delete(UtxoOutputRow).where(col(UtxoOutputRow.chain) == chain, col(UtxoOutputRow.txid).in_(doomed))
            )
            result = session.execute(
                delete(UtxoTxRow).where(col(UtxoTxRow.chain) == chain, col(UtxoTxRow.block_height) >= height)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def count(self, chain: str | None = None) -> int:
        with self.db.session() as session:
            return _count(session, UtxoTxRow, chain)


def _count(session: Any, model: Any, chain: str | None = None) -> int:
    query = select(func.count()).select_from(model)
    if chain is not None:
        query = query.where(model.chain == chain)
    return int(session.execute(query).scalar_one())


def _tx_values(tx: UtxoTx, source: str) -> dict[str, object]:
    return {
        "chain": tx.chain,
        "txid": tx.txid,
        "block_height": tx.block_height,
        "block_hash": tx.block_hash,
        "timestamp": tx.timestamp,
        "position": tx.position,
        "version": tx.version,
        "locktime": tx.locktime,
        "input_value": tx.input_value,
        "output_value": tx.output_value,
        "fee": tx.fee,
        "coinbase": tx.coinbase,
        "source": source,
    }


def _input_values(tx: UtxoTx, k: int, i: TxInput) -> dict[str, object]:
    return {
        "chain": tx.chain,
        "txid": tx.txid,
        "idx": k,
        "spent_txid": i.spends.txid if i.spends else None,
        "spent_vout": i.spends.vout if i.spends else None,
        "address": i.address,
        "value": i.value,
        "script_type": i.script_type,
        "sequence": i.sequence,
    }


def _output_values(tx: UtxoTx, o: TxOutput) -> dict[str, object]:
    return {
        "chain": tx.chain,
        "txid": tx.txid,
        "n": o.n,
        "value": o.value,
        "address": o.address,
        "script_type": o.script_type,
        "spent_by_txid": None,
        "spent_by_input": None,
    }


def _output(row: UtxoOutputRow) -> TxOutput:
    return TxOutput(n=int(row.n), value=int(row.value), address=row.address, script_type=row.script_type)


def _from_rows(row: UtxoTxRow, inputs: Sequence[UtxoInputRow], outputs: Sequence[UtxoOutputRow]) -> UtxoTx:
    return UtxoTx(
        chain=row.chain,
        txid=row.txid,
        inputs=tuple(
            TxInput(
                spends=Outpoint(i.spent_txid, int(i.spent_vout))
                if i.spent_txid is not None and i.spent_vout is not None
                else None,
                address=i.address,
                value=None if i.value is None else int(i.value),
                sequence=int(i.sequence),
                script_type=i.script_type,
            )
            for i in sorted(inputs, key=lambda i: i.idx)
        ),
        outputs=tuple(_output(o) for o in sorted(outputs, key=lambda o: o.n)),
        block_height=int(row.block_height),
        block_hash=row.block_hash,
        timestamp=int(row.timestamp),
        position=int(row.position),
        locktime=int(row.locktime),
        version=int(row.version),
    )
