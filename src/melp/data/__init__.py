"""Data layer: dataset readers, the memory-mapped store, transforms, datasets, label sets, synthesis."""

from melp.data.leads import STANDARD_LEADS
from melp.data.store import Record, Skip, Store, build_store, open_store

__all__ = ["STANDARD_LEADS", "Record", "Skip", "Store", "build_store", "open_store"]
