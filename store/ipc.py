"""Arrow IPC (de)serialisation of a batch, the WAL's payload format."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


def to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(payload: Any) -> pa.Table:
    # Copy out of the WAL file's buffer: the memtable outlives the bytes read at replay.
    return pa.ipc.open_stream(pa.py_buffer(bytes(payload))).read_all()
