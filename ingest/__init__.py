"""Wire formats -> validated events: body decoding, field discovery, routes, metric extraction."""

from ingest.body import decompress
from ingest.decode import DecodedBatch, Rejection, decode_events
from ingest.flatten import flatten, render_number

__all__ = ["DecodedBatch", "Rejection", "decode_events", "decompress", "flatten", "render_number"]
