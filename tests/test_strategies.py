"""The strategies of :mod:`picky_mock.strategies`, each against an independent check.

The checks here use jsonschema directly on the schema files (not :mod:`picky_mock.contract`), the
character sets of GSM 03.38, and plain Python. That the mock answers what the strategies say is in
``test_properties.py``.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument, NoSuchExample

import picky_mock.strategies as strategies
from picky_mock.contract import validate_request
from picky_mock.errors import STATUS_MESSAGES
from picky_mock.pricing import GSM7_BASIC, GSM7_EXTENSION
from picky_mock.strategies import (
    BODY_STATUSES,
    CHANNELS,
    ENCODINGS,
    INVALID_REQUEST_RULES,
    MALFORMED_NUMBER_FORMS,
    VARIANTS,
    InvalidPushRequest,
    delivery_report_events,
    delivery_report_requests,
    delivery_report_responses,
    error_responses,
    inbound_messages,
    instant_replies,
    invalid_push_requests,
    message_texts,
    phone_numbers,
    push_requests,
    push_responses,
)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _validator(name: str, pointer: str | None = None) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    if pointer is not None:
        schema = {"$ref": f"#/$defs/{pointer}", "$defs": schema["$defs"]}
    return jsonschema.Draft202012Validator(schema)


REQUEST = _validator("push-request")
RESPONSE = _validator("push-response")
ERROR = _validator("error-response")
PHONE = _validator("push-request", "phoneNumber")

#: ITU-T E.164 country calling codes the strategy claims to use (independent list).
CALLING_CODES = {
    "1", "7", "20", "27", "33", "34", "39", "43", "44", "49", "52", "55", "60", "61", "62", "63", "65",
    "86", "91", "92", "234", "254", "683", "852", "880", "966", "971",
}
PHONE_AUTOMATION = {1, 2, 3, 4}


def _schema_errors(validator: jsonschema.Draft202012Validator, value: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


def _calling_code(digits: str) -> str | None:
    return next((digits[:n] for n in (1, 2, 3) if digits[:n] in CALLING_CODES), None)


def reach(strategy, condition, max_examples=2000):
    """An example of ``strategy`` that meets ``condition``: only reachability matters, so no shrinking."""
    return find(
        strategy, condition, settings=settings(max_examples=max_examples, phases=[Phase.generate], database=None)
    )


def _json_roundtrip(value: object) -> object:
    return json.loads(json.dumps(value))


# -- the module --------------------------------------------------------------------------------


def test_importing_picky_mock_does_not_import_hypothesis():
    code = "import picky_mock, sys; assert 'hypothesis' not in sys.modules, 'hypothesis imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    code = "import picky_mock.strategies, sys; assert 'hypothesis' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_the_strategies_reads_no_source():
    # Wrapping a composite reads its source, milliseconds each: the strategies wrap theirs on first use.
    code = (
        "import inspect, hypothesis.strategies, picky_mock\n"
        "read = []\n"
        "original = inspect.getsource\n"
        "def counted(obj): read.append(obj); return original(obj)\n"
        "inspect.getsource = counted\n"
        "import picky_mock.strategies\n"
        "assert read == [], read\n"
        "picky_mock.strategies.push_requests()\n"
        "assert read, 'the check that this test relies on is gone'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


#: Two ways Hypothesis is missing: a finder that finds no such module (as when it is not installed)
#: and the ``sys.modules`` entry that blocks an import.
WITHOUT_HYPOTHESIS = {
    "not installed": """
import sys

class NoHypothesis:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoHypothesis())
""",
    "blocked": "import sys; sys.modules['hypothesis'] = None\n",
}
IMPORTS = ["import picky_mock.strategies", "from picky_mock.strategies import push_requests",
           "import picky_mock.strategies.webhooks"]


@pytest.mark.parametrize("blocker", WITHOUT_HYPOTHESIS)
@pytest.mark.parametrize("statement", IMPORTS)
def test_importing_the_strategies_without_hypothesis_says_what_to_install(blocker, statement):
    ran = subprocess.run(
        [sys.executable, "-c", WITHOUT_HYPOTHESIS[blocker] + statement], capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 1
    last = ran.stderr.strip().splitlines()[-1]
    assert last == "ImportError: picky_mock.strategies needs Hypothesis: pip install 'picky-mock[hypothesis]'"
    assert "During handling" not in ran.stderr  # one error, not a chain of them
    # The rest of picky-mock does not need it.
    code = WITHOUT_HYPOTHESIS[blocker] + "import picky_mock.testing, picky_mock.server"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


PUBLIC_STRATEGIES = [
    phone_numbers, message_texts, push_requests, invalid_push_requests, push_responses, error_responses,
    delivery_report_requests, delivery_report_responses, delivery_report_events, inbound_messages, instant_replies,
]
PUBLIC_CONSTANTS = {
    "BODY_STATUSES", "CHANNELS", "ENCODINGS", "INBOUND_TYPES", "INVALID_REQUEST_RULES", "MALFORMED_NUMBER_FORMS",
    "VARIANTS", "InvalidPushRequest",
}
SUBJECTS = ("numbers", "texts", "requests", "invalid_requests", "answers", "delivery_reports", "webhooks")


def test_all_lists_the_public_names():
    public = {f.__name__ for f in PUBLIC_STRATEGIES} | PUBLIC_CONSTANTS
    assert set(strategies.__all__) == public
    for name in public:
        value = getattr(strategies, name)
        if callable(value):  # defined in the module of its subject, re-exported by the package
            assert value.__module__.rsplit(".", 1)[-1] in SUBJECTS, (name, value.__module__)


def test_each_public_name_comes_from_the_module_of_its_subject():
    exported: dict[str, str] = {}
    for subject in (*SUBJECTS, "channels"):
        module = importlib.import_module(f"picky_mock.strategies.{subject}")
        for name in module.__all__:
            assert hasattr(module, name), (subject, name)
            exported.setdefault(name, subject)
    assert set(strategies.__all__) <= set(exported)


@pytest.mark.parametrize("function", PUBLIC_STRATEGIES, ids=lambda f: f.__name__)
def test_house_style(function):
    """Plural names, keyword-only options, a docstring that says what is drawn and how it shrinks."""
    assert function.__name__.endswith("s")
    parameters = inspect.signature(function).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    doc = inspect.getdoc(function) or ""
    assert "Shrinks toward" in doc, function.__name__
    assert isinstance(function(), st.SearchStrategy)


@pytest.mark.parametrize("function", PUBLIC_STRATEGIES, ids=lambda f: f.__name__)
def test_no_health_check_fails_at_default_settings(function):
    # The default settings of the suite keep every health check; the run itself is the test.
    @settings(max_examples=25)
    @given(function())
    def draw(value):
        json.dumps(value)  # every value drawn is JSON

    draw()


@pytest.mark.parametrize(
    "build",
    [
        lambda: phone_numbers(countries=["999"]),
        lambda: phone_numbers(countries="91"),
        lambda: phone_numbers(json_integers=1),
        lambda: phone_numbers(malformed=["with letters"]),
        lambda: phone_numbers(malformed=True, json_integers=True),
        lambda: message_texts(encodings=[]),
        lambda: message_texts(encodings=["latin1"]),
        lambda: message_texts(min_size=-1),
        lambda: message_texts(min_size=5, max_size=2),
        lambda: message_texts(max_size=0),
        lambda: push_requests(min_recipients=0),
        lambda: push_requests(min_recipients=3, max_recipients=2),
        lambda: push_requests(application=5, variants=["bulk", "template"]),
        lambda: push_requests(application=3, variants=["template"]),
        lambda: push_requests(application=0),
        lambda: push_requests(application=[]),
        lambda: push_requests(application="1"),
        lambda: push_requests(variants=["broadcast"]),
        lambda: push_requests(token="   "),
        lambda: push_requests(texts="hello"),
        lambda: push_requests(quirks="yes"),
        lambda: invalid_push_requests(statuses=[100]),
        lambda: invalid_push_requests(statuses=[403]),
        lambda: invalid_push_requests(statuses=[999]),
        lambda: invalid_push_requests(statuses=[]),
        lambda: push_responses(min_size=3, max_size=1),
        lambda: push_responses(request={"data": []}),
        lambda: push_responses(credits="0.005"),
        lambda: error_responses(statuses=[100]),
        lambda: error_responses(statuses=[418]),
    ],
)
def test_impossible_options_are_invalid_arguments(build):
    with pytest.raises(InvalidArgument):
        build().validate()


def test_invalid_argument_messages_say_what_to_do():
    with pytest.raises(InvalidArgument, match=r"account or an injected fault.*401, 402, 406, 407, 410"):
        invalid_push_requests(statuses=[403])
    with pytest.raises(InvalidArgument, match=r"application 5 fits none.*\['messenger'\]"):
        push_requests(application=5, variants=["bulk"])


# -- phone numbers -----------------------------------------------------------------------------


@given(phone_numbers())
def test_phone_numbers_are_accepted_by_the_contract(number):
    assert PHONE.is_valid(number), number
    digits = str(number)
    assert re.fullmatch(r"[1-9][0-9]{6,14}", digits)
    assert _calling_code(digits) is not None


def test_phone_numbers_come_as_strings_and_as_json_integers():
    reach(phone_numbers(), lambda n: isinstance(n, int))
    reach(phone_numbers(), lambda n: isinstance(n, str))
    reach(phone_numbers(), lambda n: len(str(n)) == 7)  # Niue
    reach(phone_numbers(), lambda n: len(str(n)) == 15)  # Austria


@given(phone_numbers(json_integers=False), phone_numbers(json_integers=True))
def test_phone_numbers_json_integers_option(text, integer):
    assert type(text) is str and type(integer) is int


@given(phone_numbers(countries={"55"}, json_integers=False))
def test_phone_numbers_countries_option(number):
    assert number.startswith("55") and len(number) in (12, 13)


@pytest.mark.parametrize(
    ("form", "pattern"),
    [
        ("plus", r"\+[1-9][0-9]{6,14}"),
        ("00", r"00[1-9][0-9]{6,14}"),
        ("spaces", r"[1-9][0-9]{0,2}( [0-9]{1,5})+"),
        ("dashes", r"[1-9][0-9]{0,2}(-[0-9]{1,5})+"),
        ("international", r"\+[1-9][0-9]{0,2}( [0-9]{1,5})+"),
        ("leading_zero", r"0[1-9][0-9]{3,12}"),
    ],
)
def test_malformed_phone_numbers_break_the_contract_in_their_form(form, pattern):
    @given(phone_numbers(malformed=[form]))
    def check(number):
        assert re.fullmatch(pattern, number), number
        assert not PHONE.is_valid(number)

    check()


def test_malformed_forms_are_all_reachable():
    assert set(MALFORMED_NUMBER_FORMS) == {"plus", "00", "spaces", "dashes", "international", "leading_zero"}
    for prefix in ("+", "00", "0"):
        reach(phone_numbers(malformed=True), lambda n, p=prefix: n.startswith(p))
    reach(phone_numbers(malformed=True), lambda n: " " in n)
    reach(phone_numbers(malformed=True), lambda n: "-" in n)


# -- message texts -----------------------------------------------------------------------------


def _encoding_class(text: str) -> str:
    if all(ch in GSM7_BASIC for ch in text):
        return "gsm7"
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return "gsm7_extended"
    if all(ord(ch) <= 0xFFFF for ch in text):
        return "ucs2"
    return "emoji"


def _units(text: str) -> int:
    """Septets for a GSM-7 text, UTF-16 code units otherwise."""
    if _encoding_class(text).startswith("gsm7"):
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_message_texts_belong_to_their_class(encoding):
    @given(message_texts(encodings=[encoding]))
    def check(text):
        assert _encoding_class(text) == encoding, text
        assert len(text) >= 1
        assert "\x00" not in text
        text.encode("utf-8")  # no lone surrogate

    check()


@given(st.data(), st.integers(0, 40), st.integers(1, 400))
def test_message_texts_respect_size_bounds(data, low, extra):
    high = max(low, 1) + extra
    text = data.draw(message_texts(min_size=low, max_size=high))
    assert low <= len(text) <= high


@pytest.mark.parametrize(
    ("encoding", "units"),
    [("gsm7", 160), ("gsm7", 161), ("gsm7_extended", 306), ("gsm7_extended", 307), ("ucs2", 70), ("ucs2", 71),
     ("emoji", 134), ("emoji", 202)],
)
def test_message_texts_land_on_segment_edges(encoding, units):
    text = reach(message_texts(encodings=[encoding]), lambda t: _units(t) == units, max_examples=3000)
    assert _encoding_class(text) == encoding


def test_message_texts_without_boundaries_stay_short():
    @given(message_texts(segment_boundaries=False))
    def check(text):
        assert len(text) <= 100

    check()


def test_message_texts_carry_whatsapp_markup():
    for marker in ("*", "_", "~", "```"):
        reach(message_texts(), lambda t, m=marker: t.count(m) >= 2)
    with pytest.raises(NoSuchExample):
        reach(message_texts(encodings=["gsm7"]), lambda t: "~" in t or "`" in t, max_examples=300)


def test_message_texts_include_a_two_septet_character_across_a_part_boundary():
    # 152 one-septet characters, then one of two septets: the part is full at 153, so the
    # character goes whole to the second part. Such a text exists among the 306-307 septet ones.
    def straddles(text: str) -> bool:
        if _encoding_class(text) != "gsm7_extended" or _units(text) not in (305, 306, 307):
            return False
        used = 0
        for ch in text:
            size = 2 if ch in GSM7_EXTENSION else 1
            if used + size == 154:
                return True
            used += size
        return False

    reach(message_texts(encodings=["gsm7_extended"]), straddles, max_examples=20000)


# -- push requests -----------------------------------------------------------------------------


@settings(max_examples=150)
@given(push_requests())
def test_push_requests_validate_against_the_schema(body):
    assert _schema_errors(REQUEST, _json_roundtrip(body)) == []
    assert 1 <= len(body["data"]) <= 10


#: What marks each variant in a body.
VARIANT_MARKS = {
    "bulk": lambda b: bool(b.get("globalmessage")) and not {"globalmedia_code", "template_id", "action"} & b.keys(),
    "dynamic": lambda b: all(item.get("message") for item in b["data"]) or bool(b.get("globalmessage")),
    "media": lambda b: bool(b.get("globalmedia") or b.get("globalmedia_code"))
    or all(item.get("media") or item.get("media_code") for item in b["data"]),
    "template": lambda b: "template_id" in b and "language" in b,
    "messenger": lambda b: int(b["application"]) == 5 and all("messenger_id" in i for i in b["data"]),
    "number_filter": lambda b: b.get("action") in (1, "1", True),
    "location": lambda b: "location" in b,
    "contact": lambda b: "contact" in b,
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_push_requests_variants(variant):
    @settings(max_examples=30)
    @given(push_requests(variants=[variant]))
    def check(body):
        assert VARIANT_MARKS[variant](body), body
        assert _schema_errors(REQUEST, _json_roundtrip(body)) == []

    check()


def test_push_requests_media_per_recipient_on_official_channels():
    body = reach(push_requests(variants=["media"]), lambda b: all("media" in i or "media_code" in i for i in b["data"]))
    assert int(body["application"]) in (8, 101, 121, 919737001155, 556140404433)


@pytest.mark.parametrize("application", [3, [8, 101], st.sampled_from([1, 2])])
def test_push_requests_application_option(application):
    allowed = {3} if application == 3 else {8, 101} if isinstance(application, list) else {1, 2}

    @settings(max_examples=30)
    @given(push_requests(application=application))
    def check(body):
        assert int(body["application"]) in allowed

    check()


def test_push_requests_application_strategy_that_fits_nothing_is_filtered():
    @settings(max_examples=20)
    @given(push_requests(application=st.sampled_from([3, 8]), variants=["template"]))
    def check(body):
        assert int(body["application"]) == 8

    check()


def test_push_requests_reach_custom_channel_ids():
    reach(push_requests(), lambda b: int(b["application"]) not in CHANNELS)


@settings(max_examples=50)
@given(push_requests(min_recipients=3, max_recipients=4, unique_recipients=True, token="tok-1"))
def test_push_requests_recipient_and_token_options(body):
    assert 3 <= len(body["data"]) <= 4
    keys = [str(item.get("number", item.get("messenger_id"))) for item in body["data"]]
    assert len(set(keys)) == len(keys)
    assert body["token"] == "tok-1"


@given(push_requests(texts=st.just("Fixed text"), variants=["dynamic"]))
def test_push_requests_texts_option(body):
    assert all(item.get("message", "Fixed text") in ("Fixed text", "") for item in body["data"])


KNOWN_TOP = set(
    "token application globalmessage globalmedia globalmedia_code media_name priority template_id language "
    "template_globalmessage template_header voice sticker action location contact data".split()
)
KNOWN_ITEM = set("number messenger_id message template_message language media media_code reference_number".split())


@given(push_requests(quirks=False))
def test_push_requests_without_quirks_use_the_documented_forms(body):
    assert set(body) <= KNOWN_TOP
    assert type(body["application"]) is int
    assert body.get("priority", 0) in (0, 1)
    assert body.get("globalmessage", "x") != ""
    assert body.get("globalmedia", "x") != ""
    for item in body["data"]:
        assert set(item) <= KNOWN_ITEM
        assert type(item.get("number", "")) is str
        assert item.get("message", "x") != ""


#: Each quirk of docs/contract.md §2.2 that push_requests() draws, and how to see it in a body.
QUIRKS = {
    "priority with a trailing space": lambda b: "priority " in b,
    "application as a string": lambda b: type(b["application"]) is str,
    "priority as a string": lambda b: type(b.get("priority", b.get("priority ", 0))) is str,
    "number as a JSON integer": lambda b: any(type(i.get("number")) is int for i in b["data"]),
    "unknown top-level key": lambda b: bool(set(b) - KNOWN_TOP - {"priority "}),
    "top-level reference_number": lambda b: "reference_number" in b,
    "template_id inside a recipient": lambda b: any("template_id" in i for i in b["data"]),
    'message "" beside globalmessage': lambda b: bool(b.get("globalmessage"))
    and any(i.get("message") == "" for i in b["data"]),
    "the global text repeated": lambda b: bool(b.get("globalmessage"))
    and any(i.get("message") == b["globalmessage"] for i in b["data"]),
    'globalmedia ""': lambda b: b.get("globalmedia") == "",
    'globalmessage "" (the docs sample)': lambda b: b.get("globalmessage") == "",
}


@pytest.mark.parametrize("quirk", QUIRKS)
def test_push_requests_draw_each_quirk(quirk):
    reach(push_requests(), QUIRKS[quirk], max_examples=2000)


# -- invalid push requests ---------------------------------------------------------------------


@settings(max_examples=150)
@given(invalid_push_requests())
def test_invalid_push_requests_break_the_schema_in_one_way(case):
    assert isinstance(case, InvalidPushRequest)
    assert case.status in BODY_STATUSES
    body = _json_roundtrip(case.body)
    assert not REQUEST.is_valid(body)
    # Every violation leads to the same code: one rule broken, no precedence involved.
    assert {v.status for v in validate_request(body)} == {case.status}, (case, validate_request(body))


@pytest.mark.parametrize("status", BODY_STATUSES)
def test_invalid_push_requests_statuses_option(status):
    @settings(max_examples=40)
    @given(invalid_push_requests(statuses=[status]))
    def check(case):
        assert case.status == status

    check()


def test_invalid_push_requests_cover_every_rule():
    rules = INVALID_REQUEST_RULES
    assert set(rules) == set(BODY_STATUSES)
    for status, names in rules.items():
        for name in names:
            if name in ("top-level field of the wrong type", "recipient field of the wrong type"):
                continue  # reported under the name of the field
            reach(invalid_push_requests(statuses=[status]), lambda c, n=name: c.rule == n, max_examples=3000)


def test_invalid_push_requests_include_non_objects():
    reach(invalid_push_requests(statuses=[410]), lambda c: isinstance(c.body, str))
    reach(invalid_push_requests(statuses=[410]), lambda c: c.body is None)
    reach(invalid_push_requests(statuses=[410]), lambda c: isinstance(c.body, list))


# -- answers -----------------------------------------------------------------------------------


@given(push_responses())
def test_push_responses_validate_against_the_schema(answer):
    assert _schema_errors(RESPONSE, answer) == []
    assert type(answer["status"]) is int and answer["status"] == 100
    ids = [int(item["msg_id"]) for item in answer["data"]]
    assert ids == sorted(set(ids))
    for item in answer["data"]:
        assert Decimal(item["credit"]) >= 0


@settings(max_examples=50)
@given(st.data())
def test_push_responses_for_a_request_answer_each_recipient_in_order(data):
    body = data.draw(push_requests())
    answer = data.draw(push_responses(request=body))
    assert _schema_errors(RESPONSE, answer) == []
    assert [item["number"] for item in answer["data"]] == [
        str(item.get("number", item.get("messenger_id"))) for item in body["data"]
    ]


def test_push_responses_may_skip_msg_ids():
    def skips(answer):
        ids = [int(item["msg_id"]) for item in answer["data"]]
        return any(b - a > 1 for a, b in itertools.pairwise(ids))

    reach(push_responses(), skips)


@given(push_responses(min_size=0, max_size=3, credits=st.just("0.25")))
def test_push_responses_size_and_credit_options(answer):
    assert len(answer["data"]) <= 3
    assert all(item["credit"] == "0.25" for item in answer["data"])


@given(error_responses())
def test_error_responses_validate_against_the_schema(answer):
    assert _schema_errors(ERROR, answer) == []
    assert answer["message"] == STATUS_MESSAGES[answer["status"]]


@pytest.mark.parametrize("status", sorted(set(STATUS_MESSAGES) - {100}))
def test_error_responses_cover_every_code_of_the_contract(status):
    answer = reach(error_responses(), lambda a: a["status"] == status)
    assert answer == {"status": status, "message": STATUS_MESSAGES[status]}


@given(error_responses(statuses=[403, 801]))
def test_error_responses_statuses_option(answer):
    assert answer["status"] in (403, 801)
