"""Run an ASGI app with uvicorn; SIGTERM/SIGINT trigger the app's graceful shutdown."""

from __future__ import annotations

import gc

import uvicorn
from starlette.types import ASGIApp

from shared.settings import HttpSettings

# Objects allocated between young-generation collections. The services allocate a few
# short-lived objects per event (decoded envelopes, records): at CPython's default of 700,
# collections, and the full ones they escalate to, took a third of the scorer's decode
# time in a micro-benchmark; 50,000 keeps that under a tenth for a few MB of memory.
_YOUNG_GC_THRESHOLD = 50_000


def serve(app: ASGIApp, http: HttpSettings) -> None:
    # What exists now (modules, settings, the app) lives as long as the process: frozen,
    # the collector stops re-scanning it on every full collection.
    gc.freeze()
    gc.set_threshold(_YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
    # uvicorn turns SIGTERM into a lifespan shutdown: consumers finish their batch and
    # commit, producers flush, then the process exits.
    config = uvicorn.Config(
        app,
        host=http.host,
        port=http.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=20,
    )
    uvicorn.Server(config).run()
