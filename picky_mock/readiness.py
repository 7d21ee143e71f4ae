"""Waiting for a picky-mock server to answer its health check.

A CI script that starts ``picky-mock serve`` in the background must not run its tests before the
server listens, and a fixed ``sleep`` is both slow and flaky; ``picky-mock wait`` polls
``/_picky/health`` instead and stops at the first healthy answer. Only the standard library is used,
so the check costs no import of the server.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from .errors import ConfigError, PickyMockError

__all__ = ["HEALTH_PATH", "NotReady", "health_url", "wait_until_ready"]

#: The admin endpoint that answers ``{"status": "ok", ...}`` once the server serves.
HEALTH_PATH = "/_picky/health"


class NotReady(PickyMockError):
    """The server did not answer its health check in time; the message says what was seen last."""


def health_url(url: str) -> str:
    """The health-check URL of the server at ``url`` (its base URL, or the health URL itself).

    Raises :class:`ConfigError` for anything but an ``http://`` or ``https://`` URL with a host.
    """
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{url!r} is not an http:// or https:// URL with a host, such as http://127.0.0.1:8080")
    try:
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError as exc:
        raise ConfigError(f"{url!r}: {exc}") from None
    path = parts.path.rstrip("/")
    if not path.endswith(HEALTH_PATH):
        path += HEALTH_PATH
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _probe(url: str, timeout: float) -> str | None:
    """``None`` when ``url`` answers a healthy status, else a few words on what it answered."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    # Straight to the server: an HTTP_PROXY meant for the internet must not answer for a local mock.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as reply:
            body = reply.read(65536)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        return getattr(reason, "strerror", None) or str(reason)
    except (OSError, ValueError) as exc:  # a reset, a timeout, a malformed answer
        return str(exc) or type(exc).__name__
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        return "an answer that is not picky-mock's health JSON"
    return None if status == "ok" else f"status {status!r}"


def wait_until_ready(
    url: str,
    timeout: float,
    *,
    interval: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll the health check of the server at ``url`` until it is healthy; return the URL polled.

    Raises :class:`NotReady` once ``timeout`` seconds have passed without a healthy answer (each
    probe is bounded by the time left, so the call never runs much past ``timeout``).
    """
    if not timeout >= 0:
        raise ConfigError(f"the timeout must be a number of seconds, 0 or more, not {timeout!r}")
    target = health_url(url)
    deadline = clock() + timeout
    answered = ""  # the last answer the server gave: more telling than a last probe cut short
    while True:
        left = deadline - clock()
        seen = _probe(target, max(min(left, 5.0), 0.05))
        if seen is None:
            return target
        if "timed out" not in seen:
            answered = seen
        left = deadline - clock()
        if left <= 0:
            raise NotReady(f"{target} not ready after {timeout:g}s (last: {answered or seen})")
        time.sleep(min(interval, left))
