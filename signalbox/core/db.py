"""Database engine, sessions and shared column types for SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Integer,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.elements import Null
from sqlalchemy.types import NullType, TypeDecorator

from signalbox.core.clock import ensure_utc
from signalbox.core.errors import SchemaOutOfDateError
from signalbox.core.planner import PlannerStatistics
from signalbox.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants 64 bits for events.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, hands back timezone-aware UTC on both databases; refuses naive input."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return ensure_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else ensure_utc(value)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Database:
    """An engine plus the one rule SQLite needs: a single writer at a time per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = _make_engine(settings)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # SQLite plans these lookups well without statistics (it prefers the index matching
        # more equalities); PostgreSQL needs them (`planner`).
        self.planner = None if self.is_sqlite else PlannerStatistics(self._analyze, self._row_estimate)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session; nothing is committed."""
        with self._sessions() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: commit on success, roll back on any exception."""
        if self._write_lock is not None:
            with self._write_lock, self._sessions() as session:
                # BEGIN IMMEDIATE takes SQLite's write lock up front, so two processes
                # wait on the busy timeout instead of failing mid-transaction on upgrade.
                session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})
                with _commit_or_rollback(session):
                    yield session
        else:
            with self._sessions() as session:
                with _commit_or_rollback(session):
                    yield session
                appended = session.info.get(_APPENDED)
            if appended and self.planner is not None:
                self.planner.appended(appended)

    def _analyze(self, table: str) -> float:
        with self.engine.connect() as conn:
            # ANALYZE waits for a VACUUM or ANALYZE of the same table (autovacuum's, another
            # process's); the caller holds a request meanwhile, so it gives up instead (logged
            # by the planner, tried again after more rows).
            conn.execute(text(f"SET LOCAL lock_timeout = {int(ANALYZE_LOCK_TIMEOUT_MS)}"))
            # `table` is one of our own tables' names (insert_columns checked it against the Table).
            columns = _planned_columns(table)
            conn.execute(text(f'ANALYZE "{table}"' + (f" ({', '.join(columns)})" if columns else "")))
            estimate = _reltuples(conn, table)
            conn.commit()
        return estimate

    def _row_estimate(self, table: str) -> float:
        with self.engine.connect() as conn:
            return _reltuples(conn, table)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """`transaction` on a bare connection, for a hot path of a statement or two where
        building an ORM session would cost more than the write."""
        if self._write_lock is not None:
            with self._write_lock, self.engine.connect() as conn:
                conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                with conn.begin():
                    yield conn
        else:
            with self.engine.begin() as conn:
                yield conn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def require_current_schema(self) -> None:
        from signalbox.core.migrate import current_revision, head_revision

        current, head = current_revision(self.engine), head_revision()
        if current != head:
            raise SchemaOutOfDateError(
                f"database schema is at {current or 'nothing'}, code expects {head}: run `signalbox db upgrade`"
            )

    def dispose(self) -> None:
        self.engine.dispose()


def describe_error(exc: DBAPIError, settings: Settings) -> str:
    """One line that says what went wrong with the database and what to do, without the
    statement or its parameters (the driver's first line names the problem)."""
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0][:300]
    if settings.is_sqlite and "locked" in first:
        return (
            f"the database {where} is locked by another process (waited {settings.sqlite_busy_timeout_ms} ms, "
            "SIGNALBOX_SQLITE_BUSY_TIMEOUT_MS); try again when it is free"
        )
    return f"database {where}: {first}"


@contextmanager
def _commit_or_rollback(session: Session) -> Iterator[None]:
    try:
        yield
    except BaseException:
        session.rollback()
        raise
    session.commit()


def json_dumps(value: Any) -> str:
    """A document as the JSON columns store it (the engines' serializer)."""
    # orjson is several times faster than the stdlib on the event stream's JSON columns.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _make_engine(settings: Settings) -> Engine:
    # hide_parameters: statement parameters are message bodies, traits and key hashes; with it
    # SQLAlchemy's errors and echo name the statement but never the values, so no log line or
    # error message we print can carry them.
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            json_serializer=json_dumps,
            json_deserializer=orjson.loads,
            hide_parameters=True,
        )
        timeout = settings.sqlite_busy_timeout_ms
        mmap_bytes = settings.sqlite_mmap_mb * 1024 * 1024

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            # A 64 MB page cache per connection (SQLite's default is 2 MB): the event indexes
            # take random inserts, and a million-event workspace outgrows 2 MB at once.
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute(f"PRAGMA busy_timeout={int(timeout)}")
            cur.execute(f"PRAGMA mmap_size={int(mmap_bytes)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Reads take a deferred snapshot; writers ask for the write lock at once.
            conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))

        return engine
    return create_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
        pool_size=settings.pg_pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
        # No server-side prepared statements: the batch queries carry IN lists of many ids, and
        # PostgreSQL's generic plan for them scans instead of using the indexes (measured: the
        # bench's import ran 2-5x slower with psycopg's default threshold).
        connect_args={"prepare_threshold": None},
    )


def dialect_insert(session: Session, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT, for whichever database the session is on."""
    target: Table = table if isinstance(table, Table) else table.__table__
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(target)
    return sqlite.insert(target)


def pg_array(values: Iterable[str | None]) -> str:
    """`values` as one PostgreSQL array literal (`{"a","b",NULL}`), for a parameter the
    statement casts to an array type. psycopg's list dumper quotes each element with a regex
    substitution: the import profile showed it at ~10 µs an element, most of the read-model
    update's cost; one str param is dumped (and the statement cached) as a single value.

    A JSON array of strings and nulls is already that literal between its brackets (quotes
    and backslashes are escaped alike and PostgreSQL reads an unquoted `null` as NULL), unless
    an element holds a control character, which JSON writes as an escape (`\\n`) that the array
    parser would read as the bare letter. orjson writes it 20x faster than quoting each element
    in Python."""
    items = values if isinstance(values, list) else list(values)
    dumped = orjson.dumps(items)
    if _JSON_CONTROL_ESCAPE.search(dumped.replace(b"\\\\", b"")) is None:
        return "{" + dumped[1:-1].decode() + "}"
    return "{" + ",".join("NULL" if v is None else _quote_element(v) for v in items) + "}"


# After escaped backslashes are taken out, a backslash starts either `\"` (as in an array
# literal) or the escape of a control character.
_JSON_CONTROL_ESCAPE = re.compile(rb"\\[btnfru]")


def _quote_element(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def one_of(session: Session, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN (values)` for a batch's lookups. On PostgreSQL `column = ANY(array)` with the
    array sent as one literal: an expanding IN of 2,000 ids made SQLAlchemy render, psycopg
    parse (uncached: every IN list is a different statement) and the server plan 2,000
    placeholders per query, ~1.8 s of a 20,000-message import. The index still serves it."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)  # type: ignore[no-any-return]
    # An untyped parameter cast to text[]: PostgreSQL then reads the literal as an array
    # constant while parsing. Typed (`$1::VARCHAR`), the cast stays in the plan as an I/O
    # conversion that the filter re-ran for every row: 0.8 s for 4,000 events (measured).
    return column == any_(cast(bindparam(None, pg_array(values), type_=NullType()), postgresql.ARRAY(Text)))  # type: ignore[no-any-return]


def driver_one_of(session: Session, column: str, param: str, values: Sequence[str]) -> tuple[str, str]:
    """`one_of` for SQL handed to `driver_rows`: the condition (`column` is one of `values`)
    naming the parameter `:param`, and that parameter's value. Any number of values go as one
    parameter: a PostgreSQL array literal (`pg_array`) or a JSON array that SQLite unpacks
    with `json_each`, so one statement serves a million ids without a placeholder each."""
    if session.get_bind().dialect.name == "postgresql":
        return f"{column} = ANY(CAST(:{param} AS text[]))", pg_array(values)
    # `column` and `param` come from the caller's constants; the values are bound.
    return f"{column} IN (SELECT value FROM json_each(:{param}))", orjson.dumps(list(values)).decode()  # noqa: S608


def advisory_xact_lock(session: Session, key: str) -> None:
    """Serialise the writers that name the same key until this transaction ends (PostgreSQL;
    SQLite has one writer at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


# What a batch's lookups cost a random page read (PostgreSQL's default, 4.0, prices a spinning
# disk's seek against a sequential read).
PROBE_RANDOM_PAGE_COST = 1.1


def prefer_index_probes(session: Session) -> None:
    """Until this transaction ends, price an index probe as a read of a cached page (PostgreSQL).

    A batch looks up a few hundred to a few thousand keys (message ids, identifiers, profile
    ids) through unique indexes whose pages its own workspace's writes keep in memory. At the
    default cost the planner read the workspace's whole table instead (a sequential scan, or a
    hash of it) until the table held ~50,000 rows: auto_explain of the 500-message batches of
    bench/ingest.py showed the duplicate check filtering 48,500 rows to find none in 10 ms, and
    the read-model UPDATE hashing 7,551 profiles to touch 438. SET LOCAL keeps the change to
    this transaction; nothing else the connection runs is planned differently."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL random_page_cost = {PROBE_RANDOM_PAGE_COST}"))


ANALYZE_LOCK_TIMEOUT_MS = 2000


def _reltuples(conn: Connection, table: str) -> float:
    """PostgreSQL's row estimate for `table` (-1 before its first ANALYZE, 0 if unknown)."""
    found = conn.execute(text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table})
    return float(found.scalar() or 0.0)


def _planned_columns(table: str) -> list[str]:
    """The columns lookups filter and join on: every one but the JSON documents. Statistics on
    an event's properties, traits and context cost most of an ANALYZE of `events` (the import
    bench's PostgreSQL CPU rose 0.7-0.9 s with all columns analysed) and plan nothing we run;
    autovacuum's own ANALYZE still covers them."""
    return [f'"{column.name}"' for column in Base.metadata.tables[table].columns if not isinstance(column.type, JSON)]


# session.info key: rows each table got from `insert_columns` in this transaction, for
# `Database.planner` once it commits.
_APPENDED = "signalbox.appended"


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """`insert_columns` for rows given as dicts (all with the same keys)."""
    if rows:
        insert_columns(session, table, {name: [row[name] for row in rows] for name in rows[0]})


def insert_columns(
    session: Session, table: Table, columns: Mapping[str, Sequence[Any]], *, json_text: frozenset[str] = frozenset()
) -> None:
    """Append rows given column by column (the k-th value of each column makes the k-th row)
    in the session's transaction, without the per-row parameter machinery of an ORM or Core
    executemany: each value goes through its column type's own bind processor (so what is
    stored is byte for byte what `insert()` would store), then PostgreSQL gets one COPY and
    SQLite one driver-level executemany. Columns named in `json_text` come as JSON text (None
    for SQL NULL) and are stored as given: a million change rows serialised in one pass by
    their writer instead of one `orjson` call each here.

    A plain append: no ON CONFLICT. A row that breaks a unique key fails the whole statement,
    and so the caller's transaction; callers use it for rows they know are new."""
    names, count = _checked_columns(table, columns)
    if not count:
        return
    appended: Counter[str] = session.info.setdefault(_APPENDED, Counter())
    appended[table.name] += count
    conn = session.connection()
    dialect = conn.dialect
    pg = dialect.name == "postgresql"
    values = zip(*_bound_columns(table, dialect, columns, json_text, for_copy=pg), strict=True)
    listed = ", ".join(names)
    if pg:
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({listed}) FROM STDIN") as copy:
            for value in values:
                copy.write_row(value)
        return
    marks = ", ".join("?" * len(names))
    # Names only from the Table itself (_checked_columns refused any other); values are bound.
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({listed}) VALUES ({marks})", list(values))  # noqa: S608


def bulk_update(session: Session, table: Table, keys: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """`UPDATE table SET <the other columns> WHERE <keys>` for every row (all with the same
    columns), as one driver-level executemany with values bound as in `insert_columns`. For
    SQLite, where an executemany is cheap once the per-row parameter handling is gone;
    PostgreSQL callers send one statement over arrays instead (one UPDATE per row is what
    costs there)."""
    if not rows:
        return
    conn = session.connection()
    names = [name for name in rows[0] if name not in keys] + list(keys)
    columns = {name: [row[name] for row in rows] for name in names}
    _checked_columns(table, columns)
    sets = ", ".join(f"{name} = ?" for name in names[: -len(keys)])
    where = " AND ".join(f"{name} = ?" for name in keys)
    # Names only from the Table itself (_checked_columns refused any other); values are bound.
    sql = f"UPDATE {table.name} SET {sets} WHERE {where}"  # noqa: S608
    conn.exec_driver_sql(sql, list(zip(*_bound_columns(table, conn.dialect, columns), strict=True)))


def _checked_columns(table: Table, columns: Mapping[str, Sequence[Any]]) -> tuple[list[str], int]:
    """The column names (only the table's own: they go into the SQL) and the row count."""
    names = list(columns)
    if not names:
        raise ValueError(f"{table.name}: no columns given")
    count = len(columns[names[0]])
    for name in names:
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name}")
        if len(columns[name]) != count:
            raise ValueError(f"column {name}: {len(columns[name])} values for {count} rows")
    return names, count


def _json_text_processor(impl: JSON) -> Callable[[Any], str | None]:
    """What JSON's own bind processor does (SQL NULL only for `null()` or with none_as_null,
    else JSON text, so Python None is stored as JSON null), serialising with the engine's
    serializer (`_make_engine`) to the text that COPY sends as it is."""

    def process(value: Any) -> str | None:
        if value is impl.NULL:
            value = None
        elif isinstance(value, Null) or (value is None and impl.none_as_null):
            return None
        return json_dumps(value)

    return process


# A named parameter (:name) in SQL handed to the driver; `::` (a PostgreSQL cast) is not one.
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores a UTC moment on SQLite


def driver_rows(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of a read with `:name` parameters, straight from the driver in the session's
    transaction: no per-row result processing, for reads of millions of rows (columnar code
    converts whole columns afterwards, see `epoch_seconds`). Callers write SQL from constants
    and bind every value."""
    conn = session.connection()
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "postgresql":
        sql = _NAMED.sub(r"%(\1)s", sql)
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def time_param(session: Session, moment: datetime) -> Any:
    """`moment` as `driver_rows` binds it: SQLite compares the stored text, PostgreSQL timestamptz."""
    if session.get_bind().dialect.name == "postgresql":
        return ensure_utc(moment)
    return ensure_utc(moment).strftime(_SQLITE_TIME)


def epoch_sql(session: Session, column: str) -> str:
    """A select expression for a timestamp column that `epoch_seconds` turns into floats."""
    if session.get_bind().dialect.name == "postgresql":
        return f"EXTRACT(EPOCH FROM {column})::float8"
    return column


def epoch_seconds(session: Session, values: Sequence[Any]) -> NDArray[np.float64]:
    """A column read through `epoch_sql` as epoch seconds (NaN for NULL), with the exact value
    of `datetime.timestamp()`: whole microseconds over 1e6, parsed by NumPy in one pass."""
    if session.get_bind().dialect.name == "postgresql":
        return np.array(values, dtype=np.float64)
    stamps = np.array(values, dtype="datetime64[us]")  # None -> NaT
    out = stamps.astype(np.int64) / 1e6
    out[np.isnat(stamps)] = np.nan
    return out


def update_by_id(
    session: Session,
    table: Table,
    workspace_id: str,
    ids: Sequence[str],
    columns: Mapping[str, Sequence[Any]],
    *,
    json_text: frozenset[str] = frozenset(),
) -> None:
    """`UPDATE table SET <columns> WHERE workspace_id = ? AND id = ?` for every id, the k-th
    value of each column on the k-th id, in the session's transaction. Columns named in
    `json_text` come as JSON text (or None) and are stored as given. SQLite gets one
    driver-level executemany with each value bound as the column type binds it; PostgreSQL
    one UPDATE ... FROM unnest over text arrays cast to each column's type (one statement per
    row is what costs there)."""
    if not ids:
        return
    conn = session.connection()
    dialect = conn.dialect
    names, count = _checked_columns(table, columns)
    if count != len(ids):
        raise ValueError(f"{count} values for {len(ids)} ids")
    if dialect.name == "postgresql":
        types = [table.c[name].type.compile(dialect=dialect) for name in names]
        sets = ", ".join(f"{name} = u.{name}::{kind}" for name, kind in zip(names, types, strict=True))
        arrays = ", ".join(["%s::text[]"] * (len(names) + 1))
        sql = (
            f"UPDATE {table.name} AS t SET {sets} FROM unnest({arrays}) AS u(id, {', '.join(names)}) "  # noqa: S608
            "WHERE t.workspace_id = %s AND t.id = u.id"
        )
        raw = conn.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor:
            cursor.execute(sql, [list(ids), *(_texts(columns[n], n in json_text) for n in names), workspace_id])
        return
    bound = _bound_columns(table, dialect, columns, json_text)
    sets = ", ".join(f"{name} = ?" for name in names)
    conn.exec_driver_sql(
        f"UPDATE {table.name} SET {sets} WHERE workspace_id = ? AND id = ?",  # noqa: S608 (names from the Table)
        list(zip(*bound, [workspace_id] * len(ids), ids, strict=True)),
    )


def _bound_columns(
    table: Table,
    dialect: Dialect,
    columns: Mapping[str, Sequence[Any]],
    json_text: frozenset[str] = frozenset(),
    *,
    for_copy: bool = False,
) -> list[list[Any]]:
    """Each column bound as its type binds it (`_bound_column`), in `columns`' order; those
    named in `json_text` are JSON text already and go as given."""
    return [
        list(values) if name in json_text else _bound_column(table.c[name].type, dialect, values, for_copy)
        for name, values in columns.items()
    ]


def _bound_column(kind: Any, dialect: Dialect, values: Sequence[Any], for_copy: bool = False) -> list[Any]:
    """Each value through the column type's bind processor (what insert() would send); a value
    repeated down the column (one timestamp for the whole run) is processed once.

    `for_copy` (PostgreSQL's COPY): JSON values are serialised to text here, with the same
    serializer and the same NULL rules as the type's own processor, instead of being wrapped
    for psycopg to serialise through its Python-level JSON dumper (~0.5 s per 20,000 imported
    messages in the profile); COPY's text format hands the server the same JSON text."""
    impl = kind.dialect_impl(dialect)
    if isinstance(impl, JSON):  # documents: neither repeated nor hashable
        process: Any = _json_text_processor(impl) if for_copy else kind.dialect_impl(dialect).bind_processor(dialect)
        return [process(v) for v in values] if process is not None else list(values)
    process = impl.bind_processor(dialect)
    if process is None:
        return list(values)
    done: dict[Any, Any] = {}
    out: list[Any] = []
    for value in values:
        if value is None:
            out.append(None)
            continue
        key = (type(value), value)
        if key not in done:
            done[key] = process(value)
        out.append(done[key])
    return out


def _texts(values: Sequence[Any], is_json_text: bool) -> list[str | None]:
    """Values as PostgreSQL reads them back from text (a float's repr is exact)."""
    if is_json_text:
        return list(values)
    return [None if v is None else v.isoformat() if hasattr(v, "isoformat") else str(v) for v in values]
