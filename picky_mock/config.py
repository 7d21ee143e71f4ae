"""Settings: defaults, then a TOML file, then ``PICKY_MOCK_*`` environment variables, then options.

A config file looks like this (every key optional)::

    mode = "strict"            # or "lenient" (docs/contract.md §2.3)
    retention = 10000          # requests kept in the journal (1 to 10,000,000)
    journal_bytes = 536870912  # and at most this much memory, estimated (1 MiB to 1 TiB)
    max_body_bytes = 67108864  # larger bodies are answered HTTP 413

    [server]
    host = "127.0.0.1"
    port = 8080
    log_level = "info"
    access_log = false
    admin_token = "s3cret"     # required by the admin API (always when set; see picky_mock.guard)
    admin_open = false         # true: no token needed even when bound beyond loopback (warned)
    allowed_hosts = ["mock.internal"]  # Host names accepted besides loopback and the bound address
    header_timeout = 30.0      # seconds a request's headers may take to arrive
    keep_alive_timeout = 5.0   # seconds an idle keep-alive connection stays open
    max_connections = 1000     # concurrent connections (the oldest idle one makes room)

    [ids]
    push_id_start = 7478630    # the docs' sample values
    msg_id_start = 9844217

    [prices]                   # per message; per segment for SMS (3)
    default = "0.005"
    3 = "0.01"

    [clock]
    kind = "wall"              # or "virtual": time moves only when advanced (the pytest fixture's)
    time_scale = 1.0           # wall clock only: 60 = an hour a minute (0.001 to 100,000)

    [webhooks]
    event_url = "http://127.0.0.1:9000/events"      # delivery reports are POSTed here
    incoming_url = "http://127.0.0.1:9000/incoming" # customers' messages are POSTed here
    project_id = "1"
    timeout = 10.0             # seconds per attempt (0.1 to 3600)
    retries = true             # retry after 1 min, 15 min, 2 h, 6 h
    batch = 100                # changes one event POST carries at most, under load (1 to 1,000)

    [lifecycle]                # off unless given: messages stay Submitted until moved
    deliver_after = "5s"       # fixed, [low, high] or {min, max}
    read_after = "1m"
    fail_share = 0.02
    seed = 1
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .journal import check_bounds
from .pricing import PriceTable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["BOUNDS", "CLOCKS", "MODES", "Settings", "check_bound", "load_settings", "read_config_file"]

MODES = ("strict", "lenient")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
Mode = Literal["strict", "lenient"]

#: Settings field -> (lowest, highest) value accepted: every number a server is configured with
#: has a range, so that a typo (``--retention 99999999999999999999``) is one clear line at start,
#: not a failure later.
BOUNDS: dict[str, tuple[int | float, int | float]] = {
    "port": (0, 65535),
    "push_id_start": (1, 10**15),
    "msg_id_start": (1, 10**15),
    "retention": (1, 10_000_000),
    "journal_bytes": (1024 * 1024, 1 << 40),
    "max_body_bytes": (1, 1024**3),
    "header_timeout": (0.1, 3600.0),
    "keep_alive_timeout": (0.1, 3600.0),
    "max_connections": (1, 65536),
    "time_scale": (0.001, 100_000.0),
    "webhook_timeout": (0.1, 3600.0),
    "webhook_batch": (1, 1000),
    "webhook_linger": (0.0, 1.0),
}
_FLOATS = frozenset({"header_timeout", "keep_alive_timeout", "time_scale", "webhook_timeout", "webhook_linger"})
CLOCKS = ("wall", "virtual")
MAX_PROJECT_ID = 64
"""Characters of a ``project_id``."""
MAX_ALLOWED_HOSTS = 256
"""Entries of ``allowed_hosts`` (each at most 253 characters, a DNS name's limit)."""


def check_bound(name: str, value: Any, where: str = "") -> None:
    """Raise :class:`ConfigError` unless ``value`` is a number of the kind and within the range
    :data:`BOUNDS` gives ``name``; the message names ``where`` (a file, a variable) when given."""
    low, high = BOUNDS[name]
    label = f"{where}: {name}" if where else name
    whole = name not in _FLOATS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{label} must be {kind} from {low:,} to {high:,}, not {value!r}")
    if (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high:
        raise ConfigError(f"{label} must be from {low:,} to {high:,}, not {value!r}")


@dataclass(frozen=True)
class Settings:
    """Everything a picky-mock server is configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    mode: Mode = "strict"
    log_level: str = "info"
    access_log: bool = False
    push_id_start: int = 7478630
    msg_id_start: int = 9844217
    prices: Mapping[str, str] = field(default_factory=dict)
    retention: int = 10_000
    journal_bytes: int = 512 * 1024 * 1024
    """The memory the journal may hold, estimated: past it, its oldest entries are dropped."""
    max_body_bytes: int = 64 * 1024 * 1024
    admin_token: str | None = None
    """The token the admin API requires (``Authorization: Bearer`` or ``X-Picky-Admin-Token``)."""
    admin_open: bool = False
    """Serve the admin API without a token even when bound beyond loopback (a warning at start)."""
    allowed_hosts: tuple[str, ...] = ()
    """``Host`` names accepted besides loopback names and the bound address (``"*"``: any)."""
    header_timeout: float = 30.0
    """Seconds a connection may take to send a request's headers (idle ones included)."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle keep-alive connection stays open after an answer."""
    max_connections: int = 1000
    """Connections served at once; past it the oldest one still waiting for headers is closed."""
    clock: str = "wall"
    """``wall`` (real time, sped up ``time_scale`` times) or ``virtual`` (moves only when advanced)."""
    time_scale: float = 1.0
    event_webhook_url: str | None = None
    """Where each delivery state change is POSTed (docs/contract.md §6.2); ``None``: nowhere."""
    incoming_webhook_url: str | None = None
    """Where a customer's message is POSTed (docs/contract.md §6.4); ``None``: nowhere."""
    project_id: str = "1"
    webhook_timeout: float = 10.0
    """Seconds one webhook POST may take before it counts as failed (and is retried)."""
    webhook_batch: int = 250
    """State changes one event POST carries at most: changes queued while a POST is in flight go
    out together (1: always one change a POST)."""
    webhook_linger: float = 0.05
    """Seconds a lane of the event webhook waits, after a POST, before the next one when changes
    are already waiting (under load: fewer, fuller POSTs). A change that finds its lane idle goes at
    once. On the wall clock only: the virtual clock's advance sends at once, so tests stay exact."""
    webhook_retries: bool = True
    """Retry a webhook not answered 200 after 1 min, 15 min, 2 h and 6 h (docs/contract.md §6.3)."""
    lifecycle: Mapping[str, Any] | None = None
    """The lifecycle policy table (:meth:`~picky_mock.lifecycle.LifecyclePolicy.parse`); ``None``: off,
    every message stays Submitted until moved on demand."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Config sections that other parts of picky-mock read: ``accounts``, ``faults``, ``rate_limit``,
    ``sessions`` and ``seed`` (see :class:`~picky_mock.backend.Backend`)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        for name in BOUNDS:
            check_bound(name, getattr(self, name))
        check_bounds(self.retention, self.journal_bytes)
        if self.admin_token is not None and (
            not isinstance(self.admin_token, str)
            or not 8 <= len(self.admin_token) <= 256
            or not self.admin_token.isprintable()
            or not self.admin_token.isascii()
            or " " in self.admin_token
        ):
            raise ConfigError("admin_token must be 8 to 256 printable ASCII characters without spaces")
        if isinstance(self.allowed_hosts, str):
            object.__setattr__(self, "allowed_hosts", tuple(h for h in self.allowed_hosts.split(",") if h.strip()))
        hosts = self.allowed_hosts
        if (
            not isinstance(hosts, (tuple, list))
            or len(hosts) > MAX_ALLOWED_HOSTS
            or not all(isinstance(h, str) and 0 < len(h.strip()) <= 253 for h in hosts)
        ):
            raise ConfigError(f"allowed_hosts must be a list of at most {MAX_ALLOWED_HOSTS} host names")
        object.__setattr__(self, "allowed_hosts", tuple(h.strip().lower() for h in hosts))
        PriceTable(self.prices)  # raises ConfigError on a bad price
        self._check_lifecycle()

    def _check_lifecycle(self) -> None:
        from .lifecycle import LifecyclePolicy  # here: it imports this module's neighbours
        from .webhook_payloads import WebhookUrlError, check_url

        if self.clock not in CLOCKS:
            raise ConfigError(f"clock must be one of {', '.join(CLOCKS)}, not {self.clock!r}")
        for name in ("event_webhook_url", "incoming_webhook_url"):
            value = getattr(self, name)
            if value is not None:
                try:
                    check_url(value, field=name)
                except WebhookUrlError as exc:
                    raise ConfigError(str(exc)) from None
        project = self.project_id
        if not isinstance(project, str) or not 0 < len(project) <= MAX_PROJECT_ID or not project.isprintable():
            raise ConfigError(f"project_id must be 1 to {MAX_PROJECT_ID} printable characters, not {project!r}")
        if not isinstance(self.webhook_retries, bool):
            raise ConfigError(f"webhook_retries must be true or false, not {self.webhook_retries!r}")
        if self.lifecycle is not None:
            LifecyclePolicy.parse(self.lifecycle)

    def with_options(self, **options: Any) -> Settings:
        """A copy with the options that are not ``None`` applied."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


#: key in the file -> (section, Settings field, type)
_FILE_KEYS: dict[tuple[str, str], tuple[str, type]] = {
    ("", "mode"): ("mode", str),
    ("", "retention"): ("retention", int),
    ("", "journal_bytes"): ("journal_bytes", int),
    ("", "max_body_bytes"): ("max_body_bytes", int),
    ("server", "host"): ("host", str),
    ("server", "port"): ("port", int),
    ("server", "log_level"): ("log_level", str),
    ("server", "access_log"): ("access_log", bool),
    ("server", "admin_token"): ("admin_token", str),
    ("server", "admin_open"): ("admin_open", bool),
    ("server", "allowed_hosts"): ("allowed_hosts", list),
    ("server", "header_timeout"): ("header_timeout", float),
    ("server", "keep_alive_timeout"): ("keep_alive_timeout", float),
    ("server", "max_connections"): ("max_connections", int),
    ("ids", "push_id_start"): ("push_id_start", int),
    ("ids", "msg_id_start"): ("msg_id_start", int),
    ("clock", "kind"): ("clock", str),
    ("clock", "time_scale"): ("time_scale", float),
    ("webhooks", "event_url"): ("event_webhook_url", str),
    ("webhooks", "incoming_url"): ("incoming_webhook_url", str),
    ("webhooks", "project_id"): ("project_id", str),
    ("webhooks", "timeout"): ("webhook_timeout", float),
    ("webhooks", "retries"): ("webhook_retries", bool),
    ("webhooks", "batch"): ("webhook_batch", int),
    ("webhooks", "linger"): ("webhook_linger", float),
}
#: Sections kept as they are for other parts of picky-mock.
EXTRA_SECTIONS = ("accounts", "faults", "rate_limit", "seed", "sessions")

_ENV = {
    "PICKY_MOCK_HOST": ("host", str),
    "PICKY_MOCK_PORT": ("port", int),
    "PICKY_MOCK_MODE": ("mode", str),
    "PICKY_MOCK_LOG_LEVEL": ("log_level", str),
    "PICKY_MOCK_RETENTION": ("retention", int),
    "PICKY_MOCK_JOURNAL_BYTES": ("journal_bytes", int),
    "PICKY_MOCK_MAX_BODY_BYTES": ("max_body_bytes", int),
    "PICKY_MOCK_ADMIN_TOKEN": ("admin_token", str),
    "PICKY_MOCK_ADMIN_OPEN": ("admin_open", bool),
    "PICKY_MOCK_ALLOWED_HOSTS": ("allowed_hosts", list),
    "PICKY_MOCK_HEADER_TIMEOUT": ("header_timeout", float),
    "PICKY_MOCK_KEEP_ALIVE_TIMEOUT": ("keep_alive_timeout", float),
    "PICKY_MOCK_MAX_CONNECTIONS": ("max_connections", int),
    "PICKY_MOCK_CLOCK": ("clock", str),
    "PICKY_MOCK_TIME_SCALE": ("time_scale", float),
    "PICKY_MOCK_EVENT_WEBHOOK_URL": ("event_webhook_url", str),
    "PICKY_MOCK_INCOMING_WEBHOOK_URL": ("incoming_webhook_url", str),
    "PICKY_MOCK_PROJECT_ID": ("project_id", str),
    "PICKY_MOCK_WEBHOOK_TIMEOUT": ("webhook_timeout", float),
    "PICKY_MOCK_WEBHOOK_RETRIES": ("webhook_retries", bool),
    "PICKY_MOCK_WEBHOOK_BATCH": ("webhook_batch", int),
    "PICKY_MOCK_WEBHOOK_LINGER": ("webhook_linger", float),
    "PICKY_MOCK_LIFECYCLE": ("lifecycle", dict),
}
CONFIG_ENV = "PICKY_MOCK_CONFIG"


def _typed(where: str, value: Any, kind: type, field_name: str = "") -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,30}", value.strip()):
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and re.fullmatch(r"[0-9]{1,10}(\.[0-9]{1,10})?", value.strip()):
            return float(value)
    elif kind is list:
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
    elif kind is dict:
        if isinstance(value, dict):
            return value
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError as exc:
                raise ConfigError(f"{where}: not a JSON object: {exc}") from None
            if isinstance(parsed, dict):
                return parsed
    elif isinstance(value, str):
        return value.lower() if field_name in ("mode", "log_level", "clock") else value
    raise ConfigError(f"{where}: expected {kind.__name__}, got {value!r}")


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings a TOML config file sets, by :class:`Settings` field name (its ``accounts``,
    ``faults``, ``rate_limit``, ``sessions`` and ``seed`` sections under ``extra``); only what
    the file names. Raises :class:`ConfigError` with one clear line on any mistake."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in ("server", "ids", "clock", "webhooks"):
            for sub, subvalue in value.items():
                target = _FILE_KEYS.get((key, sub))
                if target is None:
                    known = ", ".join(k for s, k in _FILE_KEYS if s == key)
                    raise ConfigError(f"{path}: unknown key [{key}] {sub} (known: {known})")
                values[target[0]] = _typed(f"{path}: [{key}] {sub}", subvalue, target[1], target[0])
        elif key == "prices":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: prices must be a table of channel = price")
            values["prices"] = {str(k): str(v) for k, v in value.items()}
        elif key == "lifecycle":
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: [lifecycle] must be a table (deliver_after, read_after, ...)")
            values["lifecycle"] = value
        elif key in EXTRA_SECTIONS:
            extra[key] = value
        elif ("", key) in _FILE_KEYS:
            field_name, kind = _FILE_KEYS[("", key)]
            values[field_name] = _typed(f"{path}: {key}", value, kind, field_name)
        else:
            names = ["mode", "retention", "journal_bytes", "max_body_bytes", "[server]", "[ids]", "[prices]"]
            names += ["[clock]", "[webhooks]", "[lifecycle]"]
            names += [f"[{s}]" for s in EXTRA_SECTIONS]
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(names)})")
    for name, value in values.items():
        if name in BOUNDS:
            check_bound(name, value, str(path))
    if "prices" in values:
        try:
            PriceTable(values["prices"])
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    lifecycle_keys = {"clock", "event_webhook_url", "incoming_webhook_url", "project_id", "lifecycle"}
    if lifecycle_keys & values.keys():
        try:
            Settings(**{k: v for k, v in values.items() if k in lifecycle_keys})
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    if extra:
        check_sections(path, extra)
        values["extra"] = extra
    return values


def check_sections(path: Path, extra: Mapping[str, Any]) -> None:
    """Check the sections other parts of picky-mock read, so that a mistake names the file and,
    for a ``[[faults]]`` entry, which one (its number from 1, and its name when it has one)."""
    from .accounts import AccountBook  # here: they import this module's neighbours, not this one
    from .faults import MAX_RULES, FaultRule

    faults = extra.get("faults")
    if faults is not None:
        if not isinstance(faults, list):
            raise ConfigError(f"{path}: faults must be an array of tables ([[faults]] in TOML)")
        if len(faults) > MAX_RULES:
            raise ConfigError(f"{path}: {len(faults)} [[faults]] entries, more than the limit of {MAX_RULES}")
        for number, spec in enumerate(faults, 1):
            name = spec.get("name") if isinstance(spec, Mapping) else None
            label = f"[[faults]] #{number}" + (f" ({name!r})" if isinstance(name, str) else "")
            try:
                FaultRule.from_dict(spec)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {label}: {str(exc).removeprefix('fault: ')}") from None
    seed = extra.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise ConfigError(f"{path}: seed must be a whole number from 0 to 2^64-1, not {seed!r}")
    try:
        AccountBook(extra.get("accounts"), extra.get("rate_limit"), extra.get("sessions"))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> Settings:
    """Settings from defaults, the config file (``config`` or ``$PICKY_MOCK_CONFIG``), the
    environment, then ``options`` (those that are not ``None``): each overrides the one before."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config if config is not None else env.get(CONFIG_ENV) or None
    if path is not None:
        values.update(read_config_file(Path(path)))
    for name, (field_name, kind) in _ENV.items():
        if env.get(name) and options.get(field_name) is None:  # an option given wins, even over junk
            values[field_name] = _typed(name, env[name].strip(), kind, field_name)
            choices = {"mode": MODES, "log_level": LOG_LEVELS, "clock": CLOCKS}.get(field_name)
            if choices and values[field_name] not in choices:
                raise ConfigError(f"{name}={env[name]!r}: must be one of {', '.join(choices)}")
            if field_name in BOUNDS:
                check_bound(field_name, values[field_name], name)
    values.update({k: v for k, v in options.items() if v is not None})
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)
