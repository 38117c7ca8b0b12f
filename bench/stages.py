"""Each stage of a broadcast on its own, in this process: the CPU it costs per delivery here
and in the database, without the rest of the system running beside it.

`python -m bench.run` measures C with every process of the system sharing the two cores, and
this box's speed drifts by tens of per cent within minutes: a change of a few µs to one
stage is lost in that. Here each stage runs alone, one after the other, on the same rows:

- fanout: the broadcast's chunks written and published (pipeline.fanout);
- push: batches of NOTIFIER_PUSH_CONCURRENCY claimed, sent to the mock APNs / FCM over the
  real transport, and recorded (pipeline.push.send_push, as a push_bulk task runs it);
- acks: every push acknowledged by its device, 200 receipts a request and five requests a
  transaction, as the API's group commit records them (pipeline.ingest.record_ack_groups).

The mocks run as in the bench, their devices `offline` so no ack reaches the API: the acks
stage records them itself. Python's CPU is this process's; the database's is the CPU of
the server processes serving this database's connections (read from /proc). Compare a
change by running before and after in turns (`--rounds`), not one run each.

With `--statements`, the database's CPU of each stage is split by statement, and the WAL it
wrote is counted (bench.statements).

    python -m bench.stages [--n 20000] [--rounds 3] [--profile push]
        [--statements [--by-round]] [--vacuum]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench import load, procs
from bench.run import fresh_services, seed_audience
from bench.statements import StatementCosts
from config.settings import get_settings
from notifier import heap, producer
from notifier.demo.stack import Stack
from notifier.pipeline import fanout, ingest, push
from notifier.store.db import get_engine
from workers._ids import parse_ids

ACKS_PER_REQUEST, REQUESTS_PER_TRANSACTION = 200, 5


def database_cpu() -> float:
    """CPU seconds so far of the server processes of this database's connections."""
    with get_engine().connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        ).scalars()
        return procs.cpu_seconds(list(pids))


def measured(
    name: str,
    n: int,
    run: Callable[[], None],
    profile: str | None,
    costs: StatementCosts | None,
    stage: str,
) -> dict[str, float]:
    """µs per delivery of Python and of the database for one stage; its statements are
    counted under `name`."""
    if costs is not None:
        with costs.stage_of(name):
            return measured(name, n, run, profile, None, stage)
    db, cpu = database_cpu(), time.process_time()
    if profile == stage:
        profiler = cProfile.Profile()
        profiler.runcall(run)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(30)
    else:
        run()
    cpu, db = time.process_time() - cpu, database_cpu() - db
    return {"python": cpu / n * 1e6, "database": db / n * 1e6}


def one_round(
    n: int, round_no: int, profile: str | None, costs: StatementCosts | None, by_round: bool
) -> dict[str, dict[str, float]]:
    tag = f"r{round_no}"
    seed_audience(n, tag)
    broadcast_id = producer.send_broadcast({"tags": [tag]}, {"title": "Stages", "body": tag})
    ids: list[str] = []

    def fan_out() -> None:
        while True:
            chunk = fanout.fan_out_chunk(broadcast_id)
            fanout.publish_chunk(chunk)
            ids.extend(chunk.deliveries)
            if chunk.finished:
                return

    size = fanout.batch_size()

    def send() -> None:
        for start in range(0, len(ids), size):  # as the push task gets them: text, parsed
            push.send_push(parse_ids(ids[start : start + size]), lane="push_bulk")

    def acknowledge() -> None:
        per_transaction = ACKS_PER_REQUEST * REQUESTS_PER_TRANSACTION
        for start in range(0, len(ids), per_transaction):
            part = ids[start : start + per_transaction]
            step = ACKS_PER_REQUEST
            requests = [part[r : r + step] for r in range(0, len(part), step)]
            parsed = [ingest.parsed_acks([(i, "received") for i in r]) for r in requests]
            ingest.record_ack_groups([(acks, None) for acks in parsed])

    stages = (("fanout", fan_out), ("push", send), ("acks", acknowledge))
    # By round, the statements' costs are kept apart per round: what grows as tables fill.
    counted = (lambda name: f"{name} r{round_no}") if by_round else (lambda name: name)
    return {name: measured(counted(name), n, run, profile, costs, name) for name, run in stages}


def vacuum_all() -> None:
    """What autovacuum does after a broadcast: the dead versions of its updates made
    reusable, so the next round's rows go into the space they leave."""
    with get_engine().connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def bare_client(stack: Stack, n: int) -> float:
    """F as the bench measures it, now: CPU µs per request of the bare client loop against
    the same mock APNs (the floor under the push stage's transport share)."""
    creds = load.stack_credentials(stack.env)
    cpu, answered = load.client_cpu(stack.url("apns"), creds, n, get_settings().push_concurrency, 1)
    return cpu / max(answered, 1) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000, help="recipients per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=("fanout", "push", "acks"))
    parser.add_argument(
        "--statements", action="store_true", help="the database's CPU by statement, and WAL"
    )
    parser.add_argument(
        "--by-round",
        action="store_true",
        help="with --statements, each round's statements apart (tables fill round by round)",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM ANALYZE between rounds, as autovacuum would after a broadcast",
    )
    parser.add_argument("--home", default="var/bench-stages")
    args = parser.parse_args(argv)
    costs = StatementCosts() if args.statements else None
    home = Path(args.home) / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    with fresh_services() as services:
        overrides = {**services, "NOTIFIER_MOCK_DEFAULT_BEHAVIOUR": "offline"}
        with Stack(home, overrides, workers=()) as stack:
            from notifier.demo.run import seed_catalogue

            seed_catalogue()
            heap.settle()  # as a worker process does once it has started
            rounds = []
            for r in range(args.rounds):
                with costs.installed() if costs else contextlib.nullcontext():
                    rounds.append(one_round(args.n, r, args.profile, costs, args.by_round))
                rounds[-1]["bare client (F)"] = {"python": bare_client(stack, 10000)}
                if args.vacuum:
                    vacuum_all()
    print(f"\nnotifier stages, {datetime.now(UTC):%Y-%m-%d}, N = {args.n:,} per round\n")
    print("| stage | python µs per delivery | database µs per delivery |\n|---|---|---|")
    for name in rounds[0]:
        py = " / ".join(f"{r[name]['python']:.1f}" for r in rounds)
        db = " / ".join(f"{r[name].get('database', 0.0):.1f}" for r in rounds)
        print(f"| {name} | {py} | {db} |")
    if costs is not None:
        print(f"\n{costs.table(args.n if args.by_round else args.n * args.rounds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
