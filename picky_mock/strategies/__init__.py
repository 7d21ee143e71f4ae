"""Hypothesis strategies for the Picky Assist API: requests, answers, delivery reports and webhooks.

::

    from hypothesis import given
    from picky_mock.strategies import invalid_push_requests, push_requests

    @given(push_requests(application=3))
    def test_my_sms_client(body): ...

Importing :mod:`picky_mock` does not import Hypothesis; importing this package does (it comes with
the ``hypothesis`` extra: ``pip install 'picky-mock[hypothesis]'``). Every strategy takes keyword-only
options, checks them when it is built (:class:`hypothesis.errors.InvalidArgument` for an option that
cannot be met) and shrinks toward the plainest case: one recipient, the first channel, a
one-character GSM-7 text, no quirks. (Hypothesis orders examples by size first, so a shrunk body is
the one with the fewest fields and choices: a number-filter push, with no text at all, counts as
plainer than a bulk one.)

What is drawn follows ``docs/contract.md`` and the JSON Schemas in ``schemas/``: section 2 for requests
(2.2 for the quirks of real clients), section 3 for success answers, section 4 for status codes,
section 5 for the Delivery Report API, section 6 for webhooks and instant replies. One module per
subject: :mod:`.numbers`, :mod:`.texts`, :mod:`.requests`, :mod:`.invalid_requests`, :mod:`.answers`,
:mod:`.delivery_reports`, :mod:`.webhooks`.
"""

from __future__ import annotations

try:
    import hypothesis
except ImportError:
    # One line that says what to do, rather than a traceback deep inside the first submodule.
    raise ImportError("picky_mock.strategies needs Hypothesis: pip install 'picky-mock[hypothesis]'") from None
del hypothesis

from .answers import error_responses, push_responses  # noqa: E402
from .channels import CHANNELS  # noqa: E402
from .delivery_reports import delivery_report_requests, delivery_report_responses  # noqa: E402
from .invalid_requests import (  # noqa: E402
    BODY_STATUSES,
    INVALID_REQUEST_RULES,
    InvalidPushRequest,
    invalid_push_requests,
)
from .numbers import MALFORMED_NUMBER_FORMS, phone_numbers  # noqa: E402
from .requests import VARIANTS, push_requests  # noqa: E402
from .texts import ENCODINGS, message_texts  # noqa: E402
from .webhooks import INBOUND_TYPES, delivery_report_events, inbound_messages, instant_replies  # noqa: E402

__all__ = [
    "BODY_STATUSES",
    "CHANNELS",
    "ENCODINGS",
    "INBOUND_TYPES",
    "INVALID_REQUEST_RULES",
    "MALFORMED_NUMBER_FORMS",
    "VARIANTS",
    "InvalidPushRequest",
    "delivery_report_events",
    "delivery_report_requests",
    "delivery_report_responses",
    "error_responses",
    "inbound_messages",
    "instant_replies",
    "invalid_push_requests",
    "message_texts",
    "phone_numbers",
    "push_requests",
    "push_responses",
]
