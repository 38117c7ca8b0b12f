"""Engine and session factory for the configured database URL."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import InterfaceError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.settings import get_settings

# What a lost connection or a restarting server raises; a retry later may succeed.
DATABASE_AWAY = (OperationalError, InterfaceError)

T = TypeVar("T")


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN until the first write, which lets two
    # processes read the same row and then both "claim" it. BEGIN IMMEDIATE takes the write lock
    # up front, so a conditional UPDATE really is a claim; WAL keeps readers unblocked.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


# What this process's database connections call themselves (PostgreSQL's application_name):
# pg_stat_activity then tells which process type holds a connection, waits on a lock or runs a
# slow statement, and what the database spends serving each.
_role = "notifier"


def name_connections(role: str) -> None:
    """Name the connections this process opens from now on, e.g. "worker push_bulk"."""
    global _role
    _role = f"notifier {role}"[:63]  # PostgreSQL keeps 63 bytes of it


# Every session in UTC, whatever the server's default: notifier stores and answers UTC, and a
# timestamp read straight through the driver (store.direct) comes back in the session's zone.
# In UTC psycopg hands out datetimes on datetime.UTC; under the server default here
# ("Etc/UTC") it converts each one through zoneinfo (0.28 against 0.09 µs a value, and the
# comparisons and offsets after it cost more too).
# And no JIT: every statement here is short and touches at most a few thousand rows, and
# PostgreSQL compiles a statement anew at each run once its estimated cost passes
# jit_above_cost (on by default where the server has LLVM, as this one has). A fan-out chunk's
# INSERT … SELECT took 6 s with JIT against 0.14 s without; an estimate gone high (a table
# analyzed mid-broadcast) is all it takes.
SESSION_OPTIONS = "-c TimeZone=UTC -c jit=off"


def _options(url: str) -> str:
    """SESSION_OPTIONS after any `options` the URL gives (connect_args would replace them)."""
    given = make_url(url).query.get("options")
    return f"{given} {SESSION_OPTIONS}" if isinstance(given, str) and given else SESSION_OPTIONS


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=5,
        max_overflow=5,
        connect_args={"application_name": _role, "options": _options(url)},
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection back in use within this many seconds of its last use is not pinged.
IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that sat idle only.

    A ping is a round trip before every transaction; a transactional send runs three of
    them, and under a broadcast each round trip waits its turn for a CPU. A connection that
    was in use a moment ago is as good as a pinged one; one that sat idle may have outlived a
    database restart or a failover, and a failed ping throws the whole pool away, as
    pool_pre_ping does. Whatever fails in between (the server died within the second) fails
    as any statement would, and the callers' retries cover it."""

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.pop("returned_at", None)
        if returned is None or time.monotonic() - returned < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise InvalidatePoolError() from exc


_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}


def engine_for(url: str) -> Engine:
    """One engine (one pool) per database URL per process."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = make_engine(url)
    return engine


def get_engine() -> Engine:
    return engine_for(get_settings().db_url)


def _sessionmaker(url: str) -> sessionmaker[Session]:
    maker = _sessionmakers.get(url)
    if maker is None:
        maker = _sessionmakers[url] = sessionmaker(engine_for(url), expire_on_commit=False)
    return maker


@contextmanager
def transaction(one_statement: bool = False) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any exception.

    `one_statement`: the caller runs a single statement on PostgreSQL (the push claim). It then
    runs in autocommit, where the statement is its own transaction: one round trip to the
    server where BEGIN, the statement and COMMIT are three, and under a broadcast each round
    trip on a one-time code's path waits its turn for a CPU. A second statement in it would
    commit apart from the first. SQLite's units keep their BEGIN IMMEDIATE (its claims are
    several statements)."""
    session = _sessionmaker(get_settings().db_url)()
    try:
        with session.begin():
            if one_statement and is_postgres(session):
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield session
    finally:
        session.close()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def dispose_engine(url: str) -> None:
    """Close the pooled connections of one database URL (tests drop their databases after)."""
    _sessionmakers.pop(url, None)
    engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def in_transaction_until(work: Callable[[Session], T], deadline: float) -> T:
    """Run `work` in a transaction, retrying while the database is away until `deadline`.

    For results that exist only in memory and cannot be redone: pushes a provider already
    accepted. Dropping them on a brief outage would let the lease re-send them later.
    `deadline` is a `time.monotonic()` value; past it the last error is raised.
    """
    pause = 0.2
    while True:
        try:
            with transaction() as session:
                return work(session)
        except DATABASE_AWAY:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, 5.0)
