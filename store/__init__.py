"""The storage engine: WAL with group commit, memtables, Parquet segments, catalog, retention."""

from store.config import StoreConfig
from store.engine import GroupInfo, Store

__all__ = ["GroupInfo", "Store", "StoreConfig"]
