"""The console front end: a REPL over the same command layer the chat platforms use; alerts are printed, numbered,
and an edit is printed again as an update (a terminal cannot change what it printed)."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from bot.backends.base import PostHistory, PostMarker
from bot.core import Bot
from bot.messages import Identity, IncomingMessage, Reply
from bot.render.text import render_text

GREETING = """chainsleuth — AML investigation console. Type /help for commands, /quit to leave.
Try:  /risk 0x098B716B8Aaf21512996dC57EB0615e2383E2f96   (the Ronin bridge exploiter, Lazarus Group)
      /trace 0x098B716B8Aaf21512996dC57EB0615e2383E2f96 --hops 2   (where its ETH went; demo data)"""


class ConsoleBackend:
    platform = "console"
    history: PostHistory | None = None  # what was printed cannot be read back

    def __init__(self, bot: Bot, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self.bot = bot
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.user = Identity("console", _user(), _user())
        self.greeting = GREETING
        self._sent = 0

    def _print(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def send(self, chat_id: str, reply: Reply, *, marker: PostMarker | None = None) -> str:
        self._sent += 1
        self._print(f"[{chat_id} #{self._sent}]\n{render_text(reply)}\n")
        return str(self._sent)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        self._print(f"[{chat_id} #{message_id} updated]\n{render_text(reply)}\n")

    async def serve(self) -> None:
        self._print(self.greeting)
        loop = asyncio.get_running_loop()
        interactive = self.stdin.isatty()
        while True:
            if interactive:
                self.stdout.write("chainsleuth> ")
                self.stdout.flush()
            line = await loop.run_in_executor(None, self.stdin.readline)
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit", "quit", "exit"):
                break
            if not text.startswith("/"):
                text = "/" + text
            reply = await self.bot.handle(IncomingMessage("console", "console", self.user, text, is_direct=True))
            if reply is not None:
                self._print(render_text(reply))


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "operator"
