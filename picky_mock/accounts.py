"""The account model: tokens, balances, plans, official channels, templates, the WhatsApp 24-hour
window and the rate limit (docs/contract.md §4, docs/accounts.md).

Open by default: with no account configured, any non-blank token is accepted with an unlimited
balance. Once one account is configured, only configured tokens are (others: 401), each with:

* ``balance`` (``None``: unlimited), debited by each accepted push; a push it cannot pay is 403 and
  nothing is sent or debited;
* ``api = false``: 405 API Is Not Active For This Plan; ``active = false``: 408 Project is not Active;
* ``official = false``: a push on an Official, Cloud or Business API channel (8, 101, 121) is 801;
* ``templates``: the approved template ids; any other ``template_id`` is 804 (``None``: not checked);
* ``window`` (default true): on an official channel, free text (no template) to a number without
  an open session is 802 (the WhatsApp 24-hour window). Open mode does not enforce it. Sessions
  are opened and closed from tests, the config or the admin API.

The rate limit (off by default) counts push requests a token made in the last 60 s; past the limit
a request is answered HTTP 429 with ``Retry-After``, or "dropped": answered like a success and not
processed, as the docs say ("will be dropped and won't be processed").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from .errors import ConfigError
from .pricing import parse_amount

__all__ = ["MAX_ACCOUNTS", "MAX_SESSIONS", "OFFICIAL_CHANNELS", "Account", "AccountBook", "RateLimit"]

#: WhatsApp Official (8), Cloud API (101), Business API / Official Managed (121).
OFFICIAL_CHANNELS = frozenset({8, 101, 121})
#: [ours] The balance check-balance reports for an account without a configured balance.
UNLIMITED_BALANCE_REPORTED = Decimal("999999")
MAX_ACCOUNTS = 10_000
"""Accounts one server holds: a test suite needs a handful; a runaway loop is refused, not kept."""
MAX_SESSIONS = 100_000
"""Open 24-hour windows one server holds (expired ones are dropped to make room)."""
MAX_TOKEN_LENGTH = 1024
"""An account's token, in characters."""
MAX_SESSION_HOURS = 87_600.0
"""Ten years: a session longer than this is no window (negative hours close it at once)."""
MAX_PER_MINUTE = 1_000_000
"""The highest rate limit (the docs say 90 a minute)."""


@dataclass(frozen=True)
class Account:
    token: str
    balance: Decimal | None = None
    api: bool = True
    active: bool = True
    official: bool = True
    window: bool = True
    """Enforce the 24-hour window on official channels (802)."""
    templates: frozenset[str] | None = None

    @classmethod
    def from_dict(cls, token: str, spec: Mapping[str, Any]) -> Account:
        known = {"balance", "api", "active", "official", "window", "templates", "sessions"}
        unknown = set(spec) - known
        if unknown:
            raise ConfigError(
                f"account {token!r}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
            )
        balance = spec.get("balance")
        if balance is not None:
            balance = parse_amount(f"account {token!r}: balance", balance)
        templates = spec.get("templates")
        for flag in ("api", "active", "official", "window"):
            if flag in spec and not isinstance(spec[flag], bool):
                raise ConfigError(f"account {token!r}: {flag} must be true or false")
        if templates is not None and not isinstance(templates, (list, tuple, set, frozenset)):
            raise ConfigError(f"account {token!r}: templates must be a list of template ids")
        return cls(
            token=token,
            balance=balance,
            api=spec.get("api", True),
            active=spec.get("active", True),
            official=spec.get("official", True),
            window=spec.get("window", True),
            templates=None if templates is None else frozenset(str(t) for t in templates),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "balance": None if self.balance is None else str(self.balance),
            "api": self.api,
            "active": self.active,
            "official": self.official,
            "window": self.window,
            "templates": None if self.templates is None else sorted(self.templates),
        }


#: What any token is in open mode (its ``token`` field is not the caller's).
_OPEN_ACCOUNT = Account(token="*", official=True, window=False)


@dataclass(frozen=True)
class RateLimit:
    per_minute: int = 90
    action: str = "429"
    """``"429"``: answer HTTP 429 with Retry-After; ``"drop"``: answer like a success, process nothing."""

    def __post_init__(self) -> None:
        if self.per_minute < 1:
            raise ConfigError("rate_limit: per_minute must be >= 1")
        if self.per_minute > MAX_PER_MINUTE:
            raise ConfigError(f"rate_limit: per_minute must be at most {MAX_PER_MINUTE}, not {self.per_minute}")
        if self.action not in ("429", "drop"):
            raise ConfigError('rate_limit: action must be "429" or "drop"')


@dataclass
class _State:
    accounts: dict[str, Account] = field(default_factory=dict)
    sessions: dict[str, float] = field(default_factory=dict)
    rate_limit: RateLimit | None = None


class AccountBook:
    """The accounts of one server. ``reset()`` returns to what the config said."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        rate_limit: Mapping[str, Any] | None = None,
        sessions: Any = None,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        """``config``: token -> account table; ``sessions``: numbers whose 24-hour window is open
        from the start (also given per account, as ``sessions = [...]``); ``now``: the clock the
        24-hour windows run on (the backend's, so that a virtual clock closes them)."""
        self._now = now
        self._lock = threading.Lock()
        self._initial = _State()
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError("accounts must be a table of [accounts.<token>] tables")
        for token, spec in (config or {}).items():
            if not isinstance(spec, Mapping):
                raise ConfigError(f"accounts: [accounts.{token}] must be a table")
            self._initial.accounts[str(token)] = Account.from_dict(str(token), spec)
            if len(self._initial.accounts) > MAX_ACCOUNTS:
                raise ConfigError(f"accounts: more than {MAX_ACCOUNTS} accounts")
            for number in _numbers(f"accounts.{token}.sessions", spec.get("sessions")):
                self._initial.sessions[number] = float("inf")
        for number in _numbers("sessions", sessions):
            self._initial.sessions[number] = float("inf")
        if len(self._initial.sessions) > MAX_SESSIONS:
            raise ConfigError(f"sessions: more than {MAX_SESSIONS} open sessions")
        if rate_limit is not None:
            self._initial.rate_limit = _rate_limit(rate_limit)
        self._state = _State()
        self._windows: dict[str, deque[float]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._state = _State(dict(self._initial.accounts), dict(self._initial.sessions), self._initial.rate_limit)
            self._windows = {}

    @property
    def open(self) -> bool:
        """True when no account is configured: every non-blank token is accepted, unlimited."""
        return not self._state.accounts

    def get(self, token: str) -> Account | None:
        """The account of ``token``; in open mode, an unlimited account for any token."""
        account = self._state.accounts.get(token)
        if account is None and self.open:
            return _OPEN_ACCOUNT
        return account

    def accounts(self) -> list[Account]:
        with self._lock:
            return list(self._state.accounts.values())

    def set(self, token: str, /, **spec: Any) -> Account:
        """Create or change the account of ``token`` (keys as in the config file; ``sessions``
        opens the 24-hour window of those numbers)."""
        sessions = _numbers("sessions", spec.pop("sessions", None))
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
            raise ConfigError(f"an account's token is 1 to {MAX_TOKEN_LENGTH} characters, not blank")
        with self._lock:
            current = self._state.accounts.get(token)
            if current is None and len(self._state.accounts) >= MAX_ACCOUNTS:
                raise ConfigError(
                    f"{MAX_ACCOUNTS} accounts already: the limit (DELETE /_picky/accounts or reset to start over)"
                )
            base = current.to_json() if current else {}
            base.pop("token", None)
            base.update(spec)
            account = Account.from_dict(token, {k: v for k, v in base.items() if v is not None or k in spec})
            self._state.accounts[token] = account
        for number in sessions:
            self.open_session(number)
        return account

    def remove_all(self) -> None:
        """Back to open mode (no accounts)."""
        with self._lock:
            self._state.accounts.clear()

    def set_rate_limit(self, spec: Mapping[str, Any] | None) -> None:
        with self._lock:
            self._state.rate_limit = None if spec is None else _rate_limit(spec)
            self._windows = {}

    @property
    def rate_limit(self) -> RateLimit | None:
        return self._state.rate_limit

    # -- the 24-hour window ----------------------------------------------------------------

    def open_session(self, number: str, *, hours: float = 24.0) -> None:
        """The number wrote in: free text may be sent to it for ``hours``."""
        if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours != hours:
            raise ConfigError(f"session hours must be a number, not {hours!r}")
        if not -MAX_SESSION_HOURS <= hours <= MAX_SESSION_HOURS:
            raise ConfigError(
                f"session hours must be from -{MAX_SESSION_HOURS:g} to {MAX_SESSION_HOURS:g}, not {hours!r}"
            )
        key = str(number)
        if not key or len(key) > MAX_TOKEN_LENGTH:
            raise ConfigError(f"a session's number is 1 to {MAX_TOKEN_LENGTH} characters")
        with self._lock:
            sessions = self._state.sessions
            if key not in sessions and len(sessions) >= MAX_SESSIONS:
                now = self._now()
                for expired in [n for n, until in sessions.items() if until <= now]:
                    del sessions[expired]
                if len(sessions) >= MAX_SESSIONS:
                    raise ConfigError(f"{MAX_SESSIONS} sessions open already: the limit (close some, or reset)")
            sessions[key] = self._now() + hours * 3600.0

    def close_session(self, number: str) -> None:
        with self._lock:
            self._state.sessions.pop(str(number), None)

    def sessions(self) -> dict[str, float]:
        now = self._now()
        with self._lock:
            return {n: until for n, until in self._state.sessions.items() if until > now}

    def session_open(self, number: str) -> bool:
        until = self._state.sessions.get(number)
        return until is not None and until > self._now()

    # -- money -----------------------------------------------------------------------------

    def debit(self, token: str, amount: Decimal) -> bool:
        """Take ``amount`` from the balance of ``token``; False (and nothing taken) when it cannot
        pay. Unlimited accounts always pay."""
        if not self._state.accounts:
            return True
        with self._lock:
            account = self._state.accounts.get(token)
            if account is None or account.balance is None:
                return True
            if account.balance < amount:
                return False
            self._state.accounts[token] = replace(account, balance=account.balance - amount)
            return True

    def refund(self, token: str, amount: Decimal) -> Decimal | None:
        """Give ``amount`` back to the balance of ``token`` (a refunded message); the new balance,
        or ``None`` when the account has no balance to credit (unlimited, open mode, removed)."""
        with self._lock:
            account = self._state.accounts.get(token)
            if account is None or account.balance is None:
                return None
            balance = account.balance + amount
            self._state.accounts[token] = replace(account, balance=balance)
            return balance

    def balance(self, token: str) -> Decimal:
        account = self.get(token)
        if account is None or account.balance is None:
            return UNLIMITED_BALANCE_REPORTED
        return account.balance

    # -- rate limit ------------------------------------------------------------------------

    def admit(self, token: str, now: float | None = None) -> tuple[float, RateLimit] | None:
        """Count a push request of ``token``: ``None`` when within the limit, else the seconds until
        the window has room again and the limit that refused it."""
        limit = self._state.rate_limit
        if limit is None:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            window = self._windows.setdefault(token, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit.per_minute:
                return max(0.0, window[0] + 60.0 - now), limit
            window.append(now)
            return None

    def describe(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "accounts": [a.to_json() for a in self.accounts()],
            "sessions": sorted(self.sessions()),
            "rate_limit": None if self.rate_limit is None else self.rate_limit.__dict__,
        }


def _rate_limit(spec: Any) -> RateLimit:
    if not isinstance(spec, Mapping):
        raise ConfigError(f'rate_limit must be a table such as {{per_minute = 90, action = "429"}}, not {spec!r}')
    unknown = set(spec) - {"per_minute", "action"}
    if unknown:
        raise ConfigError(f"rate_limit: unknown key(s) {', '.join(sorted(unknown))} (known: per_minute, action)")
    per_minute = spec.get("per_minute", 90)
    if isinstance(per_minute, bool) or not isinstance(per_minute, int):
        raise ConfigError(f"rate_limit: per_minute must be a whole number, not {per_minute!r}")
    return RateLimit(per_minute=per_minute, action=str(spec.get("action", "429")))


def _numbers(where: str, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(f"{where} must be a list of numbers, not {value!r}")
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (str, int)):
            raise ConfigError(f"{where}: {number!r} is not a phone number")
    return [str(number) for number in value]
