"""Leadership: one holder at a time; a holder killed with SIGKILL frees the role for another process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from storage.db import Database
from storage.locks import LeaderLock

HOLDER = """
import sys, time
from storage.db import open_database
from storage.locks import LeaderLock
db = open_database(sys.argv[1])
lock = LeaderLock(db, "follow:eth")
while not lock.try_acquire():
    time.sleep(0.05)
print("leader", flush=True)
time.sleep(600)
"""


def test_only_one_holder_at_a_time(db: Database) -> None:
    first, second = LeaderLock(db, "follow:eth"), LeaderLock(db, "follow:eth")
    other_chain = LeaderLock(db, "follow:base")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert other_chain.try_acquire()
        assert first.still_held()
        first.release()
        assert second.try_acquire()
    finally:
        for lock in (first, second, other_chain):
            lock.release()


def test_a_killed_leader_is_replaced_within_seconds(db: Database, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    leader = subprocess.Popen([sys.executable, "-c", HOLDER, db.url], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert leader.stdout is not None and leader.stdout.readline().strip() == "leader"
        successor = LeaderLock(db, "follow:eth")
        assert not successor.try_acquire()
        os.kill(leader.pid, signal.SIGKILL)
        leader.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not successor.try_acquire():
            assert time.monotonic() < deadline, "leadership not taken over within 10 s"
            time.sleep(0.05)
        successor.release()
    finally:
        if leader.poll() is None:
            leader.kill()
