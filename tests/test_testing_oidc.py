"""FakeHyperID as an OpenID provider: discovery, the sign-in, the token endpoint, userinfo.

Driven with plain ``requests`` (through ``fake.mock()``, or ``fake.serve()`` where the
transport matters), as an OIDC client library would drive it; ID tokens are verified
against the JWKS with ``cryptography`` alone. Only the last tests use the app: its
services, with tokens from this sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hyperid_mfa.constants import START_PATH, STATUS_GET_PATH
from hyperid_mfa.testing import FakeHyperID
from tests.conftest import import_or_skip

BASE = "https://api.hyperid.test"
ISSUER = BASE + "/auth/realms/HyperID"
AUTHORIZE = ISSUER + "/protocol/openid-connect/auth"
TOKEN = ISSUER + "/protocol/openid-connect/token"
USERINFO = ISSUER + "/protocol/openid-connect/userinfo"
JWKS = ISSUER + "/protocol/openid-connect/certs"
LOGOUT = ISSUER + "/protocol/openid-connect/logout"
CALLBACK = "http://127.0.0.1:8000/accounts/oidc/hyperid/login/callback/"
REGISTERED = "https://bank.test/oidc/callback/"
T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


def verify_id_token(id_token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims once its RS256 signature checks out; InvalidSignature if not."""
    header_b64, payload_b64, signature_b64 = id_token.split(".")
    header = json.loads(b64d(header_b64))
    assert header["alg"] == "RS256"
    keys = [key for key in jwks["keys"] if key["kid"] == header["kid"]]
    if not keys:
        raise InvalidSignature(f"no key {header['kid']!r} in the JWKS")
    [key] = keys
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    public_key = rsa.RSAPublicNumbers(
        int.from_bytes(b64d(key["e"]), "big"), int.from_bytes(b64d(key["n"]), "big")
    ).public_key()
    public_key.verify(
        b64d(signature_b64),
        f"{header_b64}.{payload_b64}".encode("ascii"),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    claims: dict[str, Any] = json.loads(b64d(payload_b64))
    return claims


class RelyingParty:
    """What an OIDC client library does, one step at a time, with ``requests``."""

    def __init__(self, fake: FakeHyperID, redirect_uri: str = CALLBACK) -> None:
        self.fake = fake
        self.redirect_uri = redirect_uri
        self.http = requests.Session()
        self.verifier = secrets.token_urlsafe(64)

    def authorize(self, **overrides: Any) -> requests.Response:
        params: dict[str, Any] = {
            "response_type": "code",
            "client_id": self.fake.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid profile email mfa-client",
            "state": "state-1",
            "nonce": "nonce-1",
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        params = {key: value for key, value in params.items() if value is not None}
        response: requests.Response = self.http.get(
            self.fake.issuer + "/protocol/openid-connect/auth",
            params=params,
            allow_redirects=False,
            timeout=5,
        )
        return response

    def submit(
        self, page: requests.Response, subject: str = "alice", **form: str
    ) -> requests.Response:
        """Post the sign-in page's form, as the browser does when the user signs in."""
        assert page.status_code in (200, 400), page.text
        data = {"csrf_token": csrf_token(page), "subject": subject, **form}
        response: requests.Response = self.http.post(
            self.fake.issuer + "/protocol/openid-connect/auth",
            data=data,
            allow_redirects=False,
            timeout=5,
        )
        return response

    def code(self, subject: str = "alice", **overrides: Any) -> str:
        back = self.submit(self.authorize(**overrides), subject)
        assert back.status_code == 303, back.text
        return query_of(back.headers["Location"])["code"]

    def token(self, code: str | None, *, basic: bool = True, **overrides: Any) -> requests.Response:
        data: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.verifier,
        }
        auth = None
        if basic:
            auth = (self.fake.client_id, self.fake.client_secret)
        else:
            data.update(client_id=self.fake.client_id, client_secret=self.fake.client_secret)
        data.update(overrides)
        data = {key: value for key, value in data.items() if value is not None}
        response: requests.Response = self.http.post(
            self.fake.token_url, data=data, auth=auth, timeout=5
        )
        return response

    def tokens(self, subject: str = "alice", **overrides: Any) -> dict[str, Any]:
        response = self.token(self.code(subject, **overrides))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def refresh(self, refresh_token: str) -> requests.Response:
        response: requests.Response = self.http.post(
            self.fake.token_url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(self.fake.client_id, self.fake.client_secret),
            timeout=5,
        )
        return response

    def jwks(self) -> dict[str, Any]:
        url = self.fake.issuer + "/protocol/openid-connect/certs"
        answer: dict[str, Any] = self.http.get(url, timeout=5).json()
        return answer

    def mfa(self, path: str, access_token: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.post(
            self.fake.base_url + path,
            json=body,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=5,
        ).json()
        return answer

    def start(self, access_token: str) -> dict[str, Any]:
        question = json.dumps({"version": 1, "action": {"type": "question", "action_info": "?"}})
        return self.mfa(
            START_PATH, access_token, {"template_id": 4, "values": question, "code": "42"}
        )


def openid_configuration(fake: FakeHyperID) -> dict[str, Any]:
    with fake.mock():
        document: dict[str, Any] = requests.get(fake.discovery_url, timeout=5).json()
    return document


def csrf_token(page: requests.Response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None, page.text
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


def oauth_error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> Iterator[FakeHyperID]:
    fake = FakeHyperID(BASE, clock=clock, redirect_uris=[REGISTERED])
    with fake.mock():
        yield fake


@pytest.fixture
def rp(fake: FakeHyperID) -> RelyingParty:
    return RelyingParty(fake)


# ----------------------------------------------------------------------------- discovery


def test_discovery_names_hyperids_keycloak_endpoints_below_the_issuer(fake: FakeHyperID) -> None:
    assert fake.discovery_url == ISSUER + "/.well-known/openid-configuration"
    response = requests.get(fake.discovery_url, timeout=5)
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == ISSUER
    assert document["authorization_endpoint"] == AUTHORIZE
    assert document["token_endpoint"] == TOKEN == fake.token_url
    assert document["userinfo_endpoint"] == USERINFO
    assert document["jwks_uri"] == JWKS
    assert document["end_session_endpoint"] == LOGOUT
    assert {"openid", "mfa-client"} <= set(document["scopes_supported"])
    assert document["response_types_supported"] == ["code"]
    assert document["subject_types_supported"] == ["public"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(document["token_endpoint_auth_methods_supported"]) == {
        "client_secret_post",
        "client_secret_basic",
    }
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert set(document["grant_types_supported"]) == {"authorization_code", "refresh_token"}


def test_the_jwks_publishes_one_rsa_signing_key_per_fake(fake: FakeHyperID) -> None:
    [key] = requests.get(JWKS, timeout=5).json()["keys"]
    assert (key["kty"], key["use"], key["alg"]) == ("RSA", "sig", "RS256")
    assert key["kid"]
    assert key["n"]
    assert key["e"] == "AQAB"
    assert "d" not in key  # the public half only
    assert requests.get(JWKS, timeout=5).json()["keys"] == [key]
    other = FakeHyperID(BASE)
    with other.mock(), requests.Session() as http:
        assert http.get(JWKS, timeout=5).json()["keys"][0]["kid"] != key["kid"]


def test_discovery_and_jwks_answer_get_only(fake: FakeHyperID) -> None:
    for url in (fake.discovery_url, JWKS):
        response = requests.post(url, timeout=5)
        assert (response.status_code, response.headers["Allow"]) == (405, "GET, HEAD")


def test_the_sign_in_endpoints_are_neither_logged_nor_faulted(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    fake.inject("http_503", call="status-get", times=None)
    fake.inject("http_503", call="start", times=None)
    tokens = rp.tokens()
    assert requests.get(fake.discovery_url, timeout=5).status_code == 200
    assert requests.get(
        USERINFO, headers={"Authorization": "Bearer " + tokens["access_token"]}, timeout=5
    ).ok
    # The code exchange is the token endpoint, a call of the app's kind: logged.
    assert [call.name for call in fake.calls] == ["token"]
    assert fake.calls[0].subject == "alice"


# ----------------------------------------------------------------------------- the code flow


def test_a_code_flow_with_pkce_gives_tokens_whose_id_token_verifies_and_carries_the_nonce() -> None:
    """Over real HTTP, every step as a relying party takes it."""
    fake = FakeHyperID(base_url=None)
    with fake.serve() as server:
        rp = RelyingParty(fake)
        document = rp.http.get(fake.discovery_url, timeout=5).json()
        page = rp.authorize(nonce="n-0S6_WzA2Mj", state="af0ifjsldkj")
        assert page.status_code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        back = rp.submit(page, "alice")
        assert back.status_code == 303
        location = back.headers["Location"]
        assert location.startswith(CALLBACK + "?")
        answer = query_of(location)
        assert answer["state"] == "af0ifjsldkj"
        assert answer["iss"] == fake.issuer == document["issuer"]

        response = rp.token(answer["code"])
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        tokens = response.json()
        assert set(tokens) == {
            "access_token",
            "refresh_token",
            "id_token",
            "token_type",
            "expires_in",
            "refresh_expires_in",
            "scope",
        }
        assert (tokens["token_type"], tokens["expires_in"]) == ("Bearer", 3600)
        assert tokens["refresh_expires_in"] == 86400
        assert tokens["scope"] == "openid profile email mfa-client"

        jwks = rp.http.get(document["jwks_uri"], timeout=5).json()
        claims = verify_id_token(tokens["id_token"], jwks)
        now = int(fake.now())
        assert claims["iss"] == fake.issuer
        assert claims["sub"] == "alice"
        assert claims["aud"] == claims["azp"] == fake.client_id
        assert claims["nonce"] == "n-0S6_WzA2Mj"
        assert abs(claims["iat"] - now) <= 1
        assert claims["exp"] == claims["iat"] + 3600
        assert claims["auth_time"] <= claims["iat"]
        assert claims["email"] == "alice@hyperid.test"
        digest = hashlib.sha256(tokens["access_token"].encode()).digest()
        assert b64d(claims["at_hash"]) == digest[:16]

        # The access token is the user's HyperID token: pushes go out with it.
        assert rp.start(tokens["access_token"])["result"] == 0
        assert [txn.subject for txn in fake.pending()] == ["alice"]
        assert fake.users() == {"alice": True}
    assert server.errors == []


def test_every_id_token_has_its_own_jti(rp: RelyingParty) -> None:
    """allauth refuses an ID token whose jti it has seen, as a replay."""
    first, second = rp.tokens(), rp.tokens()
    jwks = rp.jwks()
    assert (
        verify_id_token(first["id_token"], jwks)["jti"]
        != verify_id_token(second["id_token"], jwks)["jti"]
    )


@pytest.mark.parametrize("basic", [True, False], ids=["client_secret_basic", "client_secret_post"])
def test_the_code_is_traded_with_either_client_authentication(
    rp: RelyingParty, basic: bool
) -> None:
    response = rp.token(rp.code(), basic=basic)
    assert response.status_code == 200, response.text
    assert response.json()["id_token"]


def test_basic_credentials_are_taken_with_or_without_form_encoding() -> None:
    """RFC 6749 form-encodes them; requests' HTTPBasicAuth (allauth, mozilla) does not."""
    fake = FakeHyperID(BASE, client_id="bank site", client_secret="s3+cr/t%21")
    with fake.mock():
        rp = RelyingParty(fake)
        assert rp.token(rp.code()).status_code == 200
        form_encoded = ("bank+site", "s3%2Bcr%2Ft%2521")
        response = requests.post(
            fake.token_url,
            data={
                "grant_type": "authorization_code",
                "code": rp.code(),
                "redirect_uri": CALLBACK,
                "code_verifier": rp.verifier,
            },
            auth=form_encoded,
            timeout=5,
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("auth", "extra", "expected"),
    [
        (("fake-client", "wrong"), {}, (401, "invalid_client")),
        (None, {"client_id": "fake-client", "client_secret": "wrong"}, (401, "invalid_client")),
        (None, {"client_id": "fake-client"}, (401, "invalid_client")),
        (
            ("fake-client", "fake-secret"),
            {"client_secret": "fake-secret"},
            (400, "invalid_request"),
        ),
    ],
    ids=["basic-wrong-secret", "post-wrong-secret", "no-secret", "two-methods-at-once"],
)
def test_the_client_must_authenticate_once_and_rightly(
    fake: FakeHyperID,
    rp: RelyingParty,
    auth: tuple[str, str] | None,
    extra: dict[str, str],
    expected: tuple[int, str],
) -> None:
    data = {
        "grant_type": "authorization_code",
        "code": rp.code(),
        "redirect_uri": CALLBACK,
        "code_verifier": rp.verifier,
        **extra,
    }
    response = requests.post(fake.token_url, data=data, auth=auth, timeout=5)
    assert oauth_error(response) == expected


def test_the_id_token_carries_the_nonce_sent_so_a_client_expecting_another_sees_it(
    rp: RelyingParty,
) -> None:
    claims = verify_id_token(rp.tokens(nonce="sent-by-the-attacker")["id_token"], rp.jwks())
    assert claims["nonce"] == "sent-by-the-attacker"
    assert claims["nonce"] != "kept-in-the-users-session"
    without = verify_id_token(rp.tokens(nonce=None)["id_token"], rp.jwks())
    assert "nonce" not in without


def test_a_tampered_id_token_fails_verification_against_the_jwks(rp: RelyingParty) -> None:
    id_token = rp.tokens()["id_token"]
    jwks = rp.jwks()
    header, payload, signature = id_token.split(".")
    forged_claims = dict(json.loads(b64d(payload)), sub="mallory")
    forged_payload = (
        base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    )
    flipped = bytearray(b64d(signature))
    flipped[-1] ^= 1
    flipped_signature = base64.urlsafe_b64encode(bytes(flipped)).rstrip(b"=").decode()
    for tampered in (
        f"{header}.{forged_payload}.{signature}",
        f"{header}.{payload}.{flipped_signature}",
    ):
        with pytest.raises(InvalidSignature):
            verify_id_token(tampered, jwks)
    # Signed by another fake: its key is not in this fake's JWKS.
    other = FakeHyperID(BASE, clock=lambda: T0)
    with other.mock():
        foreign = RelyingParty(other).tokens()["id_token"]
    with pytest.raises(InvalidSignature):
        verify_id_token(foreign, jwks)


def test_the_id_token_signature_fault_keeps_the_claims_but_breaks_the_signature(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    honest = rp.tokens()["id_token"]
    fake.inject("id_token_signature", call="token")

    bent = rp.tokens()["id_token"]

    with pytest.raises(InvalidSignature):
        verify_id_token(bent, rp.jwks())
    claims = json.loads(b64d(bent.split(".")[1]))
    assert claims["sub"] == json.loads(b64d(honest.split(".")[1]))["sub"]
    assert bent.split(".")[0] == honest.split(".")[0]  # the same header, key id included
    verify_id_token(rp.tokens()["id_token"], rp.jwks())  # the next sign-in is honest


def test_the_id_token_claims_fault_issues_a_validly_signed_id_token_with_other_claims(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    honest = verify_id_token(rp.tokens()["id_token"], rp.jwks())
    fake.inject("id_token_claims", call="token", claims={"aud": ["tests", "other"], "nonce": None})

    bent = rp.tokens()
    claims = verify_id_token(bent["id_token"], rp.jwks())  # signed with the fake's key

    assert claims["aud"] == ["tests", "other"]
    assert "nonce" not in claims
    assert honest["nonce"]
    assert claims["sub"] == honest["sub"] == "alice"
    assert claims["iss"] == honest["iss"]
    assert fake.subject_of(bent["access_token"]) == "alice"  # the tokens themselves are good
    assert [call.fault for call in fake.calls if call.name == "token"] == [
        None,
        "id_token_claims",
    ]
    assert verify_id_token(rp.tokens()["id_token"], rp.jwks())["aud"] == fake.client_id


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({}, TypeError),
        ({"claims": ["aud"]}, TypeError),
        ({"claims": {1: "x"}}, TypeError),
        ({"claims": {"exp": object()}}, TypeError),
        ({"claims": {"aud": "x"}, "call": "start"}, ValueError),
    ],
)
def test_the_id_token_claims_fault_refuses_what_it_cannot_do(
    fake: FakeHyperID, params: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        fake.inject("id_token_claims", **params)


def test_unsupported_scopes_are_ignored_and_the_answer_says_what_was_granted(
    rp: RelyingParty,
) -> None:
    page = rp.authorize(scope="openid groups mfa-client offline_access")
    assert re.search(r'class="ignored" data-scope="groups"', page.text)
    back = rp.submit(page)
    tokens = rp.token(query_of(back.headers["Location"])["code"]).json()
    assert tokens["scope"] == "openid mfa-client"


def test_a_sign_in_without_openid_gets_oauth_tokens_and_no_id_token(rp: RelyingParty) -> None:
    tokens = rp.tokens(scope="mfa-client", nonce=None)
    assert "id_token" not in tokens
    assert rp.start(tokens["access_token"])["result"] == 0


def test_an_authorization_request_may_come_as_a_post(fake: FakeHyperID, rp: RelyingParty) -> None:
    page = rp.http.post(
        AUTHORIZE,
        data={
            "response_type": "code",
            "client_id": fake.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid",
        },
        timeout=5,
    )
    assert page.status_code == 200
    assert rp.submit(page).status_code == 303


# ----------------------------------------------------------------------------- codes


def test_a_code_expires_after_60_seconds_of_the_fakes_clock(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    fresh = rp.code()
    fake.advance(59)
    assert rp.token(fresh).status_code == 200
    stale = rp.code()
    fake.advance(60)
    response = rp.token(stale)
    assert oauth_error(response) == (400, "invalid_grant")
    assert response.json()["error_description"] == "authorization code expired"


def test_a_replayed_code_is_invalid_grant_and_revokes_the_tokens_it_brought(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    code = rp.code()
    first = rp.token(code).json()
    refreshed = rp.refresh(first["refresh_token"]).json()
    other = rp.tokens("bob")
    assert rp.start(refreshed["access_token"])["result"] == 0

    replay = rp.token(code)

    assert oauth_error(replay) == (400, "invalid_grant")
    assert "already used" in replay.json()["error_description"]
    # Everything that descends from the code is revoked, refreshed tokens included...
    assert rp.start(first["access_token"]) == {"result": -5}
    assert rp.start(refreshed["access_token"]) == {"result": -5}
    assert oauth_error(rp.refresh(refreshed["refresh_token"])) == (400, "invalid_grant")
    bearer = {"Authorization": "Bearer " + first["access_token"]}
    assert requests.get(USERINFO, headers=bearer, timeout=5).status_code == 401
    # ...and nothing else: another sign-in's tokens still work.
    assert rp.start(other["access_token"])["result"] == 0


def test_an_unknown_code_is_invalid_grant(rp: RelyingParty) -> None:
    assert oauth_error(rp.token("made-up")) == (400, "invalid_grant")
    assert oauth_error(rp.token(None)) == (400, "invalid_request")


def test_a_code_is_bound_to_its_redirect_uri(rp: RelyingParty) -> None:
    response = rp.token(rp.code(), redirect_uri="http://127.0.0.1:9999/elsewhere/")
    assert oauth_error(response) == (400, "invalid_grant")
    assert oauth_error(rp.token(rp.code(), redirect_uri=None)) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("verifier", "description"),
    [
        ("w" * 64, "code_verifier does not match the code_challenge"),
        (None, "code_verifier is required: the authorization request had a code_challenge"),
        ("too-short", "code_verifier is malformed (RFC 7636: 43 to 128 unreserved characters)"),
    ],
    ids=["mismatch", "missing", "malformed"],
)
def test_a_pkce_verifier_that_does_not_match_is_invalid_grant_and_consumes_the_code(
    rp: RelyingParty, verifier: str | None, description: str
) -> None:
    code = rp.code()
    response = rp.token(code, code_verifier=verifier)
    assert oauth_error(response) == (400, "invalid_grant")
    assert response.json()["error_description"] == description
    # Single use: the right verifier comes too late.
    assert oauth_error(rp.token(code)) == (400, "invalid_grant")


def test_a_verifier_for_a_request_without_challenge_is_refused(rp: RelyingParty) -> None:
    """RFC 9700, 4.8.2: else stripping the challenge would go unnoticed."""
    code = rp.code(code_challenge=None, code_challenge_method=None)
    assert oauth_error(rp.token(code)) == (400, "invalid_grant")
    assert (
        rp.token(
            rp.code(code_challenge=None, code_challenge_method=None), code_verifier=None
        ).status_code
        == 200
    )


def test_a_refresh_gives_a_new_id_token_with_the_same_auth_time_and_no_nonce(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    first = rp.tokens()
    signed_in = verify_id_token(first["id_token"], rp.jwks())
    fake.advance(100)
    refreshed = rp.refresh(first["refresh_token"]).json()
    claims = verify_id_token(refreshed["id_token"], rp.jwks())
    assert claims["auth_time"] == signed_in["auth_time"]
    assert claims["iat"] == signed_in["iat"] + 100
    assert "nonce" not in claims
    assert refreshed["scope"] == first["scope"]


# ----------------------------------------------------------------------------- the request


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "someone-else"},
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": "https://attacker.test/cb"},
        {"redirect_uri": "http://127.0.0.1:8000/cb#fragment"},
        {"redirect_uri": "http://user@127.0.0.1:8000/cb"},
        {"redirect_uri": "http://localhost.attacker.test/cb"},
        {"redirect_uri": "/relative/callback"},
    ],
)
def test_a_bad_client_or_redirect_uri_stops_at_an_error_page_without_redirecting(
    rp: RelyingParty, overrides: dict[str, Any]
) -> None:
    response = rp.authorize(**overrides)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "form-action 'none'" in response.headers["Content-Security-Policy"]


def test_an_unregistered_redirect_uri_is_refused_without_a_redirect_when_loopback_is_off() -> None:
    fake = FakeHyperID(BASE, redirect_uris=[REGISTERED], allow_loopback_redirect_uris=False)
    with fake.mock():
        refused = RelyingParty(fake, CALLBACK).authorize()
        assert refused.status_code == 400
        assert "Location" not in refused.headers
        assert "is not a redirect URI of client fake-client" in refused.text
        assert REGISTERED in refused.text
        registered = RelyingParty(fake, REGISTERED)
        assert registered.token(registered.code()).status_code == 200
        # Exactly: another path, a trailing slash less, another scheme are all refused.
        for near in (REGISTERED + "x", REGISTERED.rstrip("/"), REGISTERED.replace("https", "http")):
            assert RelyingParty(fake, near).authorize().status_code == 400
        fake.allow_loopback_redirect_uris = True
        assert RelyingParty(fake, CALLBACK).authorize().status_code == 200


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:49152/callback",
        "http://localhost:3000/accounts/oidc/hyperid/login/callback/",
        "http://[::1]:8000/oidc/callback/?next=/home",
        "https://localhost/cb",
    ],
)
def test_loopback_redirect_uris_are_accepted_on_any_port_by_default(
    fake: FakeHyperID, uri: str
) -> None:
    rp = RelyingParty(fake, uri)
    back = rp.submit(rp.authorize())
    location = back.headers["Location"]
    assert location.startswith(uri.partition("?")[0])
    if "?" in uri:
        assert query_of(location)["next"] == "/home"  # the URI's own query is kept
    assert rp.token(query_of(location)["code"]).status_code == 200


def test_registering_redirect_uris(fake: FakeHyperID) -> None:
    fake.register_redirect_uri("https://bank.test/other/")
    fake.register_redirect_uri(REGISTERED)
    assert fake.redirect_uris == (REGISTERED, "https://bank.test/other/")
    assert FakeHyperID(BASE, redirect_uris="https://one.test/cb").redirect_uris == (
        "https://one.test/cb",
    )
    for bad in (
        "/cb",
        "ftp://bank.test/cb",
        "https://bank.test/cb#x",
        "https://u:p@bank.test/",
        "https://bank.test/a b",
        "https://bank.test:99999/",
    ):
        with pytest.raises(ValueError, match="redirect URI"):
            fake.register_redirect_uri(bad)


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "code id_token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "groups"}, "invalid_scope"),
        ({"scope": None}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
        ({"request_uri": "https://bank.test/request.jwt"}, "request_uri_not_supported"),
        ({"nonce": "n" * 3000}, "invalid_request"),
    ],
)
def test_errors_after_a_good_redirect_uri_go_back_to_the_client_with_its_state(
    fake: FakeHyperID, rp: RelyingParty, overrides: dict[str, Any], error: str
) -> None:
    response = rp.authorize(**overrides)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    answer = query_of(location)
    assert answer["error"] == error
    assert answer["error_description"]
    assert answer["state"] == "state-1"
    assert answer["iss"] == fake.issuer
    assert "code" not in answer


def test_a_repeated_parameter_goes_back_as_invalid_request(fake: FakeHyperID) -> None:
    query = (
        f"response_type=code&client_id={fake.client_id}&redirect_uri={CALLBACK}"
        "&scope=openid&scope=email&state=s"
    )
    response = requests.get(f"{AUTHORIZE}?{query}", allow_redirects=False, timeout=5)
    assert query_of(response.headers["Location"])["error"] == "invalid_request"
    twice = f"client_id={fake.client_id}&client_id=x&redirect_uri={CALLBACK}&response_type=code"
    response = requests.get(f"{AUTHORIZE}?{twice}", allow_redirects=False, timeout=5)
    assert (response.status_code, "Location" in response.headers) == (400, False)


def test_an_error_without_state_goes_back_without_state(rp: RelyingParty) -> None:
    answer = query_of(rp.authorize(response_type="token", state=None).headers["Location"])
    assert "state" not in answer


# ----------------------------------------------------------------------------- the page


def test_the_sign_in_page_lists_the_scopes_asked_for_under_a_strict_policy(
    rp: RelyingParty,
) -> None:
    page = rp.authorize()
    scopes = re.findall(r'<li data-scope="([^"]+)">', page.text)
    assert scopes == ["openid", "profile", "email", "mfa-client"]
    assert 'name="subject"' in page.text
    assert re.search(
        r'<form method="post" action="/auth/realms/HyperID/protocol/openid-connect/auth">',
        page.text,
    )
    assert "<script" not in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    # The form may lead back to the client: browsers check the redirect after a post.
    assert "form-action 'self' http://127.0.0.1:8000;" in policy
    [style] = re.findall(r"<style>(.*?)</style>", page.text, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"


def test_the_sign_in_page_escapes_a_hostile_subject_scope_and_state(rp: RelyingParty) -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = rp.authorize(scope=f"openid {hostile}", state=hostile, login_hint=hostile)
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "<img" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    # A subject the page sends back (refused: it has a control character) stays text too.
    again = rp.submit(page, hostile + "\x07")
    assert again.status_code == 400
    assert "<script>" not in again.text
    assert "no control characters" in again.text
    # The state is the client's own: it goes back exactly as sent.
    back = rp.submit(again, hostile)
    assert query_of(back.headers["Location"])["state"] == hostile
    # An accepted hostile subject is only ever text: in the claims and on the next page.
    page = rp.authorize()
    assert "<script>" not in page.text
    refused = rp.authorize(redirect_uri="http://attacker.test/<script>x</script>")
    assert refused.status_code == 400
    assert "<script>" not in refused.text


def test_the_sign_in_form_is_single_use_and_expires(fake: FakeHyperID, rp: RelyingParty) -> None:
    page = rp.authorize()
    assert rp.submit(page).status_code == 303
    reused = rp.submit(page)
    assert reused.status_code == 400
    assert "expired" in reused.text
    stale = rp.authorize()
    fake.advance(601)
    assert rp.submit(stale).status_code == 400
    forged = rp.http.post(AUTHORIZE, data={"csrf_token": "guessed", "subject": "alice"}, timeout=5)
    assert forged.status_code == 400


def test_a_form_posted_from_another_site_is_refused(rp: RelyingParty) -> None:
    page = rp.authorize()
    token = csrf_token(page)
    for origin in ("https://attacker.test", "null"):
        response = rp.http.post(
            AUTHORIZE,
            data={"csrf_token": token, "subject": "alice"},
            headers={"Origin": origin},
            allow_redirects=False,
            timeout=5,
        )
        assert response.status_code == 403
    same_site = rp.http.post(
        AUTHORIZE,
        data={"csrf_token": token, "subject": "alice"},
        headers={"Origin": "https://api.hyperid.test"},
        allow_redirects=False,
        timeout=5,
    )
    assert same_site.status_code == 303


def test_cancel_sends_access_denied_back(rp: RelyingParty) -> None:
    back = rp.submit(rp.authorize(), "", cancel="1")
    assert back.status_code == 302
    answer = query_of(back.headers["Location"])
    assert (answer["error"], answer["state"]) == ("access_denied", "state-1")


@pytest.mark.parametrize("subject", ["", "   ", "x" * 201])
def test_an_unusable_subject_shows_the_page_again_and_keeps_it_usable(
    fake: FakeHyperID, rp: RelyingParty, subject: str
) -> None:
    again = rp.submit(rp.authorize(), subject)
    assert again.status_code == 400
    assert 'role="alert"' in again.text
    assert fake.users() == {}
    assert rp.submit(again, "alice").status_code == 303


def test_a_new_account_gets_a_device_and_a_known_one_keeps_its_own(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    fake.add_user("no-phone", has_device=False)
    rp.tokens("no-phone")
    rp.tokens("  newbie  ")
    assert fake.users() == {"no-phone": False, "newbie": True}
    page = rp.authorize(login_hint="newbie")
    assert 'value="newbie"' in page.text  # the hint fills the field in
    assert '<option value="no-phone">' in page.text  # known accounts are suggested


# ----------------------------------------------------------------------------- userinfo


def test_userinfo_tells_the_claims_of_the_scopes_granted(rp: RelyingParty) -> None:
    everything = rp.tokens()["access_token"]
    answer = requests.get(USERINFO, headers={"Authorization": f"Bearer {everything}"}, timeout=5)
    assert answer.status_code == 200
    assert answer.json() == {
        "sub": "alice",
        "preferred_username": "alice",
        "name": "alice",
        "email": "alice@hyperid.test",
        "email_verified": True,
    }
    just_openid = rp.tokens(scope="openid")["access_token"]
    answer = requests.post(USERINFO, headers={"Authorization": f"Bearer {just_openid}"}, timeout=5)
    assert answer.json() == {"sub": "alice"}


def test_userinfo_refuses_missing_bad_expired_and_non_openid_tokens(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    missing = requests.get(USERINFO, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="HyperID"'
    expired = rp.tokens()["access_token"]
    fake.expire_access_token(expired)
    for token in ("not-a-token", expired):
        answer = requests.get(USERINFO, headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert answer.status_code == 401
        assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    mfa_only = fake.issue_tokens("alice", scopes=("mfa-client",)).access_token
    answer = requests.get(USERINFO, headers={"Authorization": f"Bearer {mfa_only}"}, timeout=5)
    assert (answer.status_code, answer.json()["error"]) == (403, "insufficient_scope")


# ----------------------------------------------------------------------------- MFA, these tokens


def test_a_token_without_mfa_client_gets_minus_3_from_start_and_status_get(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    without = rp.tokens(scope="openid email")
    assert without["scope"] == "openid email"
    assert rp.start(without["access_token"]) == {"result": -3}
    status = rp.mfa(STATUS_GET_PATH, without["access_token"], {"transaction_id": 1})
    assert status == {"result": -3}
    # Refreshing does not add the scope either.
    refreshed = rp.refresh(without["refresh_token"]).json()
    assert rp.start(refreshed["access_token"]) == {"result": -3}
    with_it = rp.tokens(scope="openid email mfa-client")
    assert rp.start(with_it["access_token"])["result"] == 0


def test_after_the_access_token_expires_its_refresh_token_gets_a_working_one(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    tokens = rp.tokens()
    assert fake.expire_access_tokens("alice") == 1
    assert rp.start(tokens["access_token"]) == {"result": -4}
    assert fake.expire_access_tokens("alice") == 0  # none left working
    refreshed = rp.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert rp.start(refreshed.json()["access_token"])["result"] == 0


def test_the_control_endpoint_expires_a_users_access_tokens(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    tokens = rp.tokens()
    control = fake.base_url + "/_fake/tokens/expire"
    assert requests.post(control, json={"subject": "alice"}, timeout=5).json() == {"expired": 1}
    assert rp.start(tokens["access_token"]) == {"result": -4}
    assert requests.post(control, json={}, timeout=5).status_code == 400
    assert requests.get(control, timeout=5).status_code == 405


@pytest.mark.django_db
def test_the_apps_next_push_refreshes_an_expired_access_token_from_the_sign_in(
    fake_hyperid: FakeHyperID, user: Any
) -> None:
    """The app's own services, with tokens a site got from this sign-in."""
    from hyperid_mfa import services
    from hyperid_mfa.tokens.store import store_tokens

    rp = RelyingParty(fake_hyperid)
    tokens = rp.tokens("alice")
    store_tokens(
        user, tokens["access_token"], tokens["refresh_token"], expires_in=tokens["expires_in"]
    )
    fake_hyperid.expire_access_tokens("alice")

    request = services.start_request(user, "payments.withdraw", question="Withdraw 500 EUR?")

    assert request.is_pending
    assert fake_hyperid.call_count("token") == 2  # the sign-in's code, then one refresh
    assert [call.result for call in fake_hyperid.calls if call.name == "start"] == [-4, 0]
    assert [txn.subject for txn in fake_hyperid.pending()] == ["alice"]


@pytest.mark.django_db
@pytest.mark.parametrize("basic", [True, False], ids=["client_secret_basic", "client_secret_post"])
def test_mozilla_django_oidc_signs_in_unmodified(rf: Any, settings: Any, basic: bool) -> None:
    """Its own views and backend, configured as its documentation says, nothing patched.

    On the real clock: it checks the ID token's ``exp`` against the time of day.
    """
    import_or_skip("mozilla_django_oidc")
    fake = FakeHyperID(BASE)
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore
    from mozilla_django_oidc.views import (
        OIDCAuthenticationCallbackView,
        OIDCAuthenticationRequestView,
    )

    document = openid_configuration(fake)
    settings.AUTHENTICATION_BACKENDS = ["mozilla_django_oidc.auth.OIDCAuthenticationBackend"]
    settings.OIDC_RP_CLIENT_ID = fake.client_id
    settings.OIDC_RP_CLIENT_SECRET = fake.client_secret
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_RP_SCOPES = "openid email mfa-client"
    settings.OIDC_USE_PKCE = True
    settings.OIDC_TOKEN_USE_BASIC_AUTH = basic
    settings.OIDC_STORE_ACCESS_TOKEN = True
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = document["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = document["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
    # tests/urls.py has no mozilla URLs: any named URL stands for the callback.
    settings.OIDC_AUTHENTICATION_CALLBACK_URL = "admin:index"
    fake.register_redirect_uri("http://testserver/admin/")
    session = SessionStore()

    def browse(path: str, view: Any) -> Any:
        request = rf.get(path)
        request.session, request.user = session, AnonymousUser()
        return request, view(request)

    with fake.mock():
        _, to_hyperid = browse("/oidc/authenticate/", OIDCAuthenticationRequestView.as_view())
        asked = query_of(to_hyperid["Location"])
        assert {"state", "nonce", "code_challenge"} <= set(asked)
        browser = RelyingParty(fake, "http://testserver/admin/")
        back = browser.submit(browser.http.get(to_hyperid["Location"], timeout=5), "alice")
        callback = urlsplit(back.headers["Location"])
        request, response = browse(
            f"{callback.path}?{callback.query}", OIDCAuthenticationCallbackView.as_view()
        )

        assert response.status_code == 302
        assert response["Location"] == settings.LOGIN_REDIRECT_URL
        assert request.user.is_authenticated
        assert request.user.email == "alice@hyperid.test"
        # The access token it kept is the user's HyperID token: pushes go out with it.
        assert browser.start(request.session["oidc_access_token"])["result"] == 0


# ----------------------------------------------------------------------------- sessions


def test_prompt_none_signs_in_silently_while_the_browser_has_a_session(
    fake: FakeHyperID, rp: RelyingParty
) -> None:
    first = rp.code("alice")
    silent = rp.authorize(prompt="none")
    assert silent.status_code == 302
    code = query_of(silent.headers["Location"])["code"]
    assert code != first
    tokens = rp.token(code).json()
    assert verify_id_token(tokens["id_token"], rp.jwks())["sub"] == "alice"
    assert (
        query_of(rp.authorize(prompt="none", login_hint="bob").headers["Location"])["error"]
        == "login_required"
    )
    # Another browser has no session at the fake.
    stranger = RelyingParty(fake)
    assert query_of(stranger.authorize(prompt="none").headers["Location"])["error"] == (
        "login_required"
    )


def test_the_end_session_endpoint_ends_the_session_and_goes_back(rp: RelyingParty) -> None:
    rp.code("alice")
    out = rp.http.get(
        LOGOUT,
        params={"post_logout_redirect_uri": "http://127.0.0.1:8000/", "state": "bye"},
        allow_redirects=False,
        timeout=5,
    )
    assert out.status_code == 302
    assert out.headers["Location"] == "http://127.0.0.1:8000/?state=bye"
    assert query_of(rp.authorize(prompt="none").headers["Location"])["error"] == "login_required"
    refused = rp.http.get(
        LOGOUT, params={"post_logout_redirect_uri": "https://attacker.test/"}, timeout=5
    )
    assert (refused.status_code, "Location" in refused.headers) == (400, False)
    assert rp.http.get(LOGOUT, timeout=5).status_code == 200


# ----------------------------------------------------------------------------- the package


def test_the_openid_provider_keeps_the_testing_package_free_of_django() -> None:
    code = """
import re, sys
from urllib.parse import parse_qs, urlsplit
from hyperid_mfa.testing import FakeHyperID
fake = FakeHyperID("https://api.hyperid.test")
handle = fake.handle
issuer = "/auth/realms/HyperID"
assert handle("GET", issuer + "/.well-known/openid-configuration", {}, b"").status == 200
assert handle("GET", issuer + "/protocol/openid-connect/certs", {}, b"").status == 200
page = handle("GET", issuer + "/protocol/openid-connect/auth?response_type=code&client_id="
              "fake-client&redirect_uri=http://127.0.0.1:1/cb&scope=openid+email", {}, b"")
token = re.search(rb'name="csrf_token" value="([^"]+)"', page.body).group(1).decode()
back = handle("POST", issuer + "/protocol/openid-connect/auth", {},
              f"csrf_token={token}&subject=alice".encode())
code = parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]
body = (f"grant_type=authorization_code&code={code}&redirect_uri=http://127.0.0.1:1/cb"
        "&client_id=fake-client&client_secret=fake-secret").encode()
tokens = handle("POST", issuer + "/protocol/openid-connect/token", {}, body).json()
assert tokens["id_token"], tokens
info = handle("GET", issuer + "/protocol/openid-connect/userinfo",
              {"Authorization": "Bearer " + tokens["access_token"]}, b"").json()
assert info["email"] == "alice@hyperid.test", info
sys.exit(1 if any(m == "django" or m.startswith("django.") for m in sys.modules) else 0)
"""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=False, timeout=60, capture_output=True
    )
    assert completed.returncode == 0, completed.stderr.decode()
