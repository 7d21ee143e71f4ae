"""``python -m picky_webhooks_app [--port N]``: the handlers on a real socket (uvicorn)."""

from __future__ import annotations

import argparse
import socket

import uvicorn

from picky_webhooks_app import create_app

parser = argparse.ArgumentParser(prog="python -m picky_webhooks_app")
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=0, help="0: a free port")
args = parser.parse_args()

sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind((args.host, args.port))
sock.listen(128)
print(f"serving http://{args.host}:{sock.getsockname()[1]}", flush=True)
config = uvicorn.Config(create_app(), log_level="warning", access_log=False, lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
