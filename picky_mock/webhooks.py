"""Webhook delivery: the dispatcher that POSTs, retries and records, and the event reporter.

- :class:`Dispatcher` delivers webhooks: real HTTP POSTs of JSON over sockets (aiohttp, see
  :mod:`picky_mock.webhook_senders`), from one event loop on the dispatcher's own thread, so
  :meth:`Dispatcher.submit` never blocks its caller (the push path): it appends to a queue and
  returns. Each destination (scheme, host, port) has its own queue and at most ``per_destination``
  requests in flight, so a slow, hung or dead receiver delays only its own deliveries. Deliveries that
  share a ``key`` (a msg_id) go out one after the other, in submission order, even across retries. A
  delivery not answered HTTP 200 within ``timeout`` real seconds is retried on the clock after
  ``retry_schedule`` (1 min, 15 min, 2 h, 6 h: the service's, docs/contract.md §6.3), then given up. Every
  attempt is an immutable :class:`Attempt` (URL, payload bytes, status, body up to ``body_limit``
  bytes, latency, error, attempt number, next retry, kind), the last ``retention`` of them kept.
- On a :class:`~picky_mock.clock.VirtualClock` the dispatcher is a settler: an advance waits, at each
  instant, for the POSTs its timers started, so ``advance(hours=9)`` plays the whole retry schedule
  in milliseconds (a receiver that hangs costs ``timeout`` real seconds per attempt).
- Bounds: at most ``queue_limit`` (20,000) unfinished deliveries per destination and ``max_pending``
  (100,000) in all: queued, in flight, waiting for a retry or behind an earlier delivery of the same
  key. A burst of 10,000 state changes to a slow receiver fits; past the bounds a delivery is dropped:
  :meth:`Dispatcher.submit` answers ``None``, ``dropped`` counts it (in all and per destination) and
  a warning is logged (the first drop at once, then a count at most every 5 s: the drops of a burst
  are told within 5 s of the last one). Never silent.
- :meth:`Dispatcher.attach` runs the dispatcher on an event loop already running (``picky-mock
  serve`` joins the server's own, at its ASGI lifespan startup) instead of a thread of its own: on
  one loop, a POST's work never waits for the other thread's turn at the interpreter, nor makes the
  push path wait for its. The server's handlers never block, so the deliveries never wait either.
  :meth:`Dispatcher.detach` (at lifespan shutdown) ends what is in flight and closes the senders.
  The pytest fixture keeps the thread: a handler mounted in the test's process may block.
- :meth:`Dispatcher.mount` routes an origin to an ASGI or a WSGI app in this process (no socket), for
  a test that checks its own handler. An ASGI app runs on the dispatcher's loop (it must not block);
  a WSGI app in a worker thread.
- :class:`EventReporter` is the ledger subscriber that turns each transition into an event webhook,
  honouring the report faults (never, twice, out of order).

Our choices where the contract is silent: the per-attempt ``timeout`` defaults to 10 s, not the
service's 180 s (a hung handler in a test would otherwise hold a worker for three minutes; a handler
that needs more than 10 s fails most real integrations anyway); only HTTP 200 counts as received, as
the service says (a 204 is retried: a handler that answers 204 would see duplicates in production);
the :class:`EventReporter` here POSTs one state change per POST (``data[]`` holds one item, like
the service's sample); the server's reporter, :mod:`picky_mock.event_batches`, batches changes that
queue up. Submitted, the state at acceptance, is not a change and is not POSTed.

Wiring (later): the backend owns one ``Dispatcher(clock)`` (``start()`` with the server, ``close()``
at shutdown), subscribes ``EventReporter(dispatcher, url=..., project_id=...)`` to the ledger, and
for an incoming message calls ``dispatcher.submit("incoming", url, incoming_payload(...),
key=number, on_done=...)``; ``on_done`` receives the last :class:`Attempt`, whose ``reply`` is the
parsed instant reply. Callbacks run on the dispatcher's thread and must not advance the clock.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from .clock import Clock
from .errors import ConfigError
from .lifecycle import Report, State, TrackedMessage, Transition
from .webhook_payloads import InstantReply, NoReply, check_url, event_item, event_payload, parse_instant_reply
from .webhook_payloads import origin as _origin_of
from .webhook_senders import AsgiSender, HttpSender, Sender, WsgiSender

__all__ = ["DEFAULT_RETRY_SCHEDULE", "Attempt", "Dispatcher", "DropLog", "EventReporter", "Kind"]

log = logging.getLogger("picky_mock")


class DropLog:
    """What a bounded queue dropped, said in the log, never silently: the first drop at once, then
    a count at most every ``interval`` real seconds; the drops of a burst that ends within an
    interval are told when it is over (``remind(delay, callback)`` schedules that; when it cannot,
    with the next warning)."""

    def __init__(self, name: str, what: str, remind: Callable[[float, Callable[[], None]], bool]) -> None:
        self.name = name
        self.what = what
        self.remind = remind
        self.interval = 5.0
        self._lock = threading.Lock()
        self._unlogged = 0
        self._total = 0
        self._last = 0.0
        self._due = False

    def dropped(self, count: int, total: int, context: Callable[[], str], *, first: bool = False) -> None:
        """``count`` more dropped, ``total`` in all; ``context()`` says why, in a warning now if
        ``first`` or the interval is over."""
        with self._lock:
            self._unlogged += count
            self._total = total
            now = time.monotonic()
            if first or total == count or now - self._last >= self.interval:
                log.warning("%s: %s: dropped %d %s (%d in all)", self.name, context(), self._unlogged, self.what, total)
                self._last, self._unlogged = now, 0
                return
            if self._due:
                return
            self._due = True
        if not self.remind(self.interval, self._tell):
            with self._lock:
                self._due = False

    def _tell(self) -> None:
        with self._lock:
            self._due = False
            if self._unlogged:
                log.warning("%s: dropped %d more %s (%d in all)", self.name, self._unlogged, self.what, self._total)
                self._last, self._unlogged = time.monotonic(), 0

    def reset(self) -> None:
        with self._lock:
            self._unlogged = self._total = 0

#: Retry delays after the 1st, 2nd, 3rd and 4th failed attempt (docs/contract.md §6.3); the 5th is the last.
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (60.0, 900.0, 7200.0, 21600.0)

Kind = Literal["event", "incoming"]


# -- attempts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of one delivery (immutable)."""

    delivery: int
    """The delivery's id (its attempts share it)."""
    kind: str
    """``event`` or ``incoming``."""
    key: str | None
    """What the delivery is about: the msg_id of an event, the number of an incoming message."""
    url: str
    payload: bytes
    attempt: int
    """1 for the first POST, 2 for the first retry, ..."""
    at: float
    """Clock time the POST started."""
    status: int | None
    """The receiver's HTTP status; ``None`` when there was none (refused, timed out)."""
    body: bytes
    """The receiver's answer, cut to ``body_limit`` bytes."""
    latency: float
    """Real seconds from sending to the answer (or the error)."""
    error: str | None
    next_retry: float | None
    """Clock time of the next attempt; ``None`` when delivered or given up."""
    outcome: str
    """``delivered``, ``retrying`` or ``given up``."""
    reply: InstantReply | NoReply | None = None
    """For an incoming message answered 200: the instant reply, or why there is none."""

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"

    def json(self) -> Any:
        """The payload, decoded."""
        return orjson.loads(self.payload)

    def to_json(self) -> dict[str, Any]:
        reply: dict[str, Any] | None = None
        if isinstance(self.reply, InstantReply):
            reply = {"message-out": self.reply.text, "delay": self.reply.delay, **self.reply.extra}
        elif isinstance(self.reply, NoReply):
            reply = {"none": self.reply.reason}
        return {
            "delivery": self.delivery,
            "kind": self.kind,
            "key": self.key,
            "url": self.url,
            "payload": self.payload.decode("utf-8", "replace"),
            "attempt": self.attempt,
            "at": self.at,
            "status": self.status,
            "body": self.body.decode("utf-8", "replace"),
            "latency": self.latency,
            "error": self.error,
            "next_retry": self.next_retry,
            "outcome": self.outcome,
            "reply": reply,
        }


# -- the dispatcher -------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Delivery:
    id: int
    kind: str
    key: str | None
    url: str
    origin: str
    payload: bytes
    on_done: Callable[[Attempt], None] | None
    attempts: int = 0


class _Destination:
    __slots__ = ("active", "dropped", "origin", "pending", "queue")

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.queue: deque[_Delivery] = deque()
        self.active = 0
        """Workers running for this destination."""
        self.pending = 0
        """Unfinished deliveries (queued, in flight, waiting for a retry or behind their key)."""
        self.dropped = 0


class Dispatcher:
    """Delivers webhooks from its own thread and event loop (or one it joins: :meth:`attach`); see
    the module's docstring.

    ``timeout``: real seconds per attempt. ``retry_schedule``: clock seconds to wait after each failed
    attempt (its length + 1 attempts in all). ``per_destination``: concurrent POSTs to one origin.
    ``queue_limit`` / ``max_pending``: unfinished deliveries per destination / in all, beyond which a
    new one is dropped, counted and logged (:class:`DropLog`, ``drop_log``).
    ``retention``: attempts kept (older ones are forgotten and counted in ``forgotten``).
    ``body_limit``: bytes of the receiver's answer kept in an :class:`Attempt`.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        timeout: float = 10.0,
        retry_schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        per_destination: int = 8,
        queue_limit: int = 20_000,
        max_pending: int = 100_000,
        retention: int = 10_000,
        body_limit: int = 4096,
        sender: Sender | None = None,
        settle_on_clock: bool = True,
    ) -> None:
        if not (isinstance(timeout, (int, float)) and 0 < timeout <= 3600):
            raise ConfigError(f"webhook timeout: expected 0 < seconds <= 3600, got {timeout!r}")
        if any(not isinstance(d, (int, float)) or not 0 <= d <= 366 * 86400 for d in retry_schedule):
            raise ConfigError(f"webhook retry schedule: expected delays in seconds, got {list(retry_schedule)!r}")
        for name, value in (
            ("per_destination", per_destination),
            ("queue_limit", queue_limit),
            ("max_pending", max_pending),
            ("retention", retention),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"webhook {name}: expected a positive integer, got {value!r}")
        self.clock = clock
        self.timeout = float(timeout)
        self.retry_schedule = tuple(float(d) for d in retry_schedule)
        self.per_destination = per_destination
        self.queue_limit = queue_limit
        self.max_pending = max_pending
        self.body_limit = body_limit
        self.sender: Sender = sender if sender is not None else HttpSender(per_host=per_destination)
        self._mounts: dict[str, Sender] = {}
        self._origins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._destinations: dict[str, _Destination] = {}
        self._keys: dict[str, deque[_Delivery]] = {}
        """Per key: the deliveries waiting behind the key's unfinished one (present while one is)."""
        self._ids = 0
        self._pending = 0
        self._busy = 0
        """Deliveries queued or in flight (not waiting on the clock): what a settle waits for."""
        self._attempts: deque[Attempt] = deque(maxlen=retention)
        self.forgotten = 0
        self.dropped = 0
        self.delivered = 0
        self.given_up = 0
        self.drop_log = DropLog("webhooks", "deliveries", self.remind)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        """The thread the loop runs in: the dispatcher's own, or the one :meth:`attach` joined."""
        self._attached = False
        self._closed = False
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._remove_settler = clock.add_settler(self.wait_idle) if settle_on_clock else None

    # -- life -------------------------------------------------------------------------------------
    def start(self) -> Dispatcher:
        """Start the dispatcher's thread and loop (idempotent); returns the dispatcher."""
        with self._lock:
            if self._thread is not None:
                return self
            self._closed = False
            self._thread = threading.Thread(target=self._run, name="picky-mock-webhooks", daemon=True)
            self._thread.start()
        self._ready.wait(10.0)
        return self

    def attach(self, like: Dispatcher | None = None) -> Dispatcher:
        """Deliver from the event loop running in the calling thread (or the loop another attached
        dispatcher, ``like``, runs on), not a thread of its own; see the module's docstring. Call
        it before :meth:`start`. Idempotent; once started in a thread, does nothing. Returns the
        dispatcher."""
        if like is not None and like._attached and like._loop is not None and like._thread is not None:
            loop, thread = like._loop, like._thread
        else:
            loop, thread = asyncio.get_running_loop(), threading.current_thread()
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = thread
            self._loop = loop
            self._attached = True
            self._closed = False
        loop.call_soon_threadsafe(self._kick_all)
        self._ready.set()
        return self

    @property
    def attached(self) -> bool:
        """Whether the dispatcher runs on a loop it joined (:meth:`attach`)."""
        return self._attached

    async def detach(self) -> None:
        """Stop delivering from the loop :meth:`attach` joined: deliveries in flight are cancelled,
        queued ones dropped (not counted), senders closed. Call it on that loop, before it stops."""
        if not self._attached:
            return
        await self._shutdown()
        self._forget_loop()

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sender in {id(s): s for s in (self.sender, *self._mounts.values())}.values():
            await sender.close()

    def _forget_loop(self) -> None:
        with self._lock:
            self._thread = self._loop = None
            self._attached = False
            self._destinations.clear()
            self._keys.clear()
            self._pending = self._busy = 0
            self._idle.notify_all()
        self._ready.clear()

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop is a dependency where it installs
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(self._kick_all)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop: deliveries in flight are cancelled, queued ones dropped (not counted), senders closed."""
        if self._remove_settler is not None:
            self._remove_settler()
            self._remove_settler = None
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._attached:  # the loop is someone else's: end the work under way there, without waiting
            self._closed = True  # an answer that arrives before the cancellation records nothing
            if threading.current_thread() is thread:
                for task in list(self._tasks):
                    task.cancel()
            if loop.is_running():
                try:
                    asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                except RuntimeError:  # pragma: no cover - the loop closed meanwhile
                    pass
            self._forget_loop()
            return
        if loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
            except Exception:  # pragma: no cover - shutting down anyway
                log.debug("webhook dispatcher shutdown", exc_info=True)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._forget_loop()

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mount(self, base: str, app: Callable[..., Any], *, interface: Literal["asgi", "wsgi"] = "asgi") -> None:
        """Deliver URLs of ``base``'s origin (``http://handler.test``) to ``app`` in this process, no socket."""
        check_url(base, field="origin")
        self._mounts[_origin_of(base)] = AsgiSender(app) if interface == "asgi" else WsgiSender(app)

    def unmount(self, base: str) -> None:
        self._mounts.pop(_origin_of(base), None)

    # -- submitting -------------------------------------------------------------------------------
    def submit(
        self,
        kind: Kind,
        url: str,
        payload: Mapping[str, Any] | bytes,
        *,
        key: str | None = None,
        on_done: Callable[[Attempt], None] | None = None,
    ) -> int | None:
        """Queue a POST of ``payload`` (JSON) to ``url``; returns the delivery id, or ``None`` if dropped.

        Never blocks and never does I/O; a URL that is not http(s) raises :class:`WebhookUrlError`.
        Deliveries with the same ``key`` go out in submission order, each after the one before is
        delivered or given up. ``on_done(attempt)`` is called (on the
        dispatcher's thread) with the last attempt once delivered or given up.
        """
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        origin = self._origins.get(url)
        if origin is None:
            origin = _origin_of(check_url(url))
            if len(self._origins) >= 1024:  # a bounded cache: URLs are few, but may come from anywhere
                self._origins.clear()
            self._origins[url] = origin
        with self._lock:
            destination = self._destinations.get(origin)
            if destination is None:
                destination = self._destinations[origin] = _Destination(origin)
            if destination.pending >= self.queue_limit or self._pending >= self.max_pending:
                self._drop(destination)
                return None
            self._ids += 1
            delivery = _Delivery(self._ids, kind, key, url, origin, body, on_done)
            destination.pending += 1
            self._pending += 1
            if key is not None:
                waiting = self._keys.get(key)
                if waiting is not None:
                    waiting.append(delivery)
                    return delivery.id
                self._keys[key] = deque()
            self._enqueue(destination, delivery)
            return delivery.id

    def _drop(self, destination: _Destination) -> None:
        destination.dropped += 1
        self.dropped += 1
        self.drop_log.dropped(
            1,
            self.dropped,
            lambda: f"queue full ({destination.pending} unfinished for {destination.origin}, {self._pending} in all)",
            first=destination.dropped == 1,
        )

    def remind(self, delay: float, callback: Callable[[], None]) -> bool:
        """Call ``callback()`` on the dispatcher's loop ``delay`` real seconds from now, without
        keeping the dispatcher busy (:meth:`later` does); False, and nothing scheduled, when it
        is not running. Safe to call with the dispatcher's lock held."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(loop.call_later, delay, callback)
        except RuntimeError:  # the loop is closing
            return False
        return True

    def _enqueue(self, destination: _Destination, delivery: _Delivery) -> None:
        """Put a delivery on its destination's queue and start a worker if one is free (lock held)."""
        destination.queue.append(delivery)
        self._busy += 1
        if destination.active < self.per_destination and len(destination.queue) > 0:
            destination.active += 1
            loop = self._loop
            if loop is None:
                destination.active -= 1  # not started: the queue waits for start()
                return
            try:
                if self._attached and threading.current_thread() is self._thread:
                    loop.call_soon(self._spawn, destination)  # the push path, on the loop: no wake-up needed
                else:
                    loop.call_soon_threadsafe(self._spawn, destination)
            except RuntimeError:  # the loop closed meanwhile (close() is under way)
                destination.active -= 1

    def _kick_all(self) -> None:
        """Start workers for what was queued before the loop ran (on the loop)."""
        with self._lock:
            for destination in self._destinations.values():
                while destination.active < self.per_destination and destination.active < len(destination.queue):
                    destination.active += 1
                    self._spawn(destination)

    def _spawn(self, destination: _Destination) -> None:
        task = asyncio.get_running_loop().create_task(self._worker(destination))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, destination: _Destination) -> None:
        try:
            while True:
                with self._lock:
                    if not destination.queue or self._closed:
                        destination.active -= 1
                        return
                    delivery = destination.queue.popleft()
                try:
                    await self._attempt(delivery)
                except asyncio.CancelledError:
                    raise
                except Exception:  # pragma: no cover - a bug of ours: the delivery ends, the worker goes on
                    log.exception("webhook delivery %d to %s failed inside the dispatcher", delivery.id, delivery.url)
                    self._finish(delivery)
        except asyncio.CancelledError:
            with self._lock:
                destination.active -= 1
            raise

    async def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempts += 1
        at = self.clock.now()
        sender = self._mounts.get(delivery.origin, self.sender)
        status: int | None = None
        answer = b""
        error: str | None = None
        started = time.perf_counter()
        try:
            status, answer = await sender.send(delivery.url, delivery.payload, self.timeout)
            if self._closed:  # closed while the answer came: a reset has forgotten this delivery
                return
        except asyncio.TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        latency = time.perf_counter() - started
        if status is not None and status != 200:
            error = f"HTTP {status}, not 200"
        reply: InstantReply | NoReply | None = None
        if delivery.kind == "incoming" and status == 200:
            reply = parse_instant_reply(answer, status=status)
        retry_in: float | None = None
        if error is not None and delivery.attempts <= len(self.retry_schedule):
            retry_in = self.retry_schedule[delivery.attempts - 1]
        outcome = "delivered" if error is None else ("retrying" if retry_in is not None else "given up")
        record = Attempt(
            delivery=delivery.id,
            kind=delivery.kind,
            key=delivery.key,
            url=delivery.url,
            payload=delivery.payload,
            attempt=delivery.attempts,
            at=at,
            status=status,
            body=answer[: self.body_limit],
            latency=latency,
            error=error,
            next_retry=None if retry_in is None else at + retry_in,
            outcome=outcome,
            reply=reply,
        )
        with self._lock:
            if len(self._attempts) == self._attempts.maxlen:
                self.forgotten += 1
            self._attempts.append(record)
        if retry_in is not None:
            self.clock.call_at(at + retry_in, self._retry, delivery)
            self._done_busy()
            return
        if outcome == "delivered":
            self.delivered += 1
        else:
            self.given_up += 1
            log.warning(
                "webhook %s to %s given up after %d attempts: %s", delivery.kind, delivery.url, delivery.attempts, error
            )
        if delivery.on_done is not None:
            try:
                delivery.on_done(record)
            except Exception:
                log.exception("webhook on_done callback failed")
        self._finish(delivery)

    def _retry(self, delivery: _Delivery) -> None:
        with self._lock:
            destination = self._destinations.get(delivery.origin)
            if destination is None:  # closed meanwhile
                return
            self._enqueue(destination, delivery)

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the dispatcher's thread ``delay`` real seconds from now; until it
        has run, the dispatcher is not idle (:meth:`wait_idle` waits for it). When the dispatcher
        is not started, or is stopping, it is called at once, on the caller's thread."""
        loop = self._loop
        if loop is None:
            callback()
            return
        with self._lock:
            self._busy += 1

        def run() -> None:
            try:
                callback()
            finally:
                self._done_busy()

        try:
            if threading.current_thread() is self._thread:
                loop.call_later(delay, run)
            else:
                loop.call_soon_threadsafe(loop.call_later, delay, run)
        except RuntimeError:  # the loop is closing (the dispatcher stops): no waiting
            run()

    def _done_busy(self) -> None:
        with self._lock:
            self._busy -= 1
            if self._busy <= 0:
                self._idle.notify_all()

    def _finish(self, delivery: _Delivery) -> None:
        with self._lock:
            destination = self._destinations.get(delivery.origin)
            if destination is not None:
                destination.pending -= 1
            self._pending -= 1
            self._busy -= 1
            if delivery.key is not None:
                waiting = self._keys.get(delivery.key)
                if waiting:
                    following = waiting.popleft()
                    target = self._destinations.get(following.origin)
                    if target is not None:
                        self._enqueue(target, following)
                else:
                    self._keys.pop(delivery.key, None)
            if self._busy <= 0:
                self._idle.notify_all()

    # -- observing --------------------------------------------------------------------------------
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued or in flight (deliveries waiting on the clock may remain)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._loop is None or threading.current_thread() is self._thread:
                # Not started, or asked from a delivery (an in-process app that advances the clock):
                # waiting would wait for the caller itself.
                return self._busy == 0
            while self._busy > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
            return True

    def attempts(
        self, *, kind: str | None = None, url: str | None = None, key: str | None = None
    ) -> list[Attempt]:
        """Recorded attempts, oldest first, filtered by kind, URL (exact, or a prefix ending in ``*``) and key."""
        with self._lock:
            found: Iterable[Attempt] = list(self._attempts)
        if kind is not None:
            found = [a for a in found if a.kind == kind]
        if url is not None:
            prefix = url[:-1] if url.endswith("*") else None
            found = [a for a in found if (a.url.startswith(prefix) if prefix is not None else a.url == url)]
        if key is not None:
            found = [a for a in found if a.key == key]
        return list(found)

    def renew(self) -> bool:
        """Start afresh in place when nothing is under way: forget the attempts, the counters and
        the mounted apps, and keep the running loop (a reset between tests then costs no thread).
        False, and nothing changed, while deliveries are pending: the caller replaces it."""
        with self._lock:
            if self._pending or self._keys:
                return False
            self._attempts.clear()
            self._mounts.clear()
            self.forgotten = self.dropped = self.delivered = self.given_up = 0
            self.drop_log.reset()
            for destination in self._destinations.values():
                destination.dropped = 0
            return True

    def clear(self) -> None:
        """Forget the recorded attempts and the counters (pending deliveries go on)."""
        with self._lock:
            self._attempts.clear()
            self.forgotten = self.dropped = self.delivered = self.given_up = 0
            self.drop_log.reset()
            for destination in self._destinations.values():
                destination.dropped = 0

    def stats(self) -> dict[str, Any]:
        """Counters, for the admin API and the coverage report."""
        with self._lock:
            return {
                "pending": self._pending,
                "busy": self._busy,
                "delivered": self.delivered,
                "given_up": self.given_up,
                "dropped": self.dropped,
                "forgotten": self.forgotten,
                "destinations": {
                    d.origin: {"pending": d.pending, "queued": len(d.queue), "active": d.active, "dropped": d.dropped}
                    for d in self._destinations.values()
                },
            }


# -- the event reporter ---------------------------------------------------------------------------


class EventReporter:
    """A ledger subscriber that POSTs each state change to the project's event webhook.

    ``url(message)`` gives the URL for a message (``None``: no webhook, nothing sent) and
    ``project_id(message)`` its project. The first record (Submitted at acceptance) is not a change
    and is not sent. Report faults: ``never`` sends nothing, ``twice`` sends the same POST two times,
    ``out of order`` holds the report until the message's next one has been queued (or ``hold`` clock
    seconds have passed).
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        url: Callable[[TrackedMessage], str | None],
        project_id: Callable[[TrackedMessage], str],
        hold: float = 60.0,
    ) -> None:
        self.dispatcher = dispatcher
        self.url = url
        self.project_id = project_id
        self.hold = hold
        self._held: dict[str, tuple[str, bytes, Any]] = {}
        self._lock = threading.Lock()
        self.suppressed = 0
        """Reports not sent because of a ``never`` fault."""

    def __call__(self, transition: Transition, message: TrackedMessage) -> None:
        if transition.previous is None and transition.state is State.SUBMITTED:
            return
        url = self.url(message)
        if url is None:
            return
        body = orjson.dumps(event_payload(self.project_id(message), [event_item(message, transition)]))
        if transition.report is Report.NEVER:
            self.suppressed += 1
            return
        if transition.report is Report.OUT_OF_ORDER:
            timer = self.dispatcher.clock.call_later(self.hold, self._release, message.msg_id)
            with self._lock:
                earlier = self._held.pop(message.msg_id, None)
                self._held[message.msg_id] = (url, body, timer)
            if earlier is not None:  # two held in a row: the first goes now
                earlier[2].cancel()
                self.dispatcher.submit("event", earlier[0], earlier[1], key=message.msg_id)
            return
        self.dispatcher.submit("event", url, body, key=message.msg_id)
        if transition.report is Report.TWICE:
            self.dispatcher.submit("event", url, body, key=message.msg_id)
        self._release(message.msg_id)

    def _release(self, msg_id: str) -> None:
        with self._lock:
            held = self._held.pop(msg_id, None)
        if held is not None:
            held[2].cancel()
            self.dispatcher.submit("event", held[0], held[1], key=msg_id)
