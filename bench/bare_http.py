"""The HTTP ceiling: a bare Starlette endpoint that only parses the JSON body.

Served by the services' own ``shared.serve.serve`` (uvloop, httptools, no access log, the
same garbage-collector tuning), so the difference to ingest is ingest's own work.
Usage: ``python -m bench.bare_http PORT``.
"""

from __future__ import annotations

import sys

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared.serve import serve
from shared.settings import HttpSettings


async def events(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"ok":true}', media_type="application/json")


async def healthz(_request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[Route("/v1/events", events, methods=["POST"]), Route("/healthz", healthz)]
)


def main() -> None:
    serve(app, HttpSettings(host="127.0.0.1", port=int(sys.argv[1])))


if __name__ == "__main__":
    main()
