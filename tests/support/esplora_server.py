"""A local Esplora: serves what a regtest bitcoind holds in Esplora's JSON shapes (Blockstream's API.md), so the
Esplora client and the layered bitcoin source are tested against real chain data without the network.

Routes (GET): `/blocks/tip/height`, `/blocks/tip/hash`, `/block-height/:h`, `/block/:hash`,
`/block/:hash/txs[/:start]`, `/tx/:txid`, `/address/:a/txs`, `/address/:a/txs/chain[/:last_seen_txid]`,
`/address/:a/txs/mempool`.

Behaviours reproduced:
- amounts in satoshis; `scriptpubkey_type` in Esplora's names (p2pkh, p2sh, v0_p2wpkh, …, op_return), and
  `scriptpubkey_address` left out where the script has no address;
- every input carries `prevout` (the spent output in the `vout` shape); a coinbase input has `is_coinbase` true,
  `txid` of zeros, `vout` 4294967295 and `prevout` null; `fee` is inputs minus outputs (0 for a coinbase);
- `status` {confirmed, block_height, block_hash, block_time} ({confirmed: false} in the mempool); absent from
  `/block/:hash/txs`, as Esplora leaves it out there;
- `/address/:a/txs`: up to 50 mempool transactions, then the newest 25 confirmed; `…/txs/chain/:last_seen_txid`:
  the 25 confirmed transactions after that one, newest first (an unknown `last_seen_txid` gives `[]`);
  `…/txs/mempool`: up to 50, no paging;
- `/block/:hash/txs/:start`: 25 from `start`, which must be a multiple of 25 (400 otherwise), 404 past the end;
- `/blocks/tip/height` and `/block-height/:h` answer plain text; an unknown transaction, block or route 404
  with a plain-text reason; a malformed address 400.

Not reproduced: the order of several transactions of one address within one block (here: later position first;
electrs orders them by its own key), `/address/:a` statistics, scripthash routes, merkle proofs, Liquid fields,
`weight` beyond size x 4 (this node has no segwit). Faults for tests: `fail_next` (statuses answered before the
real one, e.g. [429, 503], with `Retry-After: 0` on 429) and `calls` (requests per route, to count API calls).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.bitcoind import BitcoinNode
from tracing.chain.esplora_mappers import CORE_TYPES

PAGE = 25
MEMPOOL_PAGE = 50
COINBASE_TXID = "0" * 64


def sats(value: Decimal) -> int:
    return int(Decimal(value) * 100_000_000)


def esplora_vout(vout: dict[str, Any]) -> dict[str, Any]:
    script = vout.get("scriptPubKey") or {}
    out: dict[str, Any] = {
        "scriptpubkey": script.get("hex", ""),
        "scriptpubkey_asm": script.get("asm", ""),
        "scriptpubkey_type": CORE_TYPES.get(str(script.get("type")), "unknown"),
        "value": sats(vout["value"]),
    }
    addresses = script.get("addresses") or ([script["address"]] if script.get("address") else [])
    if len(addresses) == 1:
        out["scriptpubkey_address"] = addresses[0]
    return out


class _Chain:
    """What the node holds, read once per tip: every confirmed transaction in Esplora's shape, and per address
    its transactions newest first."""

    def __init__(self, node: BitcoinNode) -> None:
        self.node = node
        self.tip = ""
        self.blocks: dict[str, dict[str, Any]] = {}
        self.block_txids: dict[str, list[str]] = {}
        self.txs: dict[str, dict[str, Any]] = {}
        self.outputs: dict[tuple[str, int], dict[str, Any]] = {}
        self.history: dict[str, list[tuple[int, int, str]]] = {}

    def refresh(self) -> None:
        tip = str(self.node.rpc("getbestblockhash"))
        if tip == self.tip:
            return
        self.__init__(self.node)  # type: ignore[misc]  # a reorg or new blocks: read again from genesis
        height = int(self.node.rpc("getblockcount"))
        for h in range(height + 1):
            block = self.node.rpc("getblock", self.node.rpc("getblockhash", h), 2)
            self.blocks[block["hash"]] = block
            self.block_txids[block["hash"]] = [t["txid"] for t in block["tx"]]
            status = {"confirmed": True, "block_height": h, "block_hash": block["hash"], "block_time": block["time"]}
            for position, tx in enumerate(block["tx"]):
                shaped = self.shape(tx, status)
                self.txs[tx["txid"]] = shaped
                for address in _addresses(shaped):
                    self.history.setdefault(address, []).append((h, position, tx["txid"]))
        for entries in self.history.values():
            entries.sort(reverse=True)
        self.tip = tip

    def shape(self, tx: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        vout = [esplora_vout(o) for o in tx["vout"]]
        for n, o in enumerate(vout):
            self.outputs[(tx["txid"], n)] = o
        vin = []
        for i in tx["vin"]:
            if "coinbase" in i:
                vin.append(
                    {
                        "txid": COINBASE_TXID, "vout": 0xFFFFFFFF, "prevout": None, "scriptsig": i["coinbase"],
                        "scriptsig_asm": "", "is_coinbase": True, "sequence": i["sequence"],
                    }
                )  # fmt: skip
                continue
            prevout = self.outputs.get((i["txid"], i["vout"]))
            if prevout is None:  # spends a mempool transaction
                prevout = esplora_vout(self.node.rpc("getrawtransaction", i["txid"], 1)["vout"][i["vout"]])
            vin.append(
                {
                    "txid": i["txid"], "vout": i["vout"], "prevout": prevout,
                    "scriptsig": i.get("scriptSig", {}).get("hex", ""),
                    "scriptsig_asm": i.get("scriptSig", {}).get("asm", ""),
                    "is_coinbase": False, "sequence": i["sequence"],
                }
            )  # fmt: skip
        coinbase = any(i["is_coinbase"] for i in vin)
        fee = 0 if coinbase else sum(i["prevout"]["value"] for i in vin) - sum(o["value"] for o in vout)
        return {
            "txid": tx["txid"], "version": tx["version"], "locktime": tx["locktime"], "vin": vin, "vout": vout,
            "size": tx["size"], "weight": tx["size"] * 4, "fee": fee, "status": status,
        }  # fmt: skip

    def mempool(self) -> list[dict[str, Any]]:
        txids = sorted(self.node.rpc("getrawmempool"))
        return [self.shape(self.node.rpc("getrawtransaction", t, 1), {"confirmed": False}) for t in txids]


def _addresses(tx: dict[str, Any]) -> set[str]:
    found = {o["scriptpubkey_address"] for o in tx["vout"] if "scriptpubkey_address" in o}
    found |= {
        i["prevout"]["scriptpubkey_address"]
        for i in tx["vin"]
        if i["prevout"] and "scriptpubkey_address" in i["prevout"]
    }
    return found


_ADDRESS = re.compile(r"^[A-Za-z0-9]{25,90}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class EsploraServer:
    """`with EsploraServer(node) as esplora: esplora.url` — a local Esplora over the node's chain."""

    def __init__(self, node: BitcoinNode) -> None:
        self.node = node
        self.chain = _Chain(node)
        self.calls: Counter[str] = Counter()
        self.fail_next: list[int] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> EsploraServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body, headers = owner.answer(self.path)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                kind = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> EsploraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, path: str) -> tuple[int, Any, dict[str, str]]:
        with self._lock:  # one node client, one reader at a time
            if self.fail_next:
                status = self.fail_next.pop(0)
                self.calls["fault"] += 1
                return status, f"injected {status}", ({"Retry-After": "0"} if status == 429 else {})
            try:
                return self._route(path.split("?", 1)[0].rstrip("/"))
            except _NotFound as missing:
                return 404, str(missing), {}

    def _route(self, path: str) -> tuple[int, Any, dict[str, str]]:
        parts = path.strip("/").split("/")
        chain = self.chain
        chain.refresh()
        match parts:
            case ["blocks", "tip", "height"]:
                self.calls["tip"] += 1
                return 200, str(self.node.rpc("getblockcount")), {}
            case ["blocks", "tip", "hash"]:
                self.calls["tip"] += 1
                return 200, chain.tip, {}
            case ["block-height", height]:
                self.calls["block-height"] += 1
                try:
                    return 200, str(self.node.rpc("getblockhash", int(height))), {}
                except Exception:
                    raise _NotFound("Block not found") from None
            case ["block", block_hash]:
                self.calls["block"] += 1
                block = chain.blocks.get(block_hash) or _missing("Block not found")
                return 200, _block(block), {}
            case ["block", block_hash, "txs", *rest]:
                self.calls["block-txs"] += 1
                txids = chain.block_txids.get(block_hash) or _missing("Block not found")
                start = int(rest[0]) if rest and rest[0].isdigit() else 0
                if start % PAGE:
                    return 400, f"start index must be a multipication of {PAGE}", {}
                if start >= len(txids):
                    raise _NotFound("start index out of range")
                page = [{k: v for k, v in chain.txs[t].items() if k != "status"} for t in txids[start : start + PAGE]]
                return 200, page, {}
            case ["tx", txid]:
                self.calls["tx"] += 1
                if txid in chain.txs:
                    return 200, chain.txs[txid], {}
                found = [t for t in chain.mempool() if t["txid"] == txid] if _HEX64.match(txid) else []
                return (200, found[0], {}) if found else (404, "Transaction not found", {})
            case ["address", address, "txs", *rest]:
                if not _ADDRESS.match(address):
                    return 400, "Invalid Bitcoin address", {}
                confirmed = [chain.txs[t] for _, _, t in chain.history.get(address, [])]
                if not rest:
                    self.calls["address-txs"] += 1
                    mine = [t for t in chain.mempool() if address in _addresses(t)][:MEMPOOL_PAGE]
                    return 200, mine + confirmed[:PAGE], {}
                if rest[0] == "mempool":
                    self.calls["address-mempool"] += 1
                    return 200, [t for t in chain.mempool() if address in _addresses(t)][:MEMPOOL_PAGE], {}
                if rest[0] == "chain":
                    self.calls["address-chain"] += 1
                    if len(rest) == 1:
                        return 200, confirmed[:PAGE], {}
                    ids = [t["txid"] for t in confirmed]
                    if rest[1] not in ids:
                        return 200, [], {}
                    after = ids.index(rest[1]) + 1
                    return 200, confirmed[after : after + PAGE], {}
        self.calls["unknown"] += 1
        return 404, "Endpoint not found", {}


class _NotFound(Exception):
    pass


def _missing(reason: str) -> Any:
    raise _NotFound(reason)


def _block(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": block["hash"], "height": block["height"], "version": block["version"], "timestamp": block["time"],
        "tx_count": len(block["tx"]), "size": block["size"], "weight": block["size"] * 4,
        "merkle_root": block["merkleroot"], "previousblockhash": block.get("previousblockhash"),
        "mediantime": block["mediantime"], "nonce": block["nonce"], "bits": int(block["bits"], 16),
        "difficulty": float(block["difficulty"]),
    }  # fmt: skip
