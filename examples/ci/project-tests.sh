#!/bin/sh
# A stand-in for a project's own test suite, in plain shell and curl: what a PHP, Node or Java
# project's tests do against picky-mock. Run it through with-picky-mock.sh, which sets PICKY_URL
# and PICKY_ADMIN:
#
#   examples/ci/with-picky-mock.sh examples/ci/project-tests.sh
set -eu

fail() {
    echo "project-tests: FAILED: $*" >&2
    exit 1
}

# The code under test sends a WhatsApp message...
reply=$(curl -sS --fail -H 'Content-Type: application/json' -d '{
    "token": "test-token", "application": 2, "globalmessage": "Your code is 4711",
    "data": [{"number": "5511987654321"}]}' "$PICKY_URL")
case $reply in
    *'"status":100'* | *'"status": 100'*) ;;
    *) fail "the push was not accepted: $reply" ;;
esac

# ...and a request the API refuses (no recipient) gets the documented error.
refused=$(curl -sS --fail -H 'Content-Type: application/json' \
    -d '{"token": "test-token", "application": 1, "globalmessage": "hi", "data": []}' "$PICKY_URL")
case $refused in
    *'"status":402'* | *'"status": 402'*) ;;
    *) fail "an empty number list was not refused with 402: $refused" ;;
esac

# The mock's journal tells what would have reached the phone.
sent=$(curl -sS --fail "$PICKY_ADMIN/messages?number=5511987654321")
case $sent in
    *'Your code is 4711'*) ;;
    *) fail "the message is not in the journal: $sent" ;;
esac

echo "project-tests: all 3 checks passed"
