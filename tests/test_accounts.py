"""The account model (docs/contract.md §4): open mode, configured tokens, balances, plans,
official channels, templates, the 24-hour window, the rate limit, and check-balance."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import requests
from pushing import channel_push, status_of

from picky_mock.accounts import UNLIMITED_BALANCE_REPORTED
from picky_mock.config import Settings
from picky_mock.errors import ConfigError
from picky_mock.server import ServerThread

NUMBER = "5511987654321"
push_body = channel_push
OTHER = "5511900000002"
TIMEOUT = 5.0
BALANCE_PATHS = ("/api/v2/check-balance", "/app/api/v2/check-balance")


def template_body(*numbers: str, template_id: str = "welcome_v2", channel: int = 8, token: str = "tok"):
    return {
        "token": token,
        "application": channel,
        "template_id": template_id,
        "language": "en",
        "data": [{"number": n, "template_message": ["Ana"]} for n in (numbers or (NUMBER,))],
    }


@pytest.fixture(scope="module")
def client():
    with httpx.Client(timeout=TIMEOUT) as c:
        yield c


def balance_of(client, base_url, token="tok", path=BALANCE_PATHS[0]):
    r = client.post(base_url + path, json={"token": token})
    assert r.status_code == 200
    return r.json()


# -- open mode ---------------------------------------------------------------------------------


def test_open_mode_any_non_blank_token(picky_server, client):
    assert picky_server.backend.accounts.open
    for token in ("tok", "anything-at-all", "x"):
        assert status_of(client, picky_server.push_url, push_body(token=token)) == 100
    for token in ("", "   "):
        assert status_of(client, picky_server.push_url, push_body(token=token)) == 401
    body = push_body()
    del body["token"]
    assert status_of(client, picky_server.push_url, body) == 401


def test_open_mode_unlimited(picky_server, client):
    for i in range(5):
        assert status_of(client, picky_server.push_url, push_body(*[f"55119{i:02d}{j:06d}" for j in range(20)])) == 100
    answer = balance_of(client, picky_server.url, token="whoever")
    assert answer == {"balance": float(UNLIMITED_BALANCE_REPORTED), "status": 100, "message": "Success"}


def test_open_mode_no_window_and_official(picky_server, client):
    for channel in (8, 101, 121):
        assert status_of(client, picky_server.push_url, push_body(channel=channel)) == 100


# -- configured tokens --------------------------------------------------------------------------


def test_configured_tokens_only(picky_server, client):
    picky_server.set_account("good")
    assert not picky_server.backend.accounts.open
    assert status_of(client, picky_server.push_url, push_body(token="good")) == 100
    r = client.post(picky_server.push_url, json=push_body(token="bad"))
    assert r.json() == {"status": 401, "message": "Authentication Failed"}
    assert "not one of the configured accounts" in r.headers["x-picky-error"]
    assert len(picky_server.pushes()) == 1


def test_balance_debited_by_credits(picky_server, client):
    picky_server.set_account("tok", balance="1.00")
    answers = [
        client.post(picky_server.push_url, json=push_body(NUMBER, OTHER)).json(),
        client.post(picky_server.push_url, json=push_body(channel=3, text="x" * 200)).json(),  # SMS, 2 segments
    ]
    spent = sum(Decimal(item["credit"]) for a in answers for item in a["data"])
    assert spent == Decimal("0.005") * 2 + Decimal("0.01") * 2
    assert picky_server.balance("tok") == Decimal("1.00") - spent
    assert Decimal(str(balance_of(client, picky_server.url)["balance"])) == Decimal("1.00") - spent


def test_insufficient_balance_403_nothing_debited_nothing_sent(picky_server, client):
    picky_server.set_account("tok", balance="0.012")
    assert status_of(client, picky_server.push_url, push_body(NUMBER, OTHER)) == 100
    assert picky_server.balance("tok") == Decimal("0.002")
    messages_before = len(picky_server.messages())
    r = client.post(picky_server.push_url, json=push_body(text="cannot pay"))
    assert r.json() == {"status": 403, "message": "Insufficient Balance"}
    assert picky_server.balance("tok") == Decimal("0.002")
    assert len(picky_server.messages()) == messages_before
    picky_server.assert_not_pushed(text="cannot pay")
    entry = picky_server.requests[-1]
    assert entry.status == 403 and not entry.accepted and not entry.messages
    assert balance_of(client, picky_server.url)["balance"] == pytest.approx(0.002)
    # no ids were taken by the refused push
    picky_server.set_account("tok", balance="1")
    nxt = client.post(picky_server.push_url, json=push_body()).json()
    assert int(nxt["push_id"]) == int(picky_server.pushes()[0].push_id) + 1


def test_whole_push_must_be_payable(picky_server, client):
    picky_server.set_account("tok", balance="0.009")  # pays one message of 0.005, not two
    assert status_of(client, picky_server.push_url, push_body(NUMBER, OTHER)) == 403
    assert picky_server.balance("tok") == Decimal("0.009") and picky_server.messages() == []
    assert status_of(client, picky_server.push_url, push_body(NUMBER)) == 100
    assert picky_server.balance("tok") == Decimal("0.004")


def test_api_false_405(picky_server, client):
    picky_server.set_account("tok", api=False)
    r = client.post(picky_server.push_url, json=push_body())
    assert r.json() == {"status": 405, "message": "API Is Not Active For This Plan"}
    assert picky_server.pushes() == []


def test_active_false_408(picky_server, client):
    picky_server.set_account("tok", active=False)
    assert client.post(picky_server.push_url, json=push_body()).json() == {
        "status": 408,
        "message": "Project is not Active",
    }


@pytest.mark.parametrize("channel", [8, 101, 121])
def test_official_false_801_on_official_channels(picky_server, client, channel):
    picky_server.set_account("tok", official=False)
    picky_server.open_session(NUMBER)
    r = client.post(picky_server.push_url, json=push_body(channel=channel))
    assert r.json() == {"status": 801, "message": "Official WhatsApp Account Not Active"}
    assert status_of(client, picky_server.push_url, template_body(channel=channel)) == 801
    assert status_of(client, picky_server.push_url, push_body(channel=1)) == 100


def test_templates_804(picky_server, client):
    picky_server.set_account("tok", templates=["welcome_v2", "otp_v1"])
    r = client.post(picky_server.push_url, json=template_body(template_id="promo_2024"))
    assert r.json() == {"status": 804, "message": "Invalid Template ID"}
    assert "welcome_v2" in r.headers["x-picky-error"]
    assert status_of(client, picky_server.push_url, template_body(template_id="welcome_v2")) == 100
    assert status_of(client, picky_server.push_url, template_body(template_id="otp_v1")) == 100
    assert len(picky_server.pushes()) == 2


def test_templates_not_checked_when_not_configured(picky_server, client):
    picky_server.set_account("tok")
    assert status_of(client, picky_server.push_url, template_body(template_id="whatever")) == 100


# -- the 24-hour window -------------------------------------------------------------------------


@pytest.mark.parametrize("channel", [8, 101, 121])
def test_window_802_free_text_template_passes(picky_server, client, channel):
    picky_server.set_account("tok")
    r = client.post(picky_server.push_url, json=push_body(channel=channel))
    assert r.json() == {"status": 802, "message": "Not Contactable 24 Hours Session Expired"}
    assert status_of(client, picky_server.push_url, template_body(channel=channel)) == 100
    assert status_of(client, picky_server.push_url, push_body(channel=1)) == 100  # not official


def test_window_open_and_close_session_from_test(picky_server, client):
    picky_server.set_account("tok")
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 802
    picky_server.open_session(NUMBER)
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 100
    # every recipient needs a session: the second has none
    r = client.post(picky_server.push_url, json=push_body(NUMBER, OTHER, channel=8))
    assert r.json()["status"] == 802 and "$.data[1]" in r.headers["x-picky-error"]
    picky_server.close_session(NUMBER)
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 802
    picky_server.open_session(int(OTHER), hours=0.001)
    assert OTHER in picky_server.backend.accounts.sessions()


def test_window_expired_session(picky_server, client):
    picky_server.set_account("tok")
    picky_server.open_session(NUMBER, hours=-1)
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 802


def test_window_false_not_enforced(picky_server, client):
    picky_server.set_account("tok", window=False)
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 100


def test_window_sessions_from_config():
    settings = Settings(port=0, log_level="critical", extra={"accounts": {"tok": {"sessions": [NUMBER, int(OTHER)]}}})
    with ServerThread(settings) as server, httpx.Client(timeout=TIMEOUT) as c:
        assert status_of(c, server.push_url, push_body(NUMBER, OTHER, channel=8)) == 100
        assert status_of(c, server.push_url, push_body("5511900000003", channel=8)) == 802
        server.backend.accounts.close_session(NUMBER)
        assert status_of(c, server.push_url, push_body(NUMBER, channel=8)) == 802
        server.backend.reset()  # back to the configured sessions
        assert status_of(c, server.push_url, push_body(NUMBER, channel=8)) == 100
        assert sorted(c.get(server.url + "/_picky/sessions").json()["sessions"]) == sorted([NUMBER, OTHER])


def test_window_sessions_admin_api(picky_server, client):
    picky_server.set_account("tok")
    url = picky_server.url + "/_picky/sessions"
    r = client.post(url, json={"number": NUMBER})
    assert r.status_code == 201 and r.json()["opened"] == NUMBER
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 100
    assert client.post(url, json={"number": int(OTHER), "hours": 1}).status_code == 201
    assert sorted(client.get(url).json()["sessions"]) == sorted([NUMBER, OTHER])
    assert client.delete(f"{url}/{NUMBER}").json() == {"closed": NUMBER}
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 802
    assert status_of(client, picky_server.push_url, push_body(OTHER, channel=8)) == 100
    assert client.post(url, json={"nummer": NUMBER}).status_code == 400


def test_sessions_admin_api_bad_hours_400():
    with ServerThread(Settings(port=0, log_level="critical")) as server, httpx.Client(timeout=TIMEOUT) as c:
        r = c.post(server.url + "/_picky/sessions", json={"number": NUMBER, "hours": "a day"})
        server.backend.take_server_errors()
    assert r.status_code == 400


def test_set_account_sessions(picky_server, client):
    picky_server.set_account("tok", sessions=[NUMBER])
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 100


# -- the rate limit -----------------------------------------------------------------------------


def test_rate_limit_off_by_default(picky_server, client):
    assert picky_server.backend.accounts.rate_limit is None
    codes = {client.post(picky_server.push_url, json=push_body(text=f"m{i}")).status_code for i in range(95)}
    assert codes == {200}
    assert len(picky_server.pushes()) == 95


def test_rate_limit_429_with_retry_after_per_token(picky_server, client):
    picky_server.set_rate_limit(3)
    for i in range(3):
        assert status_of(client, picky_server.push_url, push_body(text=f"ok {i}")) == 100
    r = client.post(picky_server.push_url, json=push_body(text="too many"))
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.json() == {"status": 429, "message": "Too Many Requests"}
    entry = picky_server.requests[-1]
    assert entry.http_status == 429 and not entry.accepted
    picky_server.assert_not_pushed(text="too many")
    # other tokens have their own window
    assert status_of(client, picky_server.push_url, push_body(token="other")) == 100
    assert client.post(picky_server.push_url, json=push_body()).status_code == 429
    picky_server.set_rate_limit(None)
    assert status_of(client, picky_server.push_url, push_body()) == 100


def test_rate_limit_requests_client(picky_server):
    picky_server.set_rate_limit(1)
    first = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    second = requests.post(picky_server.push_url, json=push_body(), timeout=TIMEOUT)
    assert first.status_code == 200
    assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
    with pytest.raises(requests.HTTPError):
        second.raise_for_status()


def test_rate_limit_drop(picky_server, client):
    picky_server.set_rate_limit(2, action="drop")
    for i in range(2):
        assert status_of(client, picky_server.push_url, push_body(text=f"ok {i}")) == 100
    r = client.post(picky_server.push_url, json=push_body(NUMBER, OTHER, text="dropped"))
    answer = r.json()
    assert r.status_code == 200 and answer["status"] == 100 and answer["push_id"]
    assert [d["number"] for d in answer["data"]] == [NUMBER, OTHER]
    price = picky_server.messages()[0].credit
    assert [d["credit"] for d in answer["data"]] == [price, price], "nothing in the answer tells it was dropped"
    entry = picky_server.requests[-1]
    assert entry.dropped and not entry.accepted
    assert picky_server.messages(text="dropped") == []
    assert len(picky_server.messages()) == 2 and len(picky_server.pushes()) == 2
    assert "dropped" in r.headers["x-picky-error"]


def test_rate_limit_counts_only_authenticated_pushes(picky_server, client):
    picky_server.set_account("tok")
    picky_server.set_rate_limit(2)
    for _ in range(3):
        assert status_of(client, picky_server.push_url, push_body(token="intruder")) == 401
    assert [status_of(client, picky_server.push_url, push_body()) for _ in range(2)] == [100, 100]
    assert client.post(picky_server.push_url, json=push_body()).status_code == 429


def test_check_balance_not_counted_by_push_rate_limit(picky_server, client):
    picky_server.set_rate_limit(2)
    for _ in range(2):
        balance_of(client, picky_server.url)
    assert client.post(picky_server.push_url, json=push_body()).status_code == 200


def test_rate_limit_admin_api(picky_server, client):
    url = picky_server.url + "/_picky/rate-limit"
    r = client.put(url, json={"per_minute": 1, "action": "429"})
    assert r.json() == {"rate_limit": {"per_minute": 1, "action": "429"}}
    assert status_of(client, picky_server.push_url, push_body()) == 100
    assert client.post(picky_server.push_url, json=push_body()).status_code == 429
    assert client.put(url, json={}).json() == {"rate_limit": None}
    assert status_of(client, picky_server.push_url, push_body()) == 100
    for bad in ({"per_minute": 0}, {"action": "slow"}, {"per_mnute": 3}):
        assert client.put(url, json=bad).status_code == 400


# -- check-balance ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", BALANCE_PATHS)
def test_check_balance_reflects_debits(picky_server, client, path):
    picky_server.set_account("tok", balance="59.108")
    before = client.post(picky_server.url + path, json={"token": "tok"})
    assert before.status_code == 200 and before.headers["content-type"].startswith("application/json")
    assert before.json() == {"balance": 59.108, "status": 100, "message": "Success"}
    assert isinstance(before.json()["balance"], float)
    assert status_of(client, picky_server.push_url, push_body(NUMBER, OTHER)) == 100
    assert balance_of(client, picky_server.url, path=path)["balance"] == pytest.approx(59.098)


def test_check_balance_requests_and_bad_token(picky_server):
    picky_server.set_account("tok", balance="2")
    r = requests.post(picky_server.url + "/app/api/v2/check-balance", json={"token": "tok"}, timeout=TIMEOUT)
    assert r.json() == {"balance": 2.0, "status": 100, "message": "Success"}
    for token in ("nope", "", None):
        r = requests.post(picky_server.url + "/api/v2/check-balance", json={"token": token}, timeout=TIMEOUT)
        assert r.status_code == 200 and r.json() == {"status": 401, "message": "Authentication Failed"}


def test_check_balance_plan_and_activity(picky_server, client):
    picky_server.set_account("noapi", api=False)
    picky_server.set_account("idle", active=False)
    assert balance_of(client, picky_server.url, token="noapi")["status"] == 405
    assert balance_of(client, picky_server.url, token="idle")["status"] == 408


# -- setting accounts: marker, admin API, config ------------------------------------------------


@pytest.mark.picky(accounts={"tok": {"balance": "0.005", "templates": ["welcome_v2"]}}, sessions=[NUMBER], rate_limit=2)
def test_marker_sets_accounts_sessions_rate_limit(picky_server, client):
    assert picky_server.balance("tok") == Decimal("0.005")
    assert status_of(client, picky_server.push_url, push_body(token="other")) == 401
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 100  # session from the marker
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 403  # balance spent
    assert client.post(picky_server.push_url, json=push_body()).status_code == 429


def test_accounts_admin_api(picky_server, client):
    url = picky_server.url + "/_picky/accounts"
    r = client.put(f"{url}/tok", json={"balance": "0.005", "official": False})
    assert r.status_code == 200
    assert r.json() == {
        "token": "tok",
        "balance": "0.005",
        "api": True,
        "active": True,
        "official": False,
        "window": True,
        "templates": None,
    }
    state = client.get(url).json()
    assert state["open"] is False and [a["token"] for a in state["accounts"]] == ["tok"]
    assert status_of(client, picky_server.push_url, push_body(token="else")) == 401
    assert status_of(client, picky_server.push_url, push_body(channel=8)) == 801
    r = client.patch(f"{url}/tok", json={"api": False})
    assert r.json()["balance"] == "0.005" and r.json()["official"] is False  # a change keeps the rest
    assert status_of(client, picky_server.push_url, push_body()) == 405
    assert client.put(f"{url}/tok", json={"colour": "red"}).status_code == 400
    assert client.put(f"{url}/tok", json={"balance": "lots"}).status_code == 400
    assert client.put(f"{url}/tok", json=["x"]).status_code == 400
    assert client.delete(url).json() == {"open": True}
    assert status_of(client, picky_server.push_url, push_body(token="else")) == 100


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"balance": "lots"}, "is not a decimal number"),
        ({"balance": -1}, "balance = -1 must be a finite amount >= 0"),
        ({"api": "yes"}, "api must be true or false"),
        ({"templates": "welcome"}, "templates must be a list"),
        ({"colour": "red"}, "unknown key(s) colour"),
    ],
)
def test_bad_account_config(spec, fragment):
    with pytest.raises(ConfigError) as info:
        ServerThread(Settings(port=0, extra={"accounts": {"tok": spec}}))
    assert fragment in str(info.value)


def test_reset_restores_configured_accounts():
    settings = Settings(port=0, log_level="critical", extra={"accounts": {"tok": {"balance": "0.005"}}})
    with ServerThread(settings) as server, httpx.Client(timeout=TIMEOUT) as c:
        assert status_of(c, server.push_url, push_body()) == 100
        assert status_of(c, server.push_url, push_body()) == 403
        server.backend.accounts.set("extra")
        server.backend.reset()
        assert status_of(c, server.push_url, push_body()) == 100  # balance back
        assert status_of(c, server.push_url, push_body(token="extra")) == 401


def test_the_drop_rate_limit_answers_even_a_body_it_never_judges(client, picky_server):
    picky_server.set_account("t")
    picky_server.set_rate_limit(1, action="drop")
    client.post(picky_server.push_url, json=push_body(token="t"))
    answer = client.post(picky_server.push_url, json={**push_body(token="t"), "data": [1, {"number": 1e300}]})
    assert answer.status_code == 200 and answer.json()["status"] == 100
    assert picky_server.rejected()[-1].dropped


def test_account_keys_are_checked_over_http(client, picky_server):
    url = picky_server.url + "/_picky/accounts/x"
    answer = client.put(url, headers=picky_server.admin_headers, json={"token": "y"})
    assert answer.status_code == 400 and "unknown key(s) token" in answer.json()["error"]
