"""The `chainsleuth` command line run in the test process: what a subprocess would do, in a few milliseconds.

`run_cli` takes the environment a subprocess would get and answers with a `subprocess.CompletedProcess`
(returncode, stdout, stderr), so a test reads the same either way. In between it puts the process-wide state a
command touches back as it was: the environment, the cached settings, the root logger.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from storage.settings import get_settings

BIN = Path(sys.executable).parent / "chainsleuth"  # the installed entry point, for the true subprocess tests
PROG = "chainsleuth"


def run_cli(args: list[str], env: Mapping[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `chainsleuth ARGS` in this process with exactly `env` as its environment."""
    overrides: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    overrides.update(env)
    with _process_state_restored():
        result = CliRunner().invoke(app, args, input=stdin, env=overrides, prog_name=PROG)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit) and result.exc_info:
        stderr += "".join(traceback.format_exception(*result.exc_info))  # what the interpreter would print
    return subprocess.CompletedProcess([PROG, *args], result.exit_code, result.stdout, stderr)


def run_cli_process(
    args: list[str], env: Mapping[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed `chainsleuth` as a real subprocess (the smoke tests of the entry point itself)."""
    return subprocess.run(
        [str(BIN), *args], env=dict(env), input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


@contextmanager
def _process_state_restored() -> Iterator[None]:
    # A command reads its settings once (cached) and installs its own log handler on the root logger; in a
    # process of its own both die with it, here they must not leak into the next command or test.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {logger.name: logger.level for logger in _loggers()}
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
        root.handlers[:] = handlers
        root.setLevel(level)
        for logger in _loggers():
            logger.setLevel(levels.get(logger.name, logging.NOTSET))


def _loggers() -> list[logging.Logger]:
    return [obj for obj in list(logging.root.manager.loggerDict.values()) if isinstance(obj, logging.Logger)]
