#!/bin/sh
# Run a project's tests against picky-mock, in the CI of a project in any language (PHP, Node, C#,
# Java, Go...): start the mock in the background, wait until it answers, run the tests, stop it.
#
#   usage: with-picky-mock.sh COMMAND [ARG...]        e.g. with-picky-mock.sh vendor/bin/phpunit
#
# picky-mock must be on PATH: `pipx install path/to/picky-mock` (a checkout, or a wheel built from
# it), or `python3 -m pip install path/to/picky-mock` in a virtual environment. The tests find it at
# $PICKY_URL (the push URL) and $PICKY_ADMIN (its admin API, to read what was sent). The exit
# status is the tests' own; the mock is stopped however they end.
#
# Environment: PICKY_MOCK_PORT (default 8080) is the port, PICKY_MOCK_WAIT (default 30) the seconds
# to wait for the mock to answer; any other PICKY_MOCK_* setting (PICKY_MOCK_MODE,
# PICKY_MOCK_CONFIG, ...) is read by `picky-mock serve` itself.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]" >&2
    exit 2
fi

PICKY_MOCK_PORT=${PICKY_MOCK_PORT:-8080}
export PICKY_MOCK_PORT
base="http://127.0.0.1:$PICKY_MOCK_PORT"

picky-mock serve --log-level warning &
server=$!
stop() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

picky-mock wait --url "$base" --timeout "${PICKY_MOCK_WAIT:-30}"

PICKY_URL="$base/api/v2/push" PICKY_ADMIN="$base/_picky" "$@"
