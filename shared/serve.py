"""Run an ASGI app with uvicorn; SIGTERM/SIGINT trigger the app's graceful shutdown."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from shared.settings import HttpSettings


def serve(app: ASGIApp, http: HttpSettings) -> None:
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
