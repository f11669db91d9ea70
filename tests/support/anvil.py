"""Run a real local Ethereum node (Foundry's anvil, installed by `npm install`) for the tests.

`AnvilNode` starts anvil on a free 127.0.0.1 port and stops it again; `build_scenario` (re-exported from
tests.support.scenario) fills it with a small, known set of transfers.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx

from tests.support.rpc import Rpc, RpcError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ANVIL = REPO_ROOT / "node_modules" / ".bin" / "anvil"
ANVIL_MISSING = "anvil not installed: run `make setup` (npm install)"

# States anvil keeps in memory under --prune-history. A bare `--prune-history` keeps none, and then
# debug_traceTransaction / debug_traceBlockByNumber and eth_getBalance at past blocks fail ("Resource not found",
# "BlockOutOfRangeError"). With a number, nothing is written to disk either (no GBs under ~/.foundry).
DEFAULT_KEPT_STATES = 10_000

_LIVE: set[AnvilNode] = set()


def anvil_bin() -> Path | None:
    """The anvil executable: $ANVIL_BIN if set, else node_modules/.bin/anvil; None when not executable."""
    configured = os.environ.get("ANVIL_BIN")
    if configured:
        path = Path(configured)
        if not path.is_absolute() and os.sep not in configured:
            found = shutil.which(configured)
            path = Path(found) if found else REPO_ROOT / configured
        elif not path.is_absolute():
            path = REPO_ROOT / path
    else:
        path = DEFAULT_ANVIL
    return path if path.is_file() and os.access(path, os.X_OK) else None


def anvil_available() -> bool:
    """True when the anvil binary is installed."""
    return anvil_bin() is not None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AnvilError(RuntimeError):
    """anvil could not be started."""


class AnvilNode:
    """One anvil process on 127.0.0.1. `start()`/`stop()` or use as a context manager.

    `block_time` enables interval mining (seconds), `no_mining` disables mining (mine with `rpc.mine()`);
    by default every transaction is mined at once (automine). `kept_states` is the --prune-history value.
    """

    def __init__(
        self,
        *,
        chain_id: int = 31337,
        block_time: float | None = None,
        no_mining: bool = False,
        port: int | None = None,
        kept_states: int = DEFAULT_KEPT_STATES,
        startup_timeout: float = 20.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if block_time is not None and no_mining:
            raise ValueError("block_time and no_mining are mutually exclusive")
        self.chain_id = chain_id
        self.block_time = block_time
        self.no_mining = no_mining
        self.kept_states = kept_states
        self.startup_timeout = startup_timeout
        self.extra_args = list(extra_args)
        self._requested_port = port
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._rpc: Rpc | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise AnvilError("anvil is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def rpc(self) -> Rpc:
        """A JSON-RPC client bound to this node (created on first use, closed by `stop()`)."""
        if self._rpc is None:
            self._rpc = Rpc(self.url)
        return self._rpc

    def command(self, port: int) -> list[str]:
        binary = anvil_bin()
        if binary is None:
            raise AnvilError(ANVIL_MISSING)
        cmd = [
            str(binary),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--chain-id", str(self.chain_id),
            "--prune-history", str(self.kept_states),
            "--silent",
        ]  # fmt: skip
        if self.block_time is not None:
            cmd += ["--block-time", f"{self.block_time:g}"]
        if self.no_mining:
            cmd.append("--no-mining")
        return cmd + self.extra_args

    def start(self) -> AnvilNode:
        """Start anvil and wait until it answers eth_chainId; retries on another port if the port was taken."""
        if self.running:
            return self
        attempts = 1 if self._requested_port else 3
        error: AnvilError | None = None
        for _ in range(attempts):
            try:
                self._start_once(self._requested_port or free_port())
                return self
            except AnvilError as exc:
                error = exc
                self.stop()
        assert error is not None
        raise error

    def _start_once(self, port: int) -> None:
        self._log = tempfile.TemporaryFile(prefix="anvil-")  # noqa: SIM115 - closed in stop()
        self.port = port
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            self.command(port), stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        _LIVE.add(self)
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc.poll() is not None:
                    raise AnvilError(f"anvil exited with code {self._proc.returncode}: {self.log_text()}")
                try:
                    body = client.post(
                        self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
                    ).json()
                    if int(body["result"], 16) != self.chain_id:
                        raise AnvilError(f"port {port} answers with another chain: {body}")
                    if self._proc.poll() is None:  # not another process that holds the port
                        return
                    continue
                except (httpx.HTTPError, ValueError, KeyError):
                    pass
                if time.monotonic() >= deadline:
                    raise AnvilError(f"anvil did not answer on {self.url} in {self.startup_timeout}s")
                time.sleep(0.05)

    def log_text(self) -> str:
        """What anvil printed (little, given --silent: mostly start-up errors)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate anvil (SIGTERM), killing it when it does not exit within `timeout`. Idempotent."""
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        _LIVE.discard(self)

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<AnvilNode {state} chain_id={self.chain_id}>"

    # -- conveniences ---------------------------------------------------------------------------------------

    def accounts(self) -> list[str]:
        """anvil's pre-funded, unlocked dev accounts (lower-case)."""
        return self.rpc.accounts()

    def wait_for_block(self, number: int, timeout: float = 10.0) -> int:
        """Wait until the head is at least `number` (useful with `block_time`); return the head."""
        deadline = time.monotonic() + timeout
        while True:
            head = self.rpc.block_number()
            if head >= number:
                return head
            if time.monotonic() >= deadline:
                raise TimeoutError(f"head still {head} < {number} after {timeout}s")
            time.sleep(0.05)


@atexit.register
def _stop_leftovers() -> None:
    for node in list(_LIVE):
        node.stop()


# Re-exported so callers can `from tests.support.anvil import build_scenario, Scenario`.
from tests.support.scenario import ExpectedTransfer, Scenario, build_scenario  # noqa: E402

__all__ = [
    "ANVIL_MISSING",
    "AnvilError",
    "AnvilNode",
    "ExpectedTransfer",
    "Rpc",
    "RpcError",
    "Scenario",
    "anvil_available",
    "anvil_bin",
    "build_scenario",
    "free_port",
]
