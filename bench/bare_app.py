"""The baseline: a bare Starlette app on uvicorn that reads the request body and answers fixed bytes.

Same stack as ``picky-mock serve`` (Starlette, uvicorn, uvloop, httptools, one worker, access log
off, lifespan off, no server header) and the same answer bytes and headers, but no judging, no
journal and no logging. What picky-mock costs on top of this is what picky-mock adds.

Run: ``python bench/bare_app.py ANSWER_FILE`` prints ``serving http://127.0.0.1:PORT`` on stdout
once listening (port 0: a free one). Routes:

* ``POST /api/v2/push`` (any path, in fact): read the body, answer the current fixed answer
  (``application/json``, plus ``x-picky-request-id: 1`` as picky-mock sends one such header).
* ``PUT /_bench/answer``: the request body becomes the fixed answer (used to give the large-push
  baseline an answer of the same size as picky-mock's).

Also importable: :func:`make_app` and :func:`bind` are used in-process by the fixture-start baseline.
"""

from __future__ import annotations

import argparse
import socket
import sys

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def make_app(answer: bytes) -> Starlette:
    current = {"answer": answer}

    async def push(request: Request) -> Response:
        await request.body()
        return Response(current["answer"], 200, {"x-picky-request-id": "1"}, media_type="application/json")

    async def set_answer(request: Request) -> Response:
        current["answer"] = await request.body()
        return Response(b"{}", 200, media_type="application/json")

    return Starlette(
        routes=[
            Route("/_bench/answer", set_answer, methods=["PUT"]),
            Route("/api/v2/push", push, methods=["POST"]),
        ]
    )


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def config(app: Starlette):  # type: ignore[no-untyped-def]
    import uvicorn

    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
        workers=1,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("answer_file")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.answer_file, "rb") as handle:
        answer = handle.read()
    sock = bind(port=args.port)
    host, port = sock.getsockname()[:2]
    print(f"serving http://{host}:{port}", flush=True)
    server = uvicorn.Server(config(make_app(answer)))
    server.run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
