"""The library's SQLite metadata: schema, connection settings and the queries the store needs.

Schema (version 9)::

    meta(key TEXT PRIMARY KEY, value TEXT)        -- schema_version, model_name, model_dim, model_fingerprint
    binaries(id, path, sha256 UNIQUE, build_id, model_name, dim, added_at, n_functions)
    functions(id, binary_id -> binaries.id, address, size, name, vector BLOB (float32 x dim),
              callees JSON [int], imports JSON [str], strings JSON [str], n_blocks, exported,
              code_key, data_key, cold, wrapper, slots JSON, tables JSON, cet_key, shape JSON)
              UNIQUE(binary_id, address)

A library of an earlier version is upgraded when it is opened: the columns it lacks are added as NULL
(unknown), which the matcher reads as no evidence.

``functions.id`` is the label of the function's vector in the ANN index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import UsageError

SCHEMA_VERSION = 9
# the columns each version added (NULL, unknown, in the rows of a library made before it)
UPGRADES = {2: ("exported INTEGER",),  # export status
            3: ("code_key INTEGER", "data_key INTEGER"),  # keys.code_keys and data_keys: identical code
            4: ("cold INTEGER",),  # a part split off another function (binary.cold_parts)
            5: ("wrapper INTEGER",),  # a thunk or short tail-calling wrapper (keys.is_wrapper)
            6: ("slots TEXT",),  # the functions it puts in struct fields and call arguments (keys.stored_slots)
            7: ("tables TEXT",),  # the tables of code pointers that begin with it (keys.pointer_tables)
            8: ("cet_key INTEGER",),  # code_key without a leading endbr64 (keys.code_keys(cet_blind=True))
            9: ("shape TEXT",)}  # its struct field accesses (keys.field_shapes), 'null' for none

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS binaries (
    id          INTEGER PRIMARY KEY,
    path        TEXT NOT NULL,
    sha256      TEXT NOT NULL UNIQUE,
    build_id    TEXT,
    model_name  TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    added_at    TEXT NOT NULL,
    n_functions INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS functions (
    id        INTEGER PRIMARY KEY,
    binary_id INTEGER NOT NULL REFERENCES binaries(id) ON DELETE CASCADE,
    address   INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    name      TEXT NOT NULL,
    vector    BLOB NOT NULL,
    callees   TEXT NOT NULL DEFAULT '[]',
    imports   TEXT NOT NULL DEFAULT '[]',
    strings   TEXT NOT NULL DEFAULT '[]',
    n_blocks  INTEGER NOT NULL DEFAULT 0,
    exported  INTEGER,
    code_key  INTEGER,
    data_key  INTEGER,
    cold      INTEGER,
    wrapper   INTEGER,
    slots     TEXT,
    tables    TEXT,
    cet_key   INTEGER,
    shape     TEXT,
    UNIQUE (binary_id, address)
);
CREATE INDEX IF NOT EXISTS functions_by_name ON functions(name);
"""


@contextmanager
def immediate(con: sqlite3.Connection) -> Iterator[None]:
    """One write transaction (BEGIN IMMEDIATE): committed when the block ends, rolled back when it raises."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def check_db_arg(db: str) -> Path:
    """The DB argument as a path; PostgreSQL URLs are refused with a one-line UsageError."""
    if str(db).startswith(("postgresql://", "postgres://")):
        raise UsageError("PostgreSQL backends are not supported in this build")
    p = Path(db)
    if p.is_dir():
        raise UsageError(f"{p}: is a directory, not a library database")
    return p


def connect(path: Path, create: bool) -> sqlite3.Connection:
    """Open (and with create, initialise) the library at path; UsageError for anything not a library."""
    if not path.exists():
        if not create:
            raise UsageError(f"{path}: no such library (create one with `symbridge index add`)")
        if not path.parent.exists():
            raise UsageError(f"{path.parent}: no such directory")
    try:
        con = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)  # explicit transactions only
    except sqlite3.Error as exc:
        raise UsageError(f"{path}: cannot open the library ({exc})") from None
    try:
        con.execute("PRAGMA foreign_keys = ON")
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            con.execute("PRAGMA journal_mode = DELETE")
        con.execute("PRAGMA synchronous = FULL")
        has_meta = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            others = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if others or not create:
                raise UsageError(f"{path}: not a symbridge library")
            with immediate(con):
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
        version = get_meta(con, "schema_version")
        if version in {str(v - 1) for v in UPGRADES}:  # a library made by an earlier version
            upgrade(con, path, int(version))
            version = str(SCHEMA_VERSION)
        if version != str(SCHEMA_VERSION):
            raise UsageError(f"{path}: library schema version {version} is not supported "
                             f"(this build reads version {SCHEMA_VERSION})")
    except sqlite3.DatabaseError as exc:
        con.close()
        raise UsageError(f"{path}: not a symbridge library ({exc})") from None
    except BaseException:
        con.close()
        raise
    return con


def upgrade(con: sqlite3.Connection, path: Path, version: int) -> None:
    """Add the columns of every later version to a library of schema `version`, in one transaction."""
    try:
        with immediate(con):
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for column in UPGRADES[v]:
                    con.execute(f"ALTER TABLE functions ADD COLUMN {column}")
            set_meta(con, "schema_version", str(SCHEMA_VERSION))
    except sqlite3.OperationalError as exc:
        raise UsageError(f"{path}: cannot upgrade the library to schema version {SCHEMA_VERSION} ({exc})") from None


def function_counts(con: sqlite3.Connection) -> dict[int, tuple[int, int]]:
    """(named, all) functions of each binary, by binary id (a binary's unnamed functions have name '')."""
    return {b: (named, every) for b, named, every in con.execute(
        "SELECT binary_id, count(CASE WHEN name != '' THEN 1 END), count(*) FROM functions GROUP BY binary_id")}


def get_meta(con: sqlite3.Connection, key: str) -> str | None:
    row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_meta(con: sqlite3.Connection, key: str, value: str) -> None:
    con.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value))


def function_count(con: sqlite3.Connection) -> tuple[int, int]:
    """(number of functions, largest function id) — what the ANN sidecar must agree with."""
    n, top = con.execute("SELECT count(*), coalesce(max(id), 0) FROM functions").fetchone()
    return int(n), int(top)
