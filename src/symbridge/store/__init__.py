"""Reference library of named functions: SQLite metadata plus an hnswlib vector index beside it."""

from .store import Store, open_store

__all__ = ["Store", "open_store"]
