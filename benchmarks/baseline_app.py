"""The baseline for the ingest benchmark: a parse-only FastAPI endpoint.

``POST /parse`` reads the body, runs ``orjson.loads`` on every non-blank line, discards the
results and answers ``{"accepted": n}``: no auth, no validation, no storage, no fsync. It is
served by uvicorn with the same settings as ``watchkeep serve`` (one worker).

``POST /parse-columns`` is the floor of durable ingest's own work: it turns the body into Arrow
columns with ``pyarrow.json`` (one block, in the handler, as watchkeep's decoder does) and
discards them. It has no auth, validation, WAL, fsync or Parquet either, so no server that
stores columns from this reader can ingest faster than this route on the same machine.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.json as pj
from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/parse")
async def parse(request: Request) -> dict[str, int]:
    body = await request.body()
    n = 0
    for line in body.splitlines():
        if line.strip():
            orjson.loads(line)
            n += 1
    return {"accepted": n}


@app.post("/parse-columns")
async def parse_columns(request: Request) -> dict[str, int]:
    body = await request.body()
    options = pj.ReadOptions(use_threads=False, block_size=len(body) + 1)
    table = pj.read_json(pa.py_buffer(body), read_options=options)
    return {"accepted": table.num_rows}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
