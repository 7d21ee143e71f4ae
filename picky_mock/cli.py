"""The ``picky-mock`` command: a thin layer over :func:`picky_mock.server.serve` and the contract.

``main(argv)`` returns the exit status; expected failures (port in use, bad config) print one line
on standard error and return 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .config import LOG_LEVELS, MODES, Settings, load_settings
from .errors import ConfigError

__all__ = ["main"]

EPILOG_SERVE = """\
environment variables (overridden by options, override the config file):
  PICKY_MOCK_HOST, PICKY_MOCK_PORT, PICKY_MOCK_MODE, PICKY_MOCK_LOG_LEVEL,
  PICKY_MOCK_CONFIG, PICKY_MOCK_RETENTION, PICKY_MOCK_MAX_BODY_BYTES

push paths: POST /api/v2/push, /app/api/v2/push, /beta/api/v2/push
admin API:  /_picky/health, /_picky/journal, /_picky/messages, /_picky/reset, /_picky/state,
            /_picky/faults, /_picky/accounts, /_picky/sessions, /_picky/seed, /_picky/rate-limit,
            /_picky/coverage (see docs/admin-api.md)
"""

EPILOG_VALIDATE = """\
modes (docs/contract.md §2.3): a number with "+", "00", spaces, dashes, parentheses or dots, a top-level number/message
without data[], and a missing application deviate from the documented contract. strict rejects
them (406, 402, 410); lenient repairs them (digits only, wrapped into data[], channel 1), accepts
the body if nothing else is wrong, and prints a note for each.

environment variable (overridden by --mode): PICKY_MOCK_MODE
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="picky-mock",
        description="A mock server and contract checker for the Picky Assist push API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the emulated push API",
        description="Serve the emulated Picky Assist push API until Ctrl-C or SIGTERM.",
        epilog=EPILOG_SERVE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: loopback only)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080; 0 picks a free port)")
    serve.add_argument(
        "--mode", choices=MODES, help="strict (default) rejects contract deviations; lenient accepts and notes them"
    )
    serve.add_argument(
        "--config", metavar="FILE", help="TOML config file (prices, ids, mode, accounts, faults...; see docs/config.md)"
    )
    serve.add_argument("--log-level", choices=LOG_LEVELS, help="log level (default info: one line per push)")
    serve.add_argument(
        "--access-log", action="store_true", default=None, help="also log every HTTP request (uvicorn's access log)"
    )
    serve.add_argument("--retention", type=int, help="requests kept in the journal (default 10000)")
    serve.add_argument("--max-body-bytes", type=int, help="larger bodies get HTTP 413 (default 64 MiB)")
    serve.add_argument(
        "--fault",
        metavar="JSON",
        action="append",
        help='a fault rule, repeatable: \'{"action": "api_error", "status": 403, "number": "5511987654321"}\', '
        '\'{"action": "http_error", "status": 502, "probability": 0.1}\' (see docs/faults.md)',
    )
    serve.add_argument(
        "--seed", type=int, help="seed of the fault generator, to repeat a run exactly (logged at start)"
    )
    serve.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="emulate the documented limit of N push requests a minute per token (the docs say 90; off by default)",
    )
    serve.add_argument(
        "--rate-limit-action",
        choices=("429", "drop"),
        default=None,
        help="past the limit: answer HTTP 429 with Retry-After (the default), or drop: answer success, process nothing",
    )

    validate = commands.add_parser(
        "validate",
        help="check a push request body against the contract",
        description="Check a push request body (a JSON file, or - for standard input) against the contract,\n"
        "as the server in the same mode judges it; print every violation with its JSON path and the\n"
        "status the API answers. Exit 0 when the body is accepted, 1 when not.",
        epilog=EPILOG_VALIDATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("file", metavar="FILE", help="JSON file, or - for standard input")
    validate.add_argument(
        "--mode",
        choices=MODES,
        help="strict (default) rejects the deviations from the documented contract; lenient accepts them as "
        "the lenient server does, and prints each as a note",
    )
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _serve(args: argparse.Namespace) -> int:
    base = load_settings(args.config)
    extra = dict(base.extra)
    if args.fault:
        faults = list(extra.get("faults") or [])
        for text in args.fault:
            try:
                rule = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"--fault {text!r} is not JSON: {exc.msg}") from None
            if not isinstance(rule, dict):
                raise ConfigError(f"--fault takes one JSON object (repeat the option for more rules), not {text!r}")
            faults.append(rule)
        extra["faults"] = faults
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.rate_limit is not None or args.rate_limit_action is not None:
        limit = dict(extra.get("rate_limit") or {})
        if args.rate_limit is None and not limit:
            raise ConfigError("--rate-limit-action needs a rate limit: --rate-limit N or [rate_limit] in the config")
        if args.rate_limit is not None:
            limit["per_minute"] = args.rate_limit
        if args.rate_limit_action is not None:
            limit["action"] = args.rate_limit_action
        extra["rate_limit"] = limit
    settings = base.with_options(
        extra=extra,
        host=args.host,
        port=args.port,
        mode=args.mode,
        log_level=args.log_level,
        access_log=args.access_log,
        retention=args.retention,
        max_body_bytes=args.max_body_bytes,
    )
    from .server import serve  # uvicorn is imported only to serve, once the settings are known good

    serve(settings)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .backend import Backend, parse_document
    from .errors import ApiError

    # The mode as serve reads it, from the option, else PICKY_MOCK_MODE (no config file: validate
    # takes none, and the file's other keys mean nothing here).
    mode = load_settings(environ={k: v for k, v in os.environ.items() if k == "PICKY_MOCK_MODE"}, mode=args.mode).mode
    lenient = mode == "lenient"
    try:
        if args.file == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as handle:
                raw = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    try:
        body = parse_document(raw)
    except ApiError as exc:
        violations_json = [{"path": "$", "expected": "a JSON object", "found": exc.detail, "status": 410}]
        if args.json:
            report: dict[str, Any] = {"valid": False, "violations": violations_json}
            if lenient:
                report.update(mode=mode, notes=[])
            print(json.dumps(report, indent=2))
        else:
            print(f"{args.file}: $: {exc.detail} (status 410)")
        return 1
    # The server's own judgment (in-process, nothing journaled): the same repairs and violations.
    violations, notes = Backend(Settings(mode=mode)).check_request(body)
    deviations = [note for note in notes if note.startswith("deviation: ")]
    if args.json:
        report = {"valid": not violations, "violations": [v.__dict__ for v in violations]}
        if lenient:  # strict mode's report keeps its shape: its deviations are the violations
            report.update(mode=mode, notes=deviations)
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 1 if violations else 0
    if lenient:
        for note in deviations:
            print(f"{args.file}: note: {note.removeprefix('deviation: ')}")
    if violations:
        for violation in violations:
            print(f"{args.file}: {violation}")
        answered = f"the API answers status {violations[0].status}"
        print(f"{len(violations)} violation(s); {answered}{' (lenient mode)' if lenient else ''}")
    elif lenient and deviations:
        print(f"{args.file}: valid in lenient mode ({len(deviations)} deviation(s) repaired; strict mode rejects them)")
    else:
        print(f"{args.file}: valid")
    return 1 if violations else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (``sys.argv[1:]`` when ``None``); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "validate":
            return _validate(args)
    except ConfigError as exc:
        print(f"picky-mock: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `picky-mock validate big.json | head -1`: the reader has left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit's flush does not fail again
        return 1
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
