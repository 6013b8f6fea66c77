"""The baseline for the ingest benchmark: a parse-only FastAPI endpoint.

``POST /parse`` reads the body, runs ``orjson.loads`` on every non-blank line, discards the
results and answers ``{"accepted": n}``: no auth, no validation, no storage, no fsync. It is
served by uvicorn with the same settings as ``watchkeep serve`` (one worker).
"""

from __future__ import annotations

import orjson
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


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
