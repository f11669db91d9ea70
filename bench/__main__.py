"""`python -m bench [--only NAME,…] [--quick] [--out FILE] [trace/risk options]`: every benchmark figure, written
to BENCHMARKS.md (see there). Figures: trace (bench.trace_risk), watch (bench.watch_match), ingest (bench.ingest),
fanout (bench.fanout), latency (bench.alert_latency),
commands (bench.commands), explorer (bench.explorer: traces and risk reports through an explorer, API calls and
seconds at the free tier, its own section), cases (bench.cases: the laundering-case evaluation, its own section at
the end). Without `trace` in --only, the trace/risk part of the existing file is kept as it is; without `explorer`
or `cases`, their sections; without any system figure, the system figures."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import alert_latency, cases, commands, explorer, fanout, ingest, watch_match
from bench import trace_risk as trace_module
from bench.common import TABLE_HEAD, Figure, log, machine_line

MARKER = "<!-- bench: system figures below, written by python -m bench -->"
FIGURES: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], list[Figure]]]]
FIGURES = {
    "watch": (watch_match.add_arguments, watch_match.from_args),
    "ingest": (ingest.add_arguments, ingest.from_args),
    "fanout": (fanout.add_arguments, fanout.from_args),
    "latency": (alert_latency.add_arguments, alert_latency.from_args),
    "commands": (commands.add_arguments, commands.from_args),
}
ALL = ("trace", *FIGURES, "explorer", "cases")

HOW = [
    "- **Watch matching**: random 20-byte addresses; about one endpoint in a thousand is watched. Each block is"
    " matched by `WatchMatcher.matches` (a set of 64-bit `hash()`es per chain) and then by the baseline, the same"
    " loop over a `set[str]` of the addresses, and the two must find the same matches. The per-block p99 is taken"
    " over the blocks of a run, then the median over runs. Memory is what `tracemalloc` sees each structure hold"
    " once built (address strings not kept by the matcher are freed). The plain set is about twice as fast per"
    " block (a `str` caches its hash) but holds about twice the memory; both meet the goals.",
    "- **Ingest**: the blocks are built once on anvil (`--no-mining`, one JSON-RPC batch of `eth_sendTransaction`s"
    " per block from the ten dev accounts, then `evm_mine`). Each run indexes them with `Indexer` (its defaults: 8"
    " blocks in flight, 4 blocks per JSON-RPC batch, stored 100 blocks at a time while the next are fetched) into a"
    " fresh SQLite file and a fresh PostgreSQL database on 127.0.0.1, after the baseline fetches and decodes them the"
    " same way (`fetch_range`, same `RpcSource` and settings) without storing. Per block the batch holds the header"
    " without transaction objects, `eth_getBlockReceipts` and `trace_block`: each transaction's value comes from its"
    " top-level trace frame and its sender and recipient from its receipt (any block where these do not plainly"
    " agree is read again in full), so anvil is not asked for full transaction objects (about 20 ms of its CPU per"
    " block of 100 transactions, against about 3 ms for header, receipts and traces together). The store is written"
    " through the driver: one `executemany` on SQLite; on PostgreSQL a `COPY` into a temporary table and one"
    " `INSERT … SELECT … ON CONFLICT DO NOTHING`. anvil and the bench share the 2 CPUs; the notes give each one's"
    " CPU per block, which moves much less than the rates.",
    "- **Fan-out**: 10,000 movement alerts queued in a fresh SQLite store (50 for each of 200 group chats,"
    " interleaved), drained by the production `Notifier` with `TELEGRAM_LIMITS` into an in-process recorder that"
    " enforces Telegram's limits (1 message/s per chat, 20/min per group, 30/s overall, 50 ms tolerance) and"
    " answers a violation with a 429. The theoretical minimum is the time the limits force for the same number of"
    " messages (⌈messages / 30⌉ − 1 s, at least (messages per chat − 1) s).",
    "- **Alert latency**: see `bench/alert_latency.py`; the watcher, notifier, `TelegramBackend` and the recording"
    " server run in the bench process, anvil beside it. A transfer every third block: each alert is two messages"
    " to the chat (the post, then the edit to confirmed), and at one transfer per block Telegram's 1 message/s per"
    " chat makes the queue, and the latency, grow without bound (measured: 0.8 s rising to 3.8 s within 8 blocks).",
    "- **Slack commands**: see `bench/commands.py`; 50 users each send a signed `/sleuth risk 0x…` (the Ronin"
    " exploiter or random addresses), wait for the answer and send the next. The clients, the recording Slack and"
    " the app share one process and event loop, so the clients' work competes with the bot's.",
    "- **Fail-over** (not a timing; `tests/test_multiprocess.py`, PostgreSQL): two `chainsleuth watch` processes,"
    " one leader per chain by the `follow:<chain>` advisory lock; after SIGKILL of the leader the other took over"
    " in about 1 s (it retries every second) from the stored cursor, with zero lost and zero duplicated alerts.",
]

NOT_MEASURED = [
    "- Commands through Telegram, and Slack in Socket Mode; alert latency with the default 2 s watcher poll; ingest"
    " from a real (remote) node.",
    "- Alert latency is one run (percentiles over that run's samples), not the median of several runs.",
]


def parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__, add_help=False, allow_abbrev=False)
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {', '.join(ALL)}")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the benchmarks run")
    parser.add_argument("--runs-small", type=int, default=5, help="runs of the cheap figures (watch)")
    parser.add_argument("--runs-slow", type=int, default=3, help="runs of the slow figures (ingest, fan-out)")
    for add, _ in FIGURES.values():
        add(parser)
    explorer.add_arguments(parser)
    cases.add_arguments(parser)
    args, rest = parser.parse_known_args(argv)
    if args.quick:
        args.watched, args.watch_blocks, args.endpoints = 20_000, 10, 200
        args.ingest_blocks, args.ingest_txs = 5, 10
        args.fanout_alerts, args.fanout_chats = 60, 6
        args.latency_alerts = 2
        args.command_users, args.command_rounds, args.command_runs = 3, 1, 1
        args.runs_small = args.runs_slow = 1
        args.ingest_postgres = False
    return args, rest


def system_section(figures: list[Figure], seconds: dict[str, float], quick: bool, trace_run: bool) -> str:
    lines = [
        MARKER,
        "",
        "## System figures (watch matching, ingest, fan-out, alert latency, Slack commands)",
        "",
        f"- Machine: {machine_line()}",
        "- Sizes were chosen so that the whole `make bench` stays under 15 minutes on this 2-CPU machine; time per"
        " figure in this run: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".",
    ]
    if not trace_run:
        lines.append(
            "- The trace/risk part above was not re-run with these figures (`--only` left it out); its numbers are"
            " from its own, earlier run, so the total time of a whole `make bench` is not verified yet by this run."
        )
    else:
        lines.append(f"- Whole run: {sum(seconds.values()) / 60:.1f} minutes (budget: 15).")
    if quick:
        lines.append("- **Quick run (`--quick`): tiny sizes, the figures below prove only that the benchmarks run.**")
    lines += ["", TABLE_HEAD, *(f.row() for f in figures), ""]
    notes = [n for f in figures for n in f.notes]
    if notes:
        lines += ["### Notes", "", *(f"- {n}" for n in notes), ""]
    lines += ["### How these were run", "", *HOW, "", "### Not measured yet", "", *NOT_MEASURED, ""]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    args, rest = parse(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [n for n in chosen if n not in ALL]
    if unknown:
        log(f"unknown figure(s): {', '.join(unknown)}; choose from {', '.join(ALL)}")
        return 2
    seconds: dict[str, float] = {}
    old_text = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
    old_cases = cases.MARKER + old_text.split(cases.MARKER, 1)[1] if cases.MARKER in old_text else ""
    old_explorer = ""
    if explorer.MARKER in old_text:
        old_explorer = explorer.MARKER + old_text.split(explorer.MARKER, 1)[1].split(cases.MARKER)[0]
    if "trace" in chosen:
        began = time.perf_counter()
        trace_args = trace_module.parse([*rest, *(["--quick"] if args.quick else []), "--out", str(args.out)])
        head = trace_module.markdown(trace_module.run(trace_args))
        seconds["trace"] = time.perf_counter() - began
    else:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else "# Benchmarks\n"
        head = old.split(MARKER)[0].split(explorer.MARKER)[0].split(cases.MARKER)[0]
    figures: list[Figure] = []
    for name, (_, run) in FIGURES.items():
        if name in chosen:
            began = time.perf_counter()
            figures += run(args)
            seconds[name] = time.perf_counter() - began
    if figures:
        tail = system_section(figures, seconds, args.quick, "trace" in chosen)
    else:  # `--only trace`: keep the system figures of the last run that measured them
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        tail = MARKER + old.split(MARKER, 1)[1] if MARKER in old else system_section([], seconds, args.quick, True)
        tail = tail.split(explorer.MARKER)[0].split(cases.MARKER)[0]  # those sections are added below, kept or new
    if "explorer" in chosen:
        began = time.perf_counter()
        old_explorer = explorer.section(args)
        seconds["explorer"] = time.perf_counter() - began
    if "cases" in chosen:
        began = time.perf_counter()
        old_cases = cases.section(args)
        seconds["cases"] = time.perf_counter() - began
    text = head.rstrip("\n") + "\n\n" + tail.lstrip("\n")
    if old_explorer:
        text = text.rstrip("\n") + "\n\n" + old_explorer.strip("\n") + "\n"
    if old_cases:
        text = text.rstrip("\n") + "\n\n" + old_cases.strip("\n") + "\n"
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
