"""The object tests talk to: :class:`PickyServer`, what the ``picky_server`` fixture gives.

It wraps a running :class:`~picky_mock.server.ServerThread` with the journal queries and the
assertion helpers a test needs. Failure messages show what was expected, what was received, and the
nearest matches, in the manner of pytest-httpserver.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .errors import ServerError
from .journal import Entry, Journal, Message

if TYPE_CHECKING:
    import httpx

    from .backend import Backend
    from .server import ServerThread

__all__ = ["PickyServer"]


def _describe(message: Message) -> str:
    text = message.text if len(message.text) <= 60 else message.text[:59] + "…"
    return f"push {message.push_id} msg {message.msg_id}: number={message.number} channel={message.channel} text={text!r}"


class PickyServer:
    """A running picky-mock server and what it has seen."""

    def __init__(self, server: ServerThread) -> None:
        self._server = server

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
    def backend(self) -> Backend:
        return self._server.backend

    @property
    def journal(self) -> Journal:
        return self._server.backend.journal

    # -- what it saw -----------------------------------------------------------------------

    @property
    def requests(self) -> list[Entry]:
        """Every request received on the API paths, accepted or not, oldest first."""
        return self.journal.snapshot()

    def pushes(self) -> list[Entry]:
        """The accepted pushes, oldest first."""
        return self.journal.pushes()

    def messages(self, **criteria: Any) -> list[Message]:
        """Messages of accepted pushes; see :meth:`Journal.messages` for the criteria."""
        return self.journal.messages(**criteria)

    def rejected(self) -> list[Entry]:
        """Requests answered with an error."""
        return [entry for entry in self.journal.snapshot() if not entry.accepted]

    # -- control ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty the journal, restart the id sequences, restore the configured mode."""
        self.backend.reset()

    def set_mode(self, mode: str) -> None:
        """``strict`` or ``lenient`` until the next reset (the next test)."""
        if mode not in ("strict", "lenient"):
            raise ValueError(f"mode must be 'strict' or 'lenient', not {mode!r}")
        self.backend.mode = mode  # type: ignore[assignment]

    def check(self) -> None:
        """Raise :class:`ServerError` for an exception raised inside the server since the last check."""
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
        found = []
        for message in every:
            if number is not None and message.number != str(number):
                continue
            if text is not None and message.text != text:
                continue
            if channel is not None and message.channel != channel:
                continue
            if push_id is not None and message.push_id != str(push_id):
                continue
            found.append(message)
        return found, every

    def _report(self, wanted: str, every: list[Message], number: str | int | None, text: str | None) -> str:
        lines = [f"expected {wanted}", f"received {len(every)} message(s) in {len(self.pushes())} accepted push(es)"]
        lines += [f"  {_describe(m)}" for m in every[:10]]
        if len(every) > 10:
            lines.append(f"  … and {len(every) - 10} more")
        near: Iterable[Message] = ()
        if text is not None:
            texts = difflib.get_close_matches(text, list({m.text for m in every}), n=3, cutoff=0.5)
            near = [m for m in every if m.text in texts][:3]
        if number is not None and not near:
            numbers = difflib.get_close_matches(str(number), list({m.number for m in every}), n=3, cutoff=0.6)
            near = [m for m in every if m.number in numbers][:3]
        if near:
            lines.append("nearest:")
            lines += [f"  {_describe(m)}" for m in near]
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
        given, else at least one); return them. ``text`` is the resolved text, matched exactly."""
        found, every = self._matching(number, text, channel, push_id)
        criteria = ", ".join(
            f"{k}={v!r}"
            for k, v in (("number", number), ("text", text), ("channel", channel), ("push_id", push_id))
            if v is not None
        )
        if (count is None and not found) or (count is not None and len(found) != count):
            wanted = f"{'a message' if count is None else f'{count} message(s)'} with {criteria or 'any criteria'}"
            if found:
                wanted += f", found {len(found)}"
            raise AssertionError(self._report(wanted, every, number, text))
        return found

    def assert_not_pushed(
        self, *, number: str | int | None = None, text: str | None = None, channel: int | None = None
    ) -> None:
        """Assert that no accepted message matches every criterion given."""
        found, every = self._matching(number, text, channel, None)
        if found:
            raise AssertionError(
                f"expected no message with number={number!r} text={text!r} channel={channel!r}, found:\n"
                + "\n".join(f"  {_describe(m)}" for m in found[:10])
            )

    def assert_no_duplicates(self) -> None:
        """Assert that no recipient was accepted the same text twice (a client that retried a push
        whose answer was lost double-sends: this catches it)."""
        seen: dict[tuple[str, str], Message] = {}
        doubles = []
        for message in self.journal.messages():
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
