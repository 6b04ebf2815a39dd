"""The HTTP ceiling: a bare Starlette endpoint that only parses the JSON body.

Served by uvicorn with exactly the settings the services use (``shared.serve``: uvloop,
httptools, no access log), so the difference to ingest is ingest's own work.
Usage: ``python -m bench.bare_http PORT``.
"""

from __future__ import annotations

import sys

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def events(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"ok":true}', media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/v1/events", events, methods=["POST"]), Route("/healthz", healthz)]
)


def main() -> None:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=20,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
