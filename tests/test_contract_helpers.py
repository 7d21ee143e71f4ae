"""The contract helpers: ``validate_request`` / ``validate_response`` and their ``assert_valid_*``
forms, on the docs' own samples, on hand-written cases, and as properties over the strategies."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from pushing import SEED_REQUEST, SEED_RESPONSE

from picky_mock import validate_request as exported_validate_request
from picky_mock import validate_response as exported_validate_response
from picky_mock.contract import (
    STATUS_PRECEDENCE,
    Violation,
    assert_valid_request,
    assert_valid_response,
    default_contract,
    validate_request,
    validate_response,
)
from picky_mock.errors import STATUS_MESSAGES
from picky_mock.strategies import (
    error_responses,
    invalid_push_requests,
    push_requests,
    push_responses,
)

#: The docs' bulk page: its "Sample Request Body JSON" (placeholders included) and "Sample Response".
DOCS_SAMPLE_REQUEST, DOCS_SAMPLE_RESPONSE = SEED_REQUEST, SEED_RESPONSE


def test_the_package_exports_the_same_helpers():
    assert exported_validate_request is validate_request
    assert exported_validate_response is validate_response


# -- requests ----------------------------------------------------------------------------------


def test_docs_sample_request_with_its_placeholders_breaks_the_number_rule_five_times():
    violations = validate_request(DOCS_SAMPLE_REQUEST)
    assert [v.path for v in violations] == [f"$.data[{i}].number" for i in range(5)]
    assert {v.status for v in violations} == {406}
    assert [v.found for v in violations] == [f'"NUMBER {i}"' for i in range(1, 6)]
    assert 'no "+"' in violations[0].expected and "55123456789" in violations[0].expected


def test_docs_sample_request_with_real_numbers_is_valid():
    body = copy.deepcopy(DOCS_SAMPLE_REQUEST)
    for i, item in enumerate(body["data"]):
        item["number"] = f"5511987654{i:03d}"
    assert validate_request(body) == []
    assert_valid_request(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"application": 1, "globalmessage": "hi", "data": [{"number": "5511987654321"}]}, [("$.token", 401)]),
        ({"token": " ", "application": 1, "globalmessage": "hi", "data": [{"number": "5511987654321"}]},
         [("$.token", 401)]),
        ({"token": "t", "application": 1, "globalmessage": "hi", "data": []}, [("$.data", 402)]),
        ({"token": "t", "application": 1, "globalmessage": "hi"}, [("$.data", 402)]),
        ({"token": "t", "globalmessage": "hi", "data": [{"number": "5511987654321"}]}, [("$.application", 410)]),
        ({"token": "t", "application": "one", "globalmessage": "hi", "data": [{"number": "5511987654321"}]},
         [("$.application", 410)]),
        ({"token": "t", "application": 1, "globalmessage": "hi", "data": [{"number": "+5511987654321"}]},
         [("$.data[0].number", 406)]),
        # messenger_id stands for number on Messenger (5, 5.0, "5") only
        ({"token": "t", "application": 1, "globalmessage": "hi", "data": [{"messenger_id": "2415"}]},
         [("$.data[0].number", 406)]),
        ({"token": "t", "application": "3", "globalmessage": "hi",
          "data": [{"number": "5511987654321"}, {"messenger_id": 2415}]}, [("$.data[1].number", 406)]),
        ({"token": "t", "application": "5", "globalmessage": "hi", "data": [{"messenger_id": "2415"}]}, []),
        ({"token": "t", "application": 5.0, "globalmessage": "hi", "data": [{"messenger_id": 2415}]}, []),
        ({"token": "t", "application": 1, "globalmessage": "hi", "data": [{"phone": "5511987654321"}]},
         [("$.data[0]", 406)]),
        ({"token": "t", "application": 1, "data": [{"number": "5511987654321", "message": ""}]},
         [("$.data[0]", 407)]),
        ([DOCS_SAMPLE_REQUEST], [("$", 410)]),
        ("not a push", [("$", 410)]),
    ],
)
def test_validate_request_names_the_path_and_the_code(body, expected):
    violations = validate_request(body)
    assert [(v.path, v.status) for v in violations] == expected
    assert all(isinstance(v, Violation) for v in violations)


def test_violations_come_in_the_order_of_status_precedence():
    body = {"token": "", "application": "x", "data": [{"number": "0123"}]}
    statuses = [v.status for v in validate_request(body)]
    assert statuses == sorted(statuses, key=STATUS_PRECEDENCE.index)
    assert statuses[0] == 401


def test_a_violation_reads_as_one_line():
    (violation,) = validate_request({"token": "t", "application": 1, "globalmessage": "x", "data": [{"number": "0"}]})
    assert str(violation) == (
        '$.data[0].number: expected 7 to 15 digits with the country code, no "+", no leading 0 or 00, '
        'no spaces (e.g. "55123456789"), found "0" (status 406)'
    )


def test_assert_valid_request_failure_message():
    body = {"token": "", "application": 1, "data": []}
    with pytest.raises(AssertionError) as failure:
        assert_valid_request(body)
    assert str(failure.value).splitlines() == [
        "request breaks the Picky Assist contract in 2 place(s):",
        '  $.token: expected a non-blank string: your API token, found "" (the API answers 401)',
        "  $.data: expected a non-empty list of recipients, found [] (the API answers 402)",
        'the request: {"token": "", "application": 1, "data": []}',
    ]


def test_assert_valid_request_abridges_a_long_body():
    body = {"token": "t", "application": 1, "globalmessage": "x" * 5000, "data": [{"phone": "5511987654321"}]}
    with pytest.raises(AssertionError) as failure:
        assert_valid_request(body)
    message = str(failure.value)
    assert len(message) < 1000
    assert message.endswith("…")
    assert "$.data[0]: expected a \"number\" (or \"messenger_id\" for Messenger)" in message


def test_assert_valid_request_on_a_value_json_cannot_hold():
    with pytest.raises(AssertionError, match=r"\$: expected a JSON object"):
        assert_valid_request({1, 2})


# -- responses ---------------------------------------------------------------------------------


def test_docs_sample_response_is_valid():
    assert validate_response(DOCS_SAMPLE_RESPONSE) == []
    assert_valid_response(DOCS_SAMPLE_RESPONSE)


@pytest.mark.parametrize("status", sorted(set(STATUS_MESSAGES) - {100}))
def test_every_error_answer_of_the_contract_is_valid(status):
    assert_valid_response({"status": status, "message": STATUS_MESSAGES[status]})


@pytest.mark.parametrize(
    ("answer", "path"),
    [
        ({"status": 406}, "$.message"),
        ({"status": 406, "message": ""}, "$.message"),
        ({**DOCS_SAMPLE_RESPONSE, "push_id": 7478630}, "$.push_id"),
        ({**DOCS_SAMPLE_RESPONSE, "data": [{"msg_id": "1", "number": "1", "credit": 0.005}]}, "$.data[0].credit"),
        ({**DOCS_SAMPLE_RESPONSE, "data": [{"msg_id": "1", "number": "1", "credit": "5e-3"}]}, "$.data[0].credit"),
        ({**DOCS_SAMPLE_RESPONSE, "message": "OK"}, "$.message"),
        ({"status": "406", "message": "Invalid Mobile Number"}, "$.status"),
    ],
)
def test_validate_response_names_the_path(answer, path):
    assert path in [v.path for v in validate_response(answer)]


def test_assert_valid_response_failure_message():
    answer = {**DOCS_SAMPLE_RESPONSE, "data": [{"msg_id": 9844217, "number": "934343442290", "credit": "0.005"}]}
    with pytest.raises(AssertionError) as failure:
        assert_valid_response(answer)
    lines = str(failure.value).splitlines()
    assert lines[0] == "response breaks the Picky Assist contract in 1 place(s):"
    assert lines[1].startswith("  $.data[0].msg_id: expected a JSON string, found 9844217")
    assert lines[-1].startswith('the response: {"status": 100, "push_id": "7478630"')


def test_response_failures_do_not_claim_an_api_status():
    with pytest.raises(AssertionError) as failure:
        assert_valid_response({"status": 406})
    assert "the API answers" not in str(failure.value)


def test_extra_keys_in_an_error_answer_read_well():
    with pytest.raises(AssertionError) as failure:
        assert_valid_response({"status": 406, "message": "Invalid Mobile Number", "detail": "x"})
    assert "expected Additional properties" not in str(failure.value)
    assert '$.detail: expected no such key (allowed: status, message), found "x"' in str(failure.value)


# -- properties --------------------------------------------------------------------------------


@settings(max_examples=60)
@given(push_requests())
def test_every_drawn_request_is_valid_for_both_validators(body):
    assert validate_request(body) == []
    assert_valid_request(body)
    contract = default_contract()
    assert contract.is_valid("request", body) and contract.is_valid_reference("request", body)


@settings(max_examples=80)
@given(invalid_push_requests())
def test_every_drawn_invalid_request_fails_first_with_its_code(case):
    violations = validate_request(case.body)
    assert violations and violations[0].status == case.status
    contract = default_contract()
    assert not contract.is_valid("request", case.body)
    assert not contract.is_valid_reference("request", case.body)
    with pytest.raises(AssertionError, match=rf"\(the API answers {case.status}\)"):
        assert_valid_request(case.body)


@settings(max_examples=40)
@given(push_responses())
def test_every_drawn_success_answer_is_valid(answer):
    assert validate_response(answer) == []
    assert_valid_response(answer)


@settings(max_examples=30)
@given(error_responses())
def test_every_drawn_error_answer_is_valid(answer):
    assert validate_response(answer) == []
    assert_valid_response(answer)


def test_a_push_of_thousands_of_wrong_recipients_is_reported_on_the_first_thousand_and_each_other_kind():
    """Every recipient wrong in its own way: the report names the first 1,000 of them and one of each
    other way to fail, and the status it gives is the one the full report gives."""
    data = [{"number": f"+55119{i:08d}", "message": "x"} for i in range(3000)]
    data[0] = {"number": "5511987654321", "message": "x"}  # valid: the first wrong one is data[1]
    data[2990] = {"messenger_id": "2415", "message": "x"}  # another way to fail, past the first 1,000
    data[2995] = {"number": "5511987654321"}  # and another: no text, and the push has no global text
    body = {"token": "t", "application": 1, "data": data}
    report = validate_request(body)
    paths = [v.path for v in report]
    assert len(report) == 1002 and len(set(paths)) == 1002
    assert {f"$.data[{i}].number" for i in range(1, 1001)} <= set(paths)
    assert paths[:3] == ["$.data[1].number", "$.data[2].number", "$.data[3].number"]  # in document order
    assert "$.data[2990].number" in paths and "$.data[2995]" in paths and "$.data[1500].number" not in paths
    # The full report, in slices of 500 recipients (each reported in full): all 2,999 wrong ones.
    full = []
    for start in range(0, len(data), 500):
        for violation in validate_request({**body, "data": data[start : start + 500]}):
            index, _, rest = violation.path.removeprefix("$.data[").partition("]")
            full.append(f"$.data[{int(index) + start}]{rest}")
    assert len(full) == 2999 and len(set(full)) == 2999 and set(paths) <= set(full)
    # The leading violation of the full report is the capped report's: every item is judged alone, so
    # the body with only the first wrong recipient of each kind leads with the same one.
    firsts = {1, 2990, 2995}
    valid = data[0]
    uncapped = validate_request({**body, "data": [item if i in firsts else valid for i, item in enumerate(data)]})
    assert len(uncapped) == 3 and uncapped[0] == report[0]
