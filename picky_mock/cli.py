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
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import CLOCKS, LOG_LEVELS, MODES, Settings, load_settings
from .errors import ConfigError

if TYPE_CHECKING:
    from .backend import Backend

__all__ = ["main"]

EPILOG_SERVE = """\
environment variables (overridden by options, override the config file):
  PICKY_MOCK_HOST, PICKY_MOCK_PORT, PICKY_MOCK_MODE, PICKY_MOCK_LOG_LEVEL,
  PICKY_MOCK_CONFIG, PICKY_MOCK_RETENTION, PICKY_MOCK_JOURNAL_BYTES, PICKY_MOCK_MAX_BODY_BYTES,
  PICKY_MOCK_ADMIN_TOKEN, PICKY_MOCK_ADMIN_OPEN, PICKY_MOCK_ALLOWED_HOSTS (comma-separated), PICKY_MOCK_HEADER_TIMEOUT,
  PICKY_MOCK_KEEP_ALIVE_TIMEOUT, PICKY_MOCK_MAX_CONNECTIONS, PICKY_MOCK_CLOCK, PICKY_MOCK_TIME_SCALE,
  PICKY_MOCK_EVENT_WEBHOOK_URL, PICKY_MOCK_INCOMING_WEBHOOK_URL, PICKY_MOCK_PROJECT_ID,
  PICKY_MOCK_WEBHOOK_TIMEOUT, PICKY_MOCK_WEBHOOK_RETRIES, PICKY_MOCK_WEBHOOK_BATCH,
  PICKY_MOCK_LIFECYCLE (a JSON object)

admin API protection: a Host allow-list on every path (loopback names, the bound address,
--allowed-host); admin calls need the token when one is set (Authorization: Bearer TOKEN or
X-Picky-Admin-Token: TOKEN), are locked beyond loopback without one unless --admin-open, refuse
a foreign Origin, and an admin POST needs Content-Type: application/json or X-Picky-Admin: 1.
bounds: admin bodies 8 MiB; 10,000 fault rules; 10,000 accounts; 100,000 sessions; request
headers 64 KiB.

webhook URLs set over the admin API (PUT /_picky/webhooks) rest on that protection: keep the
admin API on loopback, or behind --admin-token, so that no one else can make the mock POST anywhere.

push paths: POST /api/v2/push, /app/api/v2/push, /beta/api/v2/push
delivery report: POST /api/v2/delivery-report, /app/api/v2/delivery-report, /beta/api/v2/delivery-report
admin API:  /_picky/health, /_picky/journal, /_picky/messages, /_picky/reset, /_picky/state,
            /_picky/faults, /_picky/accounts, /_picky/sessions, /_picky/seed, /_picky/rate-limit,
            /_picky/coverage, /_picky/connection, /_picky/openapi.json (see docs/admin-api.md);
            the lifecycle: /_picky/deliver, /_picky/deliveries, /_picky/clock, /_picky/webhooks,
            /_picky/webhooks/attempts, /_picky/inbound, /_picky/lifecycle, /_picky/thread
            (see docs/lifecycle.md)
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
    serve.add_argument("--retention", type=int, help="requests kept in the journal (default 10000; 1 to 10,000,000)")
    serve.add_argument(
        "--journal-bytes", type=int, help="memory the journal may hold, estimated (default 512 MiB, 1 MiB to 1 TiB)"
    )
    serve.add_argument(
        "--max-body-bytes", type=int, help="larger bodies get HTTP 413 (default 64 MiB; 1 byte to 1 GiB)"
    )
    serve.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help="require this token on the admin API (/_picky/*, health excepted) as 'Authorization: Bearer TOKEN' "
        "or 'X-Picky-Admin-Token: TOKEN' (8 to 256 characters; default none)",
    )
    serve.add_argument(
        "--admin-open",
        action="store_true",
        default=None,
        help="serve the admin API without a token even when bound beyond loopback (a warning at start)",
    )
    serve.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        help="also accept this Host name (repeatable; '*': any), besides loopback names and the bound address",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection whose request headers take longer (default 30; 0.1 to 3600)",
    )
    serve.add_argument(
        "--keep-alive-timeout",
        type=float,
        metavar="SECONDS",
        help="close an idle keep-alive connection after this (default 5; 0.1 to 3600)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        metavar="N",
        help="connections served at once; past it the oldest idle one is closed (default 1000; 1 to 65536)",
    )
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
    lifecycle = serve.add_argument_group("message lifecycle (docs/lifecycle.md)")
    lifecycle.add_argument(
        "--clock",
        choices=CLOCKS,
        help="wall (default): timers run in real time, sped up by --time-scale; virtual: time moves only "
        "when advanced (POST /_picky/clock)",
    )
    lifecycle.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="wall clock speed: 60 makes an hour pass in a minute (default 1; 0.001 to 100000)",
    )
    lifecycle.add_argument(
        "--event-webhook-url", metavar="URL", help="POST each delivery state change here (http or https; default none)"
    )
    lifecycle.add_argument(
        "--incoming-webhook-url",
        metavar="URL",
        help="POST each customer message here; its answer may carry an instant reply (http or https; default none)",
    )
    lifecycle.add_argument("--project-id", metavar="ID", help='the project_id the webhooks carry (default "1")')
    lifecycle.add_argument(
        "--webhook-timeout",
        type=float,
        metavar="SECONDS",
        help="a webhook not answered 200 within this is retried (default 10; 0.1 to 3600)",
    )
    lifecycle.add_argument(
        "--webhook-batch",
        type=int,
        metavar="N",
        help="state changes one event POST carries at most when they queue up (default 250; 1: one a POST)",
    )
    lifecycle.add_argument(
        "--webhook-linger",
        type=float,
        metavar="SECONDS",
        help="a lane of the event webhook rests this long after a POST that was not full, so that "
        "what arrives meanwhile goes in one POST (default 0.05; 0 to 1; wall clock only)",
    )
    lifecycle.add_argument(
        "--no-webhook-retries",
        dest="webhook_retries",
        action="store_false",
        default=None,
        help="try each webhook once (default: retry after 1 min, 15 min, 2 h and 6 h)",
    )
    lifecycle.add_argument(
        "--lifecycle",
        metavar="JSON",
        help='the lifecycle policy: \'{"deliver_after": "5s", "read_after": [60, 600], "fail_share": 0.05, '
        '"seed": 7}\' (default off: messages stay Submitted until moved)',
    )
    lifecycle.add_argument(
        "--deliver-after",
        metavar="DURATION",
        help="shortcut: deliver every message after this (30, '15m', '2h'), merged into --lifecycle",
    )
    lifecycle.add_argument(
        "--read-after", metavar="DURATION", help="shortcut: read every delivered message this long after delivery"
    )

    validate = commands.add_parser(
        "validate",
        help="check push request bodies against the contract",
        description="Check push request bodies (JSON files, or - for standard input) against the contract,\n"
        "as the server in the same mode judges them; print every violation with its JSON path and the\n"
        "status the API answers, then a summary line. Exit 0 when every body is accepted, 1 when one\n"
        "is not, 2 when a file cannot be read.",
        epilog=EPILOG_VALIDATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="JSON file, or - for standard input")
    validate.add_argument(
        "--mode",
        choices=MODES,
        help="strict (default) rejects the deviations from the documented contract; lenient accepts them as "
        "the lenient server does, and prints each as a note",
    )
    validate.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_wait(commands)
    commands.add_parser(
        "openapi",
        help="print the OpenAPI 3.1 document of the emulated API and the admin API",
        description="Print the OpenAPI 3.1 document (JSON) of the emulated API and the admin API, the one a\n"
        "running server serves at GET /_picky/openapi.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def _openapi() -> int:
    from .app import PickyApp
    from .backend import Backend
    from .openapi import document_bytes

    app = PickyApp(Backend(Settings()))
    sys.stdout.write(document_bytes(app.api.judges, app.starlette.routes).decode("utf-8") + "\n")
    return 0


EPILOG_WAIT = """\
exit status: 0 once the server answers GET /_picky/health with {"status": "ok"}; 1 when --timeout
passes first (one line on standard error says what was seen last); 2 for a bad --url or --timeout.

example (a CI job of a project in any language):
  picky-mock serve --port 8080 &
  picky-mock wait --url http://127.0.0.1:8080 --timeout 10
"""


def _add_wait(commands: Any) -> None:
    wait = commands.add_parser(
        "wait",
        help="wait until a server started elsewhere answers its health check",
        description="Poll the health check of a picky-mock server (started in the background, in a\n"
        "container, on another host) until it answers, so a script goes on only once it serves.",
        epilog=EPILOG_WAIT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    wait.add_argument(
        "--url",
        default="http://127.0.0.1:8080",
        help="the server's base URL, or its /_picky/health URL (default http://127.0.0.1:8080)",
    )
    wait.add_argument("--timeout", type=float, default=10.0, help="seconds to wait at most (default 10)")


def _wait(args: argparse.Namespace) -> int:
    from .readiness import NotReady, wait_until_ready

    try:
        wait_until_ready(args.url, args.timeout)
    except NotReady as exc:
        print(f"picky-mock: {exc}", file=sys.stderr)
        return 1
    return 0


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
    policy = _lifecycle_option(base, args)
    settings = base.with_options(
        extra=extra,
        clock=args.clock,
        time_scale=args.time_scale,
        event_webhook_url=args.event_webhook_url,
        incoming_webhook_url=args.incoming_webhook_url,
        project_id=args.project_id,
        webhook_timeout=args.webhook_timeout,
        webhook_retries=args.webhook_retries,
        webhook_batch=args.webhook_batch,
        webhook_linger=args.webhook_linger,
        lifecycle=policy,
        host=args.host,
        port=args.port,
        mode=args.mode,
        log_level=args.log_level,
        access_log=args.access_log,
        retention=args.retention,
        journal_bytes=args.journal_bytes,
        max_body_bytes=args.max_body_bytes,
        admin_token=args.admin_token,
        admin_open=args.admin_open,
        allowed_hosts=None if args.allowed_host is None else (*base.allowed_hosts, *args.allowed_host),
        header_timeout=args.header_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        max_connections=args.max_connections,
    )
    from .server import serve  # uvicorn is imported only to serve, once the settings are known good

    serve(settings)
    return 0


def _lifecycle_option(base: Settings, args: argparse.Namespace) -> dict[str, Any] | None:
    """The lifecycle table of ``--lifecycle`` (or the config's), with ``--deliver-after`` and
    ``--read-after`` merged in; ``None`` when none of them is given (the config's stays)."""
    if args.lifecycle is None and args.deliver_after is None and args.read_after is None:
        return None
    policy: dict[str, Any] = dict(base.lifecycle or {})
    if args.lifecycle is not None:
        try:
            given = json.loads(args.lifecycle)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--lifecycle {args.lifecycle!r} is not JSON: {exc.msg}") from None
        if not isinstance(given, dict):
            raise ConfigError(f"--lifecycle takes one JSON object, not {args.lifecycle!r}")
        policy = given
    if args.deliver_after is not None:
        policy["deliver_after"] = args.deliver_after
    if args.read_after is not None:
        policy["read_after"] = args.read_after
    return policy


def _validate(args: argparse.Namespace) -> int:
    from .backend import Backend

    # The mode as serve reads it, from the option, else PICKY_MOCK_MODE (no config file: validate
    # takes none, and the file's other keys mean nothing here).
    mode = load_settings(environ={k: v for k, v in os.environ.items() if k == "PICKY_MOCK_MODE"}, mode=args.mode).mode
    backend = Backend(Settings(mode=mode))
    files: list[str] = args.files
    several = len(files) > 1
    reports: list[dict[str, Any]] = []
    valid = invalid = unreadable = 0
    for name in files:
        try:
            if name == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(name, "rb") as handle:
                    raw = handle.read()
        except OSError as exc:
            if not several:
                raise ConfigError(f"cannot read {name}: {exc.strerror or exc}") from None
            print(f"picky-mock: error: cannot read {name}: {exc.strerror or exc}", file=sys.stderr)
            unreadable += 1
            if args.json:
                reports.append({"file": name, "valid": False, "error": f"cannot read: {exc.strerror or exc}"})
            continue
        report = _judge_file(backend, name, raw, mode, args.json, several)
        valid, invalid = (valid + 1, invalid) if report["valid"] else (valid, invalid + 1)
        reports.append({"file": name, **report} if several else report)
    if args.json:
        whole = reports[0] if not several else {"valid": invalid == unreadable == 0, "files": reports}
        print(json.dumps(whole, indent=2, ensure_ascii=False))
    elif several:
        parts = [f"{valid} valid", f"{invalid} invalid"] + ([f"{unreadable} unreadable"] if unreadable else [])
        print(f"{len(files)} files: {', '.join(parts)}")
    return 2 if unreadable else 1 if invalid else 0


def _judge_file(backend: Backend, name: str, raw: bytes, mode: str, as_json: bool, several: bool) -> dict[str, Any]:
    """Judge one body as the server in ``mode`` would; print its lines unless ``as_json``, the last
    one its verdict (prefixed with the file's name when there are ``several``); return its report."""
    from .backend import parse_document
    from .errors import ApiError

    lenient = mode == "lenient"
    report: dict[str, Any]
    try:
        body = parse_document(raw)
    except ApiError as exc:
        unparsed = {"path": "$", "expected": "a JSON object", "found": exc.detail, "status": 410}
        report = {"valid": False, "violations": [unparsed]}
        if lenient:
            report.update(mode=mode, notes=[])
        if not as_json:
            print(f"{name}: $: {exc.detail} (status 410)")
            print(f"{name + ': ' if several else ''}1 violation(s); the API answers status 410")
        return report
    # The server's own judgment (in-process, nothing journaled): the same repairs and violations.
    violations, notes = backend.check_request(body)
    deviations = [note for note in notes if note.startswith("deviation: ")]
    report = {"valid": not violations, "violations": [v.__dict__ for v in violations]}
    if lenient:  # strict mode's report keeps its shape: its deviations are the violations
        report.update(mode=mode, notes=deviations)
    if as_json:
        return report
    if lenient:
        for note in deviations:
            print(f"{name}: note: {note.removeprefix('deviation: ')}")
    if violations:
        for violation in violations:
            print(f"{name}: {violation}")
        answered = f"the API answers status {violations[0].status}"
        verdict = f"{len(violations)} violation(s); {answered}{' (lenient mode)' if lenient else ''}"
        print(f"{name}: {verdict}" if several else verdict)
    elif lenient and deviations:
        print(f"{name}: valid in lenient mode ({len(deviations)} deviation(s) repaired; strict mode rejects them)")
    else:
        print(f"{name}: valid")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (``sys.argv[1:]`` when ``None``); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "wait":
            return _wait(args)
        if args.command == "openapi":
            return _openapi()
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
