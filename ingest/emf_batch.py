"""Embedded Metric Format over a whole ingest batch: the metric rows its events yield.

Only messages that mention ``"_aws"`` are parsed (one vectorised substring test first), so
plain events cost nothing. Malformed documents are counted as ``Watchkeep/Logs``
``EMFParsingErrors`` / ``EMFValidationErrors`` datums with the log group as dimension (spec
metrics §3.3). No I/O here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ingest.emf import extract_emf
from store.metric_model import METRIC_SCHEMA, datum_row

log = logging.getLogger(__name__)

ERROR_NAMESPACE = "Watchkeep/Logs"


@dataclass(frozen=True, slots=True)
class EmfBatch:
    rows: pa.Table  # of METRIC_SCHEMA
    documents: int  # events that were EMF documents
    parsing_errors: int
    validation_errors: int


def emf_metrics(messages: pa.ChunkedArray | pa.Array, group: str, *, now_ms: int) -> EmfBatch:
    """The metric rows of every EMF document among ``messages`` (the events' ``message``)."""
    candidates = pc.match_substring(messages, '"_aws"')
    picked = pc.filter(messages, candidates).to_pylist()
    rows: list[dict[str, object]] = []
    documents = parsing = validation = 0
    for message in picked:
        extraction = extract_emf(message, now_ms=now_ms)
        if not extraction.is_emf:
            continue
        documents += 1
        rows.extend(extraction.rows)
        parsing += extraction.parsing_errors
        validation += extraction.validation_errors
    for name, count in (("EMFParsingErrors", parsing), ("EMFValidationErrors", validation)):
        if count:
            rows.append(
                datum_row(
                    namespace=ERROR_NAMESPACE,
                    metric_name=name,
                    dimensions={"LogGroup": group},
                    ts_ms=now_ms,
                    unit="Count",
                    values=[float(count)],
                )
            )
    table = pa.Table.from_pylist(rows, schema=METRIC_SCHEMA)
    return EmfBatch(table, documents, parsing, validation)


class FilterRows(Protocol):
    def metric_rows(self, log_group: str, events: pa.Table, *, now_ms: int) -> pa.Table: ...


def batch_metrics(events: pa.Table, group: str, filters: FilterRows, *, now_ms: int) -> pa.Table:
    """Every metric row an accepted batch yields: its EMF documents, then the rows of the
    group's metric filters (``ingest.metric_filters``), for one append to the metric store.

    A failure of the filters is logged and leaves the EMF rows: the events are stored already.
    """
    rows = emf_metrics(events.column("message"), group, now_ms=now_ms).rows
    try:
        filtered = filters.metric_rows(group, events, now_ms=now_ms)
    except (duckdb.Error, ValueError, pa.ArrowException) as exc:
        log.warning("the metric filters of %s failed on a batch: %s", group, exc)
        return rows
    return pa.concat_tables([rows, filtered]) if filtered.num_rows else rows
