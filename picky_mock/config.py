"""Settings: defaults, then a TOML file, then ``PICKY_MOCK_*`` environment variables, then options.

A config file looks like this (every key optional)::

    mode = "strict"            # or "lenient" (docs/contract.md §2.3)
    retention = 10000          # requests kept in the journal
    max_body_bytes = 67108864  # larger bodies are answered HTTP 413

    [server]
    host = "127.0.0.1"
    port = 8080
    log_level = "info"
    access_log = false

    [ids]
    push_id_start = 7478630    # the docs' sample values
    msg_id_start = 9844217

    [prices]                   # per message; per segment for SMS (3)
    default = "0.005"
    3 = "0.01"
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .pricing import PriceTable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["MODES", "Settings", "load_settings", "read_config_file"]

MODES = ("strict", "lenient")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
Mode = Literal["strict", "lenient"]


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
    max_body_bytes: int = 64 * 1024 * 1024
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Config sections that other parts of picky-mock read: ``accounts``, ``faults``, ``rate_limit``,
    ``sessions`` and ``seed`` (see :class:`~picky_mock.backend.Backend`)."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {self.log_level!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0 to 65535, not {self.port}")
        for name in ("push_id_start", "msg_id_start", "retention", "max_body_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, not {getattr(self, name)}")
        PriceTable(self.prices)  # raises ConfigError on a bad price

    def with_options(self, **options: Any) -> Settings:
        """A copy with the options that are not ``None`` applied."""
        return replace(self, **{k: v for k, v in options.items() if v is not None})


#: key in the file -> (section, Settings field, type)
_FILE_KEYS: dict[tuple[str, str], tuple[str, type]] = {
    ("", "mode"): ("mode", str),
    ("", "retention"): ("retention", int),
    ("", "max_body_bytes"): ("max_body_bytes", int),
    ("server", "host"): ("host", str),
    ("server", "port"): ("port", int),
    ("server", "log_level"): ("log_level", str),
    ("server", "access_log"): ("access_log", bool),
    ("ids", "push_id_start"): ("push_id_start", int),
    ("ids", "msg_id_start"): ("msg_id_start", int),
}
#: Sections kept as they are for other parts of picky-mock.
EXTRA_SECTIONS = ("accounts", "faults", "rate_limit", "seed", "sessions")

_ENV = {
    "PICKY_MOCK_HOST": ("host", str),
    "PICKY_MOCK_PORT": ("port", int),
    "PICKY_MOCK_MODE": ("mode", str),
    "PICKY_MOCK_LOG_LEVEL": ("log_level", str),
    "PICKY_MOCK_RETENTION": ("retention", int),
    "PICKY_MOCK_MAX_BODY_BYTES": ("max_body_bytes", int),
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
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
    elif isinstance(value, str):
        return value.lower() if field_name in ("mode", "log_level") else value
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
        if isinstance(value, dict) and key in ("server", "ids"):
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
        elif key in EXTRA_SECTIONS:
            extra[key] = value
        elif ("", key) in _FILE_KEYS:
            field_name, kind = _FILE_KEYS[("", key)]
            values[field_name] = _typed(f"{path}: {key}", value, kind, field_name)
        else:
            names = ["mode", "retention", "max_body_bytes", "[server]", "[ids]", "[prices]"]
            names += [f"[{s}]" for s in EXTRA_SECTIONS]
            raise ConfigError(f"{path}: unknown key {key!r} (known: {', '.join(names)})")
    if extra:
        values["extra"] = extra
    return values


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
            choices = {"mode": MODES, "log_level": LOG_LEVELS}.get(field_name)
            if choices and values[field_name] not in choices:
                raise ConfigError(f"{name}={env[name]!r}: must be one of {', '.join(choices)}")
    values.update({k: v for k, v in options.items() if v is not None})
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    return Settings(**values)
