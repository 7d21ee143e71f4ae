"""The object tests talk to: :class:`PickyServer`, what the ``picky_server`` fixture gives.

It wraps a running :class:`~picky_mock.server.ServerThread` with the journal queries and the
assertion helpers a test needs. Failure messages show what was expected, what was received, and the
nearest matches, in the manner of pytest-httpserver.
"""

from __future__ import annotations

import difflib
import itertools
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from . import webhook_assertions
from .accounts import Account
from .clock import Clock, duration
from .errors import ServerError
from .faults import FaultBook, FaultRule
from .journal import INSTANT_REPLY, Entry, Journal, Message
from .lifecycle import LifecyclePolicy, State, Transition
from .webhook_payloads import check_url
from .webhooks import Attempt

if TYPE_CHECKING:
    import httpx

    from .backend import Backend
    from .server import ServerThread

__all__ = ["MARKER_OPTIONS", "FaultHandle", "PickyServer"]

#: The options of ``@pytest.mark.picky(...)``.
MARKER_OPTIONS = frozenset(
    {"mode", "faults", "accounts", "sessions", "seed", "rate_limit", "lifecycle", "event_webhook", "incoming_webhook"}
)

#: ``lifecycle="at_once"``: every message delivered, and read where it can be, as soon as it is accepted.
AT_ONCE: dict[str, Any] = {"deliver_after": 0, "read_after": 0}

_UNSET: Any = object()


class FaultHandle:
    """A fault rule added from a test: read its counters, remove it, or use it as a context
    manager (the rule is removed on exit)::

        with picky_server.fail_next(403):
            ...
    """

    def __init__(self, book: FaultBook, rule: FaultRule) -> None:
        self._book = book
        self.rule = rule

    @property
    def hits(self) -> int:
        """How many requests this rule fired on."""
        return self.rule.hits

    @property
    def seen(self) -> int:
        """How many requests it was tried on that met its criteria (see :class:`FaultRule`)."""
        return self.rule.seen

    def remove(self) -> None:
        self._book.discard(self.rule)

    def __enter__(self) -> FaultHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<FaultHandle {self.rule.describe()} seen={self.seen} hits={self.hits}>"


def _describe(message: Message) -> str:
    text = message.text if len(message.text) <= 60 else message.text[:59] + "…"
    return (
        f"push {message.push_id} msg {message.msg_id}: number={message.number} channel={message.channel} text={text!r}"
    )


def _first_difference(got: str, expected: str) -> int:
    """The 1-based position of the first character where ``got`` and ``expected`` differ."""
    same = 0
    for a, b in zip(got, expected, strict=False):
        if a != b:
            break
        same += 1
    return same + 1


def _differences(message: Message, wanted: Mapping[str, Any]) -> str:
    """What of ``message`` is not what was ``wanted``: ``text 'Your code is 1234' ≠ expected
    'Your code is 1235' (from character 17)``; empty when every criterion matches."""
    parts = []
    for name, expected in wanted.items():
        got = getattr(message, name)
        if str(got) == str(expected):
            continue
        part = f"{name} {got!r} ≠ expected {expected!r}"
        if name in ("text", "number"):
            part += f" (from character {_first_difference(str(got), str(expected))})"
        parts.append(part)
    return ", ".join(parts)


def _nearest(every: list[Message], wanted: Mapping[str, Any], limit: int = 3) -> list[Message]:
    """The messages closest to ``wanted``: most criteria equal first, then most alike in text and
    number (difflib's ratio, computed once per distinct value); only those with one criterion
    equal or a text or number alike (ratio 0.5 or more)."""
    if not wanted:
        return []
    likeness: dict[tuple[str, str], float] = {}

    def alike(name: str, value: str) -> float:
        key = (name, value)
        if key not in likeness:
            likeness[key] = difflib.SequenceMatcher(None, value, str(wanted[name])).ratio()
        return likeness[key]

    scored = []
    for message in every:
        same = sum(str(getattr(message, name)) == str(value) for name, value in wanted.items())
        similar = max((alike(n, str(getattr(message, n))) for n in ("text", "number") if n in wanted), default=0.0)
        if same or similar >= 0.5:
            scored.append((-same, -similar, message.msg_id, message))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored[:limit]]


class PickyServer:
    """A running picky-mock server and what it has seen."""

    def __init__(self, server: ServerThread, *, harvest: Callable[[Backend], None] | None = None) -> None:
        self._server = server
        self._markers: list[dict[str, Any]] = []
        self._mounts: list[str] = []
        self._harvest = harvest
        self._started = False

    # -- where it is -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>``."""
        return self._server.url

    @property
    def push_url(self) -> str:
        """The V4 push URL (``/api/v2/push``)."""
        return self._server.push_url

    @property
    def push_urls(self) -> list[str]:
        """Every push URL: V4, V3 (``/app/api/v2/push``) and legacy (``/beta/api/v2/push``)."""
        return self._server.push_urls

    @property
    def admin_headers(self) -> dict[str, str]:
        """The headers an HTTP call to the admin API (``/_picky/*``) sends: the admin token when the
        server has one, and the ``X-Picky-Admin`` marker an admin POST needs (picky_mock.guard)."""
        return self._server.admin_headers

    @property
    def backend(self) -> Backend:
        return self._server.backend

    @property
    def journal(self) -> Journal:
        return self._server.backend.journal

    # -- what it saw -----------------------------------------------------------------------

    @property
    def requests(self) -> list[Entry]:
        """Every request received on the API paths, accepted or not, and every instant reply sent
        (``path`` ``"instant reply"``), oldest first."""
        return self.journal.snapshot()

    def pushes(self) -> list[Entry]:
        """The accepted pushes, oldest first."""
        return self.journal.pushes()

    def messages(self, **criteria: Any) -> list[Message]:
        """Messages sent (of accepted pushes, and instant replies); see :meth:`Journal.messages`."""
        return self.journal.messages(**criteria)

    def rejected(self) -> list[Entry]:
        """Requests answered with an error."""
        return [entry for entry in self.journal.snapshot() if not entry.accepted]

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the test's starting state: empty journal, id sequences at their start, the
        configured mode, faults, accounts, sessions, rate limit and seed, then the test's
        ``@pytest.mark.picky`` options (and any :meth:`apply_marker` call) again, so that a test that
        resets between Hypothesis examples keeps the state its marker asked for. Exceptions the
        server raised and :meth:`check` has not reported yet are dropped.

        The message lifecycle goes back to the settings' (off, unless the config file sets a
        policy), and so do the webhook URLs; the clock keeps its time, and its pending timers,
        queued webhooks, recorded attempts and incoming messages are dropped, as are apps
        :meth:`mount`-ed by the test."""
        if self._started:
            self.harvest()
        self._started = True
        for origin in self._mounts:
            self.backend.webhooks.unmount(origin)
        self._mounts.clear()
        self.backend.reset()
        for options in self._markers:
            self._apply(options)

    def harvest(self) -> None:
        """Hand what the lifecycle did so far to the failure-coverage report (the plugin calls it at
        the end of each test, and :meth:`reset` before it forgets)."""
        if self._harvest is not None:
            self._harvest(self.backend)

    def set_mode(self, mode: str) -> None:
        """``strict`` or ``lenient`` until the next reset (the next test)."""
        self.backend.set_mode(mode)

    # -- faults ----------------------------------------------------------------------------

    @property
    def faults(self) -> list[FaultRule]:
        """The fault rules in force, with their counters (``seen``, ``hits``)."""
        return self.backend.faults.rules

    def add_fault(
        self,
        action: str,
        /,
        *,
        times: int | None = None,
        nth: int | None = None,
        after: int | None = None,
        probability: float | None = None,
        name: str | None = None,
        **options: Any,
    ) -> FaultHandle:
        """Add a fault rule until the end of the test (or of the ``with`` block).

        ``action`` is one of :data:`picky_mock.faults.ACTIONS`; ``options`` are its options
        (``status``, ``message``, ``body``, ``seconds``, ``low``/``high``, ``median``/``sigma`` ...)
        and its criteria (``token``, ``channel``, ``number``, ``number_prefix``, ``number_pattern``,
        ``text``, ``text_pattern``, ``path``)::

            picky_server.add_fault("http_error", status=502, number_prefix="55", times=2)
            picky_server.add_fault("latency", median=0.05, sigma=1.5, probability=0.3)
        """
        spec = {"action": action, "times": times, "nth": nth, "after": after, "probability": probability, "name": name}
        spec.update(options)
        rule = self.backend.faults.add({k: v for k, v in spec.items() if v is not None})
        return FaultHandle(self.backend.faults, rule)

    def fail_next(
        self,
        status: int | None = None,
        *,
        http: int | None = None,
        transport: str | None = None,
        times: int = 1,
        message: str | None = None,
        **when: Any,
    ) -> FaultHandle:
        """The next ``times`` matching pushes fail: with API status ``status`` (HTTP 200, as the
        real API), or HTTP status ``http``, or a transport fault (``"reset"``, ``"close"``,
        ``"hang"``, ``"answer_lost"`` ...). ``when`` narrows it (``number=``, ``channel=`` ...)."""
        chosen = [x for x in (status, http, transport) if x is not None]
        if len(chosen) != 1:
            raise TypeError("fail_next() takes exactly one of status, http= or transport=")
        if status is not None:
            return self.add_fault("api_error", status=status, message=message, times=times, **when)
        if http is not None:
            return self.add_fault("http_error", status=http, times=times, **when)
        return self.add_fault(str(transport), times=times, **when)

    def clear_faults(self) -> None:
        self.backend.faults.clear()

    def seed(self, value: int) -> None:
        """Re-seed the fault generator: the same seed and requests fire the same faults."""
        self.backend.faults.reseed(value)

    # -- accounts --------------------------------------------------------------------------

    def set_account(self, token: str, **spec: Any) -> Account:
        """Create or change an account (``balance``, ``api``, ``active``, ``official``, ``window``,
        ``templates``). Once one account exists, other tokens get 401."""
        return self.backend.accounts.set(token, **spec)

    def balance(self, token: str) -> Decimal:
        return self.backend.accounts.balance(token)

    def open_session(self, number: str | int, *, hours: float = 24.0) -> None:
        """Open the WhatsApp 24-hour window of ``number`` (free text may be sent to it)."""
        self.backend.accounts.open_session(str(number), hours=hours)

    def close_session(self, number: str | int) -> None:
        self.backend.accounts.close_session(str(number))

    def set_rate_limit(self, per_minute: int | None = 90, *, action: str = "429") -> None:
        """Turn on the documented rate limit (``None`` turns it off); ``action`` "429" or "drop"."""
        spec = None if per_minute is None else {"per_minute": per_minute, "action": action}
        self.backend.accounts.set_rate_limit(spec)

    def apply_marker(self, options: Mapping[str, Any]) -> None:
        """Apply the options of ``@pytest.mark.picky(...)``: ``mode``, ``faults``, ``accounts``,
        ``sessions``, ``seed``, ``rate_limit``, ``lifecycle`` (a policy table, ``"at_once"`` or
        ``None``), ``event_webhook`` and ``incoming_webhook`` (URLs); :meth:`reset` applies them
        again. A bad value is a :class:`ValueError` that names the option."""
        unknown = set(options) - MARKER_OPTIONS
        if unknown:
            raise TypeError(
                f"@pytest.mark.picky: unknown option(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(MARKER_OPTIONS))})"
            )
        options = _checked_marker(options)
        self._apply(options)
        self._markers.append(dict(options))

    def _apply(self, options: Mapping[str, Any]) -> None:
        if "mode" in options:
            self.set_mode(options["mode"])
        if "seed" in options:
            self.seed(options["seed"])
        for token, spec in (options.get("accounts") or {}).items():
            self.set_account(token, **spec)
        sessions = options.get("sessions") or ()
        for number in [sessions] if isinstance(sessions, (str, int)) else sessions:  # one number, or several
            self.open_session(number)
        if "rate_limit" in options:
            limit = options["rate_limit"]
            if limit is None or isinstance(limit, Mapping):  # {} turns it off, as PUT /_picky/rate-limit {} does
                self.backend.accounts.set_rate_limit(limit or None)
            else:
                self.set_rate_limit(limit)
        faults = options.get("faults") or ()
        for spec in [faults] if isinstance(faults, Mapping) else faults:  # one rule, or several
            self.backend.faults.add(spec)
        if "lifecycle" in options:
            self.backend.set_lifecycle(options["lifecycle"])
        event_url = options.get("event_webhook", _UNSET)
        incoming_url = options.get("incoming_webhook", _UNSET)
        if event_url is not _UNSET or incoming_url is not _UNSET:
            self.set_webhooks(event_url=event_url, incoming_url=incoming_url)

    # -- the message lifecycle -----------------------------------------------------------------

    @property
    def clock(self) -> Clock:
        """The server's clock (:class:`~picky_mock.clock.VirtualClock` under the fixture, unless the
        config file says ``[clock] kind = "wall"``)."""
        return self.backend.clock

    def now(self) -> float:
        """The server's time, seconds since the epoch (virtual under the fixture)."""
        return float(self.backend.clock.now())

    def deliver(
        self,
        msg_id: str | int | None = None,
        *,
        number: str | int | None = None,
        push_id: str | int | None = None,
        status: str | int | State = "delivered",
        error_message: str | None = None,
    ) -> list[Transition]:
        """Move one message (``msg_id``), every message of a push (``push_id``) or every message to a
        ``number`` to ``status`` (``"delivered"``, ``"read"``, ``"failed"``, ``"refunded"``,
        ``"unknown"``, or the number 0-5), at the clock's time; return the transitions made. The event
        webhook, when set, is POSTed for each. An illegal move (read before delivered, anything after
        refunded) raises :class:`~picky_mock.lifecycle.IllegalTransition` and moves nothing::

            picky_server.deliver(msg_id, status="read")
            picky_server.deliver(push_id=answer["push_id"], status="failed", error_message="Not on WhatsApp")
        """
        chosen = [value for value in (msg_id, number, push_id) if value is not None]
        if len(chosen) != 1:
            raise TypeError("deliver() takes exactly one of msg_id, number= or push_id=")
        transitions: list[Transition] = self.backend.deliver(
            status,
            msg_id=None if msg_id is None else str(msg_id),
            push_id=None if push_id is None else str(push_id),
            number=None if number is None else str(number),
            error_message=error_message,
        )
        return transitions

    def advance(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, days: float = 0.0) -> float:
        """Make time pass on the server's clock: every timer due meanwhile runs, in order (deliveries
        and reads of the lifecycle policy, webhook retries, instant replies, the end of 24-hour
        windows), and the webhooks they start are answered before this returns. Returns the new time::

            picky_server.advance(hours=6)   # the fourth retry of a handler that was down
        """
        total = duration(seconds=seconds, minutes=minutes, hours=hours, days=days)
        return float(self.backend.advance(total))

    def receive(
        self,
        number: str | int,
        text: str = "",
        *,
        type: int = 1,
        media: str | None = None,
        name: str | None = None,
        **more: Any,
    ) -> Any:
        """A customer writes: the incoming message is journaled, opens (or renews) the number's 24-hour
        window, and is POSTed to the incoming webhook when one is set; the handler's instant reply
        becomes a message of its own. ``more``: ``application``, ``payload`` (a button's),
        ``messenger_id``, ``context_msg_id``. Returns the incoming record (its ``unique_id``, ...)."""
        return self.backend.receive(number=str(number), text=text, type=type, media=media, name=name, **more)

    def set_webhooks(self, *, event_url: str | None = _UNSET, incoming_url: str | None = _UNSET) -> None:
        """Point the event webhook (delivery reports) and/or the incoming-message webhook at a URL
        (``None``: none) until the end of the test; a URL that is not http(s) is refused."""
        given = {k: v for k, v in (("event_url", event_url), ("incoming_url", incoming_url)) if v is not _UNSET}
        for field, url in given.items():
            if url is not None:
                check_url(url, field=field)
        self.backend.set_webhooks(**given)

    def set_lifecycle(self, policy: Mapping[str, Any] | str | None) -> None:
        """Turn the lifecycle policy on (a table as in the config file's ``[lifecycle]``, or
        ``"at_once"``) or off (``None``) until the end of the test."""
        self.backend.set_lifecycle(_lifecycle_spec(policy))

    def mount(self, app: Callable[..., Any], interface: Literal["asgi", "wsgi"] = "asgi") -> str:
        """Deliver webhooks to ``app``, an ASGI or a WSGI app of this process, without a socket;
        returns the base URL to point a webhook at (``url + "/events"``), until the end of the test::

            url = picky_server.mount(my_handlers, "wsgi")
            picky_server.set_webhooks(event_url=url + "/picky/events")
        """
        if interface not in ("asgi", "wsgi"):
            raise ValueError(f"interface: expected 'asgi' or 'wsgi', got {interface!r}")
        origin = f"http://{interface}-app-{next(_MOUNTS)}.picky.test"
        self.backend.webhooks.mount(origin, app, interface=interface)
        self._mounts.append(origin)
        return origin

    def thread(self, number: str | int, *, wait: float = 5.0) -> list[Any]:
        """The conversation with ``number``, both directions, in clock order: the messages pushed to
        it and the instant replies (``direction == "out"``), and what the customer wrote (``"in"``),
        after waiting up to ``wait`` seconds for webhooks in flight (an instant reply is made when
        the handler's answer arrives)."""
        if wait > 0:
            self.wait_webhooks(wait)
        return list(self.backend.thread(number))

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no webhook is queued or in flight (those waiting for a retry on the clock
        aside); ``False`` if some still are after ``timeout`` real seconds."""
        return bool(self.backend.webhooks.wait_idle(timeout))

    def webhooks(
        self,
        kind: str | None = None,
        url: str | None = None,
        *,
        key: str | int | None = None,
        wait: float = 5.0,
    ) -> list[Attempt]:
        """The webhook attempts recorded, oldest first (each POST: URL, payload, status, body,
        latency, error, attempt number, next retry, outcome), after waiting up to ``wait`` seconds for
        those in flight. ``kind`` ``"event"`` or ``"incoming"``; ``url`` exact or a prefix ending in
        ``*``; ``key`` the msg_id of an event, the number of an incoming message."""
        if wait > 0:
            self.wait_webhooks(wait)
        attempts: list[Attempt] = self.backend.webhooks.attempts(
            kind=kind, url=url, key=None if key is None else str(key)
        )
        return attempts

    def assert_webhook(
        self,
        kind: str = "event",
        *,
        msg_id: str | int | None = None,
        number: str | int | None = None,
        status: str | int | State | None = None,
        push_id: str | int | None = None,
        error_message: str | None = None,
        text: str | None = None,
        url: str | None = None,
        outcome: str | None = "delivered",
        attempt: int | None = None,
        count: int | None = None,
        timeout: float = 5.0,
    ) -> list[Attempt]:
        """Assert that webhook attempts of ``kind`` matching every criterion were made (``count`` of
        them, if given, else at least one), waiting up to ``timeout`` seconds for those in flight;
        return them. By default only a delivered attempt (answered 200) counts: ``outcome="retrying"``
        or ``"given up"`` asks for the others, ``outcome=None`` for any. ``status`` is a state's name
        or number; ``text`` the incoming message's text. On failure, the attempts made are listed
        with the nearest ones and what differs::

            picky_server.assert_webhook(msg_id=msg_id, status="read")
            picky_server.assert_webhook("incoming", number="5511987654321", text="STOP")
        """
        __tracebackhide__ = True
        criteria = webhook_assertions.wanted(
            {
                "kind": kind,
                "msg_id": msg_id,
                "number": number,
                "status": status,
                "push_id": push_id,
                "error_message": error_message,
                "text": text,
                "url": url,
                "outcome": outcome,
                "attempt": attempt,
            }
        )
        deadline = time.monotonic() + timeout
        while True:
            idle = self.wait_webhooks(min(0.05, max(0.0, deadline - time.monotonic())))
            every: list[Attempt] = self.backend.webhooks.attempts()
            found = webhook_assertions.matching(every, criteria)
            enough = bool(found) if count is None else len(found) == count
            if idle or time.monotonic() >= deadline or (count is None and enough):
                break
        if enough:
            return found
        shown = ", ".join(f"{k}={v!r}" for k, v in criteria.items() if k != "kind")
        wanted = f"{'a' if count is None else count} {kind} webhook attempt(s) with {shown or 'any criteria'}"
        lines = [f"expected {wanted}" + (f", found {len(found)}" if found else "")]
        lines.append(f"{len(every)} webhook attempt(s) recorded")
        lines += [f"  {webhook_assertions.describe(a)}" for a in every[-10:]]
        if len(every) > 10:
            lines.insert(2, f"  (the last 10 of {len(every)})")
        near = webhook_assertions.near_misses(every, criteria)
        if near:
            lines.append("nearest:")
            lines += near
        if not every:
            lines.append(self._why_no_webhooks(kind))
        raise AssertionError("\n".join(lines))

    def _why_no_webhooks(self, kind: str) -> str:
        """A hint for an assertion that found no attempt at all."""
        url = self.backend.event_webhook_url if kind == "event" else self.backend.incoming_webhook_url
        if url is None:
            option = "event_url" if kind == "event" else "incoming_url"
            return f"hint: no {kind} webhook URL is set (picky_server.set_webhooks({option}=...))"
        return f"hint: the {kind} webhook is {url}"

    def check(self) -> None:
        """Raise :class:`ServerError` for an exception raised inside the server since the last check."""
        __tracebackhide__ = True
        errors = self.backend.take_server_errors()
        if errors:
            raise ServerError(f"picky-mock raised {len(errors)} error(s) while serving: {errors[0]!r}") from errors[0]

    def asgi_transport(self) -> httpx.ASGITransport:
        """An in-process transport over the same backend, for ``httpx.AsyncClient`` (no socket)."""
        import httpx

        from .app import create_app

        return httpx.ASGITransport(app=create_app(self.backend))

    # -- assertions ------------------------------------------------------------------------

    def _matching(
        self, number: str | int | None, text: str | None, channel: int | None, push_id: str | int | None
    ) -> tuple[list[Message], list[Message]]:
        every = self.journal.messages()
        found = self.journal.messages(number=number, text=text, channel=channel, push_id=push_id)
        return found, every

    def _report(self, wanted: str, every: list[Message], wanted_fields: Mapping[str, Any]) -> str:
        pushes = len(self.pushes())
        replies = sum(1 for entry in self.journal.entries(path=INSTANT_REPLY))
        sources = f"{pushes} accepted push(es)" + (f" and {replies} instant reply(ies)" if replies else "")
        lines = [f"expected {wanted}", f"received {len(every)} message(s) in {sources}"]
        lines += [f"  {_describe(m)}" for m in every[:10]]
        if len(every) > 10:
            lines.append(f"  … and {len(every) - 10} more")
        near = _nearest(every, wanted_fields)
        if near:
            lines.append("nearest:")
            for message in near:
                lines.append(f"  {_describe(message)}")
                differs = _differences(message, wanted_fields)
                if differs:
                    lines.append(f"    differs: {differs}")
        rejected = self.rejected()
        if rejected:
            lines.append(f"rejected request(s): {len(rejected)}")
            lines += [f"  #{e.seq} {e.path} -> {e.status or e.http_status}: {e.error}" for e in rejected[-3:]]
        return "\n".join(lines)

    def assert_pushed(
        self,
        *,
        number: str | int | None = None,
        text: str | None = None,
        channel: int | None = None,
        push_id: str | int | None = None,
        count: int | None = None,
    ) -> list[Message]:
        """Assert that messages matching every criterion were accepted (``count`` of them, if
        given, else at least one); return them. ``number`` is matched exactly, ``text`` is contained
        in the resolved text, case-sensitively: as everywhere (:mod:`picky_mock.recipients`)."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        found, every = self._matching(number, text, channel, push_id)
        given = (("number", number), ("text", text), ("channel", channel), ("push_id", push_id))
        wanted_fields = {k: v for k, v in given if v is not None}
        criteria = ", ".join(f"{k}={v!r}" for k, v in wanted_fields.items())
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = f"{'a message' if count is None else f'{count} message(s)'} with {criteria or 'any criteria'}"
            if found:
                wanted += f", found {len(found)}"
            raise AssertionError(self._report(wanted, every, wanted_fields))
        return found

    def assert_not_pushed(
        self, *, number: str | int | None = None, text: str | None = None, channel: int | None = None
    ) -> None:
        """Assert that no accepted message matches every criterion given (as :meth:`assert_pushed`)."""
        __tracebackhide__ = True
        found, _ = self._matching(number, text, channel, None)
        if found:
            raise AssertionError(
                f"expected no message with number={number!r} text={text!r} channel={channel!r}, found:\n"
                + "\n".join(f"  {_describe(m)}" for m in found[:10])
            )

    def assert_no_duplicates(self) -> None:
        """Assert that no recipient was accepted the same text twice (a client that retried a push
        whose answer was lost double-sends: this catches it)."""
        __tracebackhide__ = True
        seen: dict[tuple[str, str], Message] = {}
        doubles = []
        for message in (m for entry in self.journal.pushes() for m in entry.messages):  # not a bot's replies
            key = (message.number, message.text)
            if key in seen:
                doubles.append((seen[key], message))
            else:
                seen[key] = message
        if doubles:
            raise AssertionError(
                f"{len(doubles)} recipient(s) received the same text twice:\n"
                + "\n".join(f"  {_describe(a)}\n    again as {_describe(b)}" for a, b in doubles[:10])
            )


_MOUNTS = itertools.count(1)


def _lifecycle_spec(policy: Mapping[str, Any] | str | None) -> Mapping[str, Any] | None:
    """A policy table from what a test gives: a table, ``"at_once"`` or ``None`` (off); checked."""
    if policy is None:
        return None
    if isinstance(policy, str):
        if policy.replace(" ", "_") != "at_once":
            raise ValueError(f"lifecycle: expected a policy table, 'at_once' or None, got {policy!r}")
        return dict(AT_ONCE)
    if not isinstance(policy, Mapping):
        raise ValueError(f"lifecycle: expected a policy table, 'at_once' or None, got {policy!r}")
    LifecyclePolicy.parse(policy)  # raises ConfigError naming the field (lifecycle.channels.3.fail_share)
    return dict(policy)


def _checked_marker(options: Mapping[str, Any]) -> dict[str, Any]:
    """The marker's lifecycle and webhook options checked now, with the option named in the error."""
    checked = dict(options)
    try:
        if "lifecycle" in checked:
            checked["lifecycle"] = _lifecycle_spec(checked["lifecycle"])
        for option in ("event_webhook", "incoming_webhook"):
            if checked.get(option) is not None:
                check_url(checked[option], field=option)
    except Exception as exc:  # ConfigError, WebhookUrlError, ValueError: one clear line
        raise ValueError(f"@pytest.mark.picky: {exc}") from None
    return checked
