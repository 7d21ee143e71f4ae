"""A team's webhook handlers for Picky Assist, as a small Starlette app: delivery bookkeeping (the
event webhook) and an instant-reply bot (the incoming-message webhook).

* ``POST /picky/events``: each delivery report moves the message's state in a :class:`DeliveryBook`.
  Reports may come twice or out of order (the service retries a handler that did not answer 200, and
  makes no promise of order), so the book ignores a report that repeats one it has, or that would
  move a message back (Delivered after Read); it counts both.
* ``POST /picky/incoming``: the :class:`Bot` answers with an instant reply
  (``{"message-out": ..., "delay": 0}``): ``STOP`` opts the sender out, anything else is echoed back.
  A sender who opted out gets no reply (an empty 200).
* ``GET /picky/state``: what the handlers know, as JSON (for a dashboard, and for tests that run the
  app in another process).

``python -m picky_webhooks_app --port 0`` serves it with uvicorn and prints
``serving http://127.0.0.1:PORT``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from picky_client import parse_delivery_report, parse_inbound, reply
from picky_client.webhooks import DeliveryUpdate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["Bot", "DeliveryBook", "Tracked", "create_app"]

#: How far along a message is; a report that would move it back is out of order.
PROGRESS = {"submitted": 0, "unknown": 0, "delivered": 1, "read": 2, "failed": 3, "refunded": 4}


@dataclass
class Tracked:
    state: str = "submitted"
    history: list[str] = field(default_factory=list)
    error: str | None = None


class DeliveryBook:
    """What became of each message we sent, from the delivery reports (thread-safe)."""

    def __init__(self) -> None:
        self.messages: dict[str, Tracked] = {}
        self.duplicates = 0
        self.out_of_order = 0
        self._lock = threading.Lock()

    def apply(self, update: DeliveryUpdate) -> bool:
        """Record one report; ``False`` when it repeats one we have or would move the message back."""
        with self._lock:
            tracked = self.messages.setdefault(update.msg_id, Tracked())
            if update.state in tracked.history:
                self.duplicates += 1
                return False
            if PROGRESS.get(update.state, 0) < PROGRESS[tracked.state]:
                self.out_of_order += 1
                tracked.history.append(update.state)  # seen, but the state stays
                return False
            tracked.state = update.state
            tracked.history.append(update.state)
            tracked.error = tracked.error or update.error  # why it first failed
            return True

    def state(self, msg_id: str | int) -> str:
        tracked = self.messages.get(str(msg_id))
        return tracked.state if tracked else "submitted"

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            messages = {k: {"state": t.state, "history": t.history, "error": t.error} for k, t in self.messages.items()}
            return {
                "messages": messages,
                "duplicates": self.duplicates,
                "out_of_order": self.out_of_order,
            }


class Bot:
    """The instant-reply bot: STOP opts out, anything else is echoed."""

    def __init__(self) -> None:
        self.opted_out: set[str] = set()
        self.conversation: list[tuple[str, str, str]] = []
        """(number, "in" or "out", text), in order."""

    def answer(self, payload: Mapping[str, Any]) -> dict[str, Any] | None:
        message = parse_inbound(payload)
        self.conversation.append((message.sender, "in", message.text))
        if message.sender in self.opted_out:
            return None
        if message.text.strip().upper() == "STOP":
            self.opted_out.add(message.sender)
            text = "You will get no more messages from us."
        else:
            text = f"Thanks {message.name or 'there'}, you wrote: {message.text}"
        self.conversation.append((message.sender, "out", text))
        return reply(text)


def create_app(book: DeliveryBook | None = None, bot: Bot | None = None) -> Starlette:
    """The handlers' app; ``app.state.book`` and ``app.state.bot`` hold what they know."""
    book = book or DeliveryBook()
    bot = bot or Bot()

    async def events(request: Request) -> Response:
        try:
            event = await request.json()
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(event, dict):
            return PlainTextResponse("not a JSON object", status_code=400)
        for update in parse_delivery_report(event):
            book.apply(update)
        return PlainTextResponse("ok")  # 200: anything else and Picky Assist sends it again

    async def incoming(request: Request) -> Response:
        try:
            payload = await request.json()
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(payload, dict):
            return PlainTextResponse("not a JSON object", status_code=400)
        answer = bot.answer(payload)
        return JSONResponse(answer) if answer is not None else PlainTextResponse("")

    async def state(request: Request) -> Response:
        return JSONResponse({**book.to_json(), "opted_out": sorted(bot.opted_out), "conversation": bot.conversation})

    app = Starlette(
        routes=[
            Route("/picky/events", events, methods=["POST"]),
            Route("/picky/incoming", incoming, methods=["POST"]),
            Route("/picky/state", state, methods=["GET"]),
        ]
    )
    app.state.book = book
    app.state.bot = bot
    return app
