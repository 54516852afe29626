"""Signing in with HyperID through django-allauth and mozilla-django-oidc (hyperid_mfa.contrib).

The real libraries sign in at a FakeHyperID served over HTTP, hop by hop
(:mod:`tests.oidc_flow`): the site with Django's test client, HyperID's sign-in page
with ``requests``. Each test bends one hop, or none. What a user notices: whether
they are signed in, what the site says when it refuses, and whether the gate can send
a push to their own phone afterwards.

The same sign-ins in a real browser are in tests/test_sign_in_browser.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import checks

from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.sensitive import SignInExceptionReporterFilter
from hyperid_mfa.testing import FakeHyperID
from hyperid_mfa.testing.oidc import email_of
from tests import oidc_flow as flow
from tests.oidc_flow import ALLAUTH, BOTH, MOZILLA, NEEDS_ALLAUTH, NEEDS_MOZILLA

pytestmark = pytest.mark.django_db


@pytest.fixture
def hyperid() -> Any:
    """HyperID, served over HTTP on loopback, its client the test settings' one."""
    fake = flow.new_fake()
    with fake.serve():
        yield fake


@pytest.fixture
def sign_in(hyperid: FakeHyperID, settings: Any) -> Any:
    """``sign_in(library, subject, site=None, **query)``: a whole sign-in with HyperID as
    ``subject``, in the browser ``site`` (a new one by default), which it returns."""

    def sign_in(library: str, subject: str, site: Any = None, **query: str) -> Any:
        flow.configure(settings, hyperid, library)
        site = site or flow.site_client()
        response = flow.sign_in(site, library, subject, **query)
        assert response.status_code == 302, response.content[:500]
        return site

    return sign_in


# ------------------------------------------------------------------------------ helpers


def assert_refused(library: str, response: Any) -> None:
    """The site refused the sign-in, saying so: allauth with its failure page,
    mozilla-django-oidc with Django's "Bad Request" page or its failure URL."""
    if library == "allauth":
        assert response.status_code == 401
        assert "Third-Party Login Failure" in response.content.decode()
    elif response.status_code == 302:
        assert response["Location"] == flow.MOZILLA_FAILURE_URL
    else:
        assert response.status_code == 400
        assert "Bad Request" in response.content.decode()


def assert_nothing_stored(site: Any) -> None:
    assert flow.signed_in_user(site) is None
    assert not HyperIDToken.objects.exists()
    assert not get_user_model().objects.exists()


def refusal_logged(caplog: pytest.LogCaptureFixture, text: str) -> bool:
    """Whether Django logged the refusal (mozilla-django-oidc's SuspiciousOperation)."""
    return any(
        record.name.startswith("django.security") and text in record.getMessage()
        for record in caplog.records
    )


def token_answers(fake: FakeHyperID) -> list[int | None]:
    """The HTTP status of each answer of HyperID's token endpoint, in order."""
    return [call.http_status for call in fake.calls if call.name == "token"]


def push(site: Any) -> Any:
    """The signed-in user tries a gated action, as a JSON client."""
    return site.post(
        "/gate/function/", {"amount": "500", "payee": "Bob"}, HTTP_ACCEPT="application/json"
    )


def assert_push_reaches(fake: FakeHyperID, site: Any, subject: str) -> None:
    """A gated action sends a push, and it is ``subject``'s phone that gets it."""
    response = push(site)
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "mfa_pending"
    [pending] = fake.pending(subject)
    assert pending.transaction_id == response.json()["mfa_request"]["transaction_id"]


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("library", BOTH)
def test_a_callback_with_a_state_this_browser_was_not_given_signs_nobody_in(
    hyperid, settings, library
):
    flow.configure(settings, hyperid, library)
    site, http = flow.site_client(), flow.hyperid_browser()
    back = flow.submit(http, flow.open_page(http, flow.start(site, library)), "alice")

    response = flow.finish(site, flow.with_query(flow.callback_url(back), state="forged"))

    assert_refused(library, response)
    assert_nothing_stored(site)
    assert token_answers(hyperid) == []  # the code was never even traded


@pytest.mark.parametrize("library", [MOZILLA])
def test_an_id_token_for_another_nonce_signs_nobody_in(hyperid, settings, library, caplog):
    # allauth sends no nonce (nor checks one), so only mozilla-django-oidc is concerned.
    flow.configure(settings, hyperid, library)
    site, http = flow.site_client(), flow.hyperid_browser()
    authorize = flow.start(site, library)
    assert "nonce" in flow.query_of(authorize)
    # The ID token HyperID then signs carries this nonce, not the one the site keeps.
    bent = flow.with_query(authorize, nonce="a-nonce-of-another-sign-in")
    back = flow.submit(http, flow.open_page(http, bent), "alice")

    response = flow.finish(site, flow.callback_url(back))

    assert_refused(library, response)
    assert refusal_logged(caplog, "Nonce verification failed")
    assert_nothing_stored(site)
    assert token_answers(hyperid) == [200]


def another_issuer(fake: FakeHyperID) -> str:
    return fake.issuer.replace("/realms/HyperID", "/realms/Elsewhere")


def expired(fake: FakeHyperID) -> dict[str, int]:
    now = int(fake.now())
    return {"iat": now - 600, "exp": now - 60}


#: ID tokens that HyperID's own key signed, but that must sign nobody in, each with
#: the libraries it concerns: allauth checks iss, aud and exp itself, the app the
#: rest; neither library may take a nonce from allauth, which sends none.
FORGED_ID_TOKENS = {
    "another-audience": (lambda fake: {"aud": "another-client"}, BOTH),
    "also-another-audience": (lambda fake: {"aud": [fake.client_id, "another-client"]}, BOTH),
    "authorised-for-another-client": (lambda fake: {"azp": "another-client"}, BOTH),
    "another-issuer": (lambda fake: {"iss": another_issuer(fake)}, BOTH),
    "expired": (expired, BOTH),
    "no-expiry": (lambda fake: {"exp": None}, [MOZILLA]),
    "no-nonce": (lambda fake: {"nonce": None}, [MOZILLA]),
    "another-sign-ins-nonce": (lambda fake: {"nonce": "a-nonce-of-another-sign-in"}, [MOZILLA]),
    "an-access-token": (lambda fake: {"typ": "Bearer"}, [MOZILLA]),
}


@pytest.mark.parametrize(
    ("case", "library"),
    [
        pytest.param(case, library.values[0], marks=library.marks, id=f"{case}-{library.values[0]}")
        for case, (_claims, libraries) in FORGED_ID_TOKENS.items()
        for library in libraries
    ],
)
def test_an_id_token_signed_by_hyperid_for_another_client_issuer_or_sign_in_signs_nobody_in(
    hyperid, settings, case, library
):
    claims_of, _libraries = FORGED_ID_TOKENS[case]
    flow.configure(settings, hyperid, library)
    site, http = flow.site_client(), flow.hyperid_browser()
    back = flow.submit(http, flow.open_page(http, flow.start(site, library)), "alice")
    hyperid.inject("id_token_claims", call="token", claims=claims_of(hyperid))

    response = flow.finish(site, flow.callback_url(back))

    assert [call.fault for call in hyperid.calls if call.name == "token"] == ["id_token_claims"]
    assert_refused(library, response)
    assert_nothing_stored(site)
    # The honest sign-in, in the same browser, still works.
    assert flow.sign_in(site, library, "alice").status_code == 302
    assert flow.stored_subject(hyperid, flow.signed_in_user(site)) == "alice"


@NEEDS_MOZILLA
def test_mozilla_userinfo_about_another_subject_than_the_id_tokens_is_not_used(settings):
    from hyperid_mfa.contrib.mozilla_oidc import HyperIDOIDCBackend

    settings.OIDC_OP_TOKEN_ENDPOINT = settings.OIDC_OP_USER_ENDPOINT = "https://hyperid.test/"
    settings.OIDC_OP_JWKS_ENDPOINT = "https://hyperid.test/certs"
    backend = HyperIDOIDCBackend()
    backend._subject = "alice"  # what the verified ID token named

    assert backend.verify_claims({"sub": "alice", "email": email_of("alice")})
    assert not backend.verify_claims({"sub": "mallory", "email": email_of("alice")})
    assert not backend.verify_claims({"email": email_of("alice")})


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    ("extra_data", "refused"),
    [
        ({"id_token": {"sub": "alice", "aud": "tests"}, "userinfo": {"sub": "alice"}}, False),
        ({"id_token": {"sub": "alice", "aud": "tests"}, "userinfo": {"sub": "mallory"}}, True),
        ({"id_token": {"sub": "alice", "aud": ["tests", "other"]}}, True),
        ({"id_token": {"sub": "alice", "aud": "tests", "azp": "other"}}, True),
        ({"id_token": {"sub": "alice", "aud": "tests", "azp": "tests"}}, False),
        ({"userinfo": {"sub": "alice"}}, False),  # no ID token: allauth trusts userinfo
    ],
)
def test_allauth_sign_ins_refuse_what_allauth_leaves_unchecked(extra_data, refused):
    from types import SimpleNamespace

    from hyperid_mfa.contrib.allauth.receivers import id_token_problem

    sociallogin = SimpleNamespace(
        account=SimpleNamespace(provider="hyperid", extra_data=extra_data),
        provider=SimpleNamespace(app=SimpleNamespace(client_id="tests")),
    )

    assert (id_token_problem(sociallogin) is not None) is refused


@pytest.mark.parametrize("library", [MOZILLA])
def test_without_the_nonce_nobody_signs_in_and_the_log_says_which_setting(
    hyperid, settings, library, caplog
):
    flow.configure(settings, hyperid, library)
    settings.OIDC_USE_NONCE = False  # the ID token would be tied to no sign-in
    site = flow.site_client()
    assert "nonce" not in flow.query_of(flow.start(site, library))

    response = flow.sign_in(site, library, "alice")

    assert_refused(library, response)
    assert_nothing_stored(site)
    assert any(
        record.levelname == "ERROR" and "OIDC_USE_NONCE" in record.getMessage()
        for record in caplog.records
    )


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG-on", "DEBUG-off"])
@pytest.mark.parametrize("library", [MOZILLA])
def test_a_refused_id_token_shows_no_token_on_the_error_page(hyperid, settings, library, debug):
    # A refusal is a SuspiciousOperation: with DEBUG on, Django answers it with its
    # technical page, every frame's variables included.
    flow.configure(settings, hyperid, library)
    settings.DEBUG = debug
    site, http = flow.site_client(), flow.hyperid_browser()
    back = flow.submit(http, flow.open_page(http, flow.start(site, library)), "alice")
    hyperid.inject("id_token_claims", call="token", claims={"aud": "another-client"})

    response = flow.finish(site, flow.callback_url(back))

    assert response.status_code == 400
    page = response.content.decode()
    assert "another audience" in page if debug else "Bad Request" in page
    assert hyperid.client_secret not in page
    assert "eyJ" not in page  # no JWT: neither the ID token nor the access or refresh token


# mozilla-django-oidc only: allauth checks no signature on an ID token it fetched
# from the token endpoint itself, over TLS, which OpenID Connect Core 3.1.3.7 (step
# 6) allows; the user it signs in is the one the userinfo endpoint names.
@pytest.mark.parametrize("library", [MOZILLA])
def test_an_id_token_with_a_tampered_signature_signs_nobody_in(hyperid, settings, library, caplog):
    flow.configure(settings, hyperid, library)
    site, http = flow.site_client(), flow.hyperid_browser()
    back = flow.submit(http, flow.open_page(http, flow.start(site, library)), "alice")
    hyperid.inject("id_token_signature", call="token")

    response = flow.finish(site, flow.callback_url(back))

    assert [call.fault for call in hyperid.calls if call.name == "token"] == ["id_token_signature"]
    assert_refused(library, response)
    assert refusal_logged(caplog, "JWS token verification failed")
    assert_nothing_stored(site)


@pytest.mark.parametrize(
    "library",
    [ALLAUTH, MOZILLA],
)
def test_a_code_brought_back_after_it_expired_signs_nobody_in(hyperid, settings, library):
    flow.configure(settings, hyperid, library)
    site, http = flow.site_client(), flow.hyperid_browser()
    back = flow.submit(http, flow.open_page(http, flow.start(site, library)), "alice")
    # HyperID's codes last 60 s. The code exchange fails before any ID token is read,
    # so that this clock makes ID tokens look issued in the future does not matter.
    hyperid.advance(61)

    response = flow.finish(site, flow.callback_url(back))

    assert token_answers(hyperid) == [400]
    assert_refused(library, response)
    assert_nothing_stored(site)


@pytest.mark.parametrize(
    "library",
    [ALLAUTH, MOZILLA],
)
def test_a_replayed_code_signs_nobody_in(hyperid, settings, library):
    flow.configure(settings, hyperid, library)
    users = get_user_model().objects
    victim, http = flow.site_client(), flow.hyperid_browser()
    back = flow.callback_url(
        flow.submit(http, flow.open_page(http, flow.start(victim, library)), "alice")
    )
    assert flow.finish(victim, back).status_code == 302
    stored = HyperIDToken.objects.get()
    # Another browser brings the same code back, with a state of its own that the
    # site did give it.
    attacker = flow.site_client()
    own_state = flow.query_of(flow.start(attacker, library))["state"]

    response = flow.finish(attacker, flow.with_query(back, state=own_state))

    assert token_answers(hyperid) == [200, 400]
    assert_refused(library, response)
    assert flow.signed_in_user(attacker) is None
    assert users.count() == 1
    assert HyperIDToken.objects.get().access_token_encrypted == stored.access_token_encrypted


@pytest.mark.parametrize("library", BOTH)
def test_hyperid_stops_at_its_error_page_for_a_redirect_uri_it_does_not_know(
    hyperid, settings, library
):
    flow.configure(settings, hyperid, library)
    hyperid.allow_loopback_redirect_uris = False
    hyperid.register_redirect_uri("https://bank.example" + flow.CALLBACK[library])
    site, http = flow.site_client(), flow.hyperid_browser()
    authorize = flow.start(site, library)
    assert flow.query_of(authorize)["redirect_uri"] == (
        f"http://{flow.SITE_HOST}{flow.CALLBACK[library]}"
    )

    page = flow.open_page(http, authorize)

    assert page.status_code == 400
    assert "Location" not in page.headers
    assert "Unregistered redirect URI" in page.text
    assert 'name="csrf_token"' not in page.text  # no way to sign in from here
    assert_nothing_stored(site)


# ------------------------------------------------------------------------------ the scope


@pytest.mark.parametrize(
    ("library", "sign_in_again"),
    [
        pytest.param(
            "allauth",
            "/accounts/oidc/hyperid/login/?next=%2Fgate%2Fexport%2F%3Fmonth%3D5",
            marks=NEEDS_ALLAUTH,
            id="allauth",
        ),
        # A mozilla-django-oidc site names its login in REAUTHENTICATE_URL.
        pytest.param(
            "mozilla",
            "/oidc/authenticate/?next=%2Fgate%2Fexport%2F%3Fmonth%3D5",
            marks=NEEDS_MOZILLA,
            id="mozilla",
        ),
    ],
)
def test_a_sign_in_without_mfa_client_succeeds_but_the_gate_asks_to_sign_in_again(
    hyperid, settings, library, sign_in_again
):
    flow.configure(settings, hyperid, library, scope=("openid", "email"))
    if library == "mozilla":
        settings.HYPERID_MFA = {
            **settings.HYPERID_MFA,
            "REAUTHENTICATE_URL": "oidc_authentication_init",
        }
    site = flow.site_client()

    assert flow.sign_in(site, library, "alice").status_code == 302

    assert flow.signed_in_user(site) is not None
    assert not HyperIDToken.objects.exists()
    response = site.get("/gate/export/?month=5", HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_reauthenticate"
    assert response.json()["reauthenticate_url"] == sign_in_again
    assert hyperid.call_count("start") == 0  # no push: HyperID would refuse it


@pytest.mark.parametrize("library", BOTH)
def test_signing_in_again_from_the_gates_link_comes_back_with_a_token_that_pushes(
    hyperid, settings, library
):
    flow.configure(settings, hyperid, library, scope=("openid", "email"))
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "REAUTHENTICATE_URL": None if library == "allauth" else "oidc_authentication_init",
    }
    site = flow.site_client()
    flow.sign_in(site, library, "alice")
    link = site.get("/gate/export/?month=5", HTTP_ACCEPT="application/json").json()
    flow.configure(settings, hyperid, library)  # the site now asks for mfa-client

    http = flow.hyperid_browser()
    authorize = flow.start_at(site, link["reauthenticate_url"])
    back = flow.finish(
        site, flow.callback_url(flow.submit(http, flow.open_page(http, authorize), "alice"))
    )

    assert back.status_code == 302
    assert back["Location"] == "/gate/export/?month=5"
    assert flow.stored_subject(hyperid, flow.signed_in_user(site)) == "alice"
    assert site.get(back["Location"], HTTP_ACCEPT="application/json").json()["code"] == (
        "mfa_pending"
    )
    assert [push.subject for push in hyperid.pending()] == ["alice"]


# ------------------------------------------------------------------------------ two users


@pytest.mark.parametrize("library", BOTH)
def test_signing_in_as_bob_where_alice_was_signed_in_keeps_each_token_on_its_own_account(
    hyperid, sign_in, library
):
    site = sign_in(library, "alice")
    alice = flow.signed_in_user(site)

    sign_in(library, "bob", site=site)
    bob = flow.signed_in_user(site)

    assert bob not in (None, alice)
    assert flow.stored_subject(hyperid, alice) == "alice"
    assert flow.stored_subject(hyperid, bob) == "bob"
    assert_push_reaches(hyperid, site, "bob")

    # And back: alice signs in where bob was.
    sign_in(library, "alice", site=site)

    assert flow.signed_in_user(site) == alice
    assert flow.stored_subject(hyperid, alice) == "alice"
    assert flow.stored_subject(hyperid, bob) == "bob"
    assert HyperIDToken.objects.count() == 2


@pytest.mark.parametrize("library", [ALLAUTH])
def test_connecting_a_hyperid_account_that_belongs_to_another_user_stores_nothing(
    hyperid, sign_in, library
):
    sign_in(library, "alice")
    alices_token = HyperIDToken.objects.get().access_token_encrypted
    carol = get_user_model().objects.create_user("carol", "carol@example.com", "pw")
    site = flow.site_client()
    site.force_login(carol)

    site = sign_in(library, "alice", site=site, process="connect")

    assert flow.signed_in_user(site) == carol
    assert (
        "already connected to a different account"
        in site.get("/accounts/3rdparty/").content.decode()
    )
    assert flow.stored_subject(hyperid, carol) is None
    assert HyperIDToken.objects.get().access_token_encrypted == alices_token


# ------------------------------------------------------------------------------ who signs in


@pytest.mark.parametrize("library", BOTH)
def test_a_local_account_registered_with_the_users_email_does_not_receive_their_sign_in(
    hyperid, sign_in, library
):
    # Pre-account-hijacking: mallory registers, unverified, the email address alice
    # holds at HyperID, and waits for her to sign in with HyperID.
    users = get_user_model().objects
    mallory = users.create_user("mallory", email_of("alice"), "mallorys-password")

    site = sign_in(library, "alice")

    alice = flow.signed_in_user(site)
    assert alice != mallory
    assert flow.stored_subject(hyperid, mallory) is None
    mallory.refresh_from_db()
    assert mallory.check_password("mallorys-password")  # untouched, and still hers
    if library == "allauth":
        # allauth (its email authentication off, as the README leaves it) asks alice
        # to sign up with another address.
        assert alice is None
        assert site.get("/accounts/3rdparty/signup/").status_code == 200
    else:
        # A new user, linked to alice's HyperID account.
        assert alice.hyperid_accounts.get().subject == "alice"
        assert flow.stored_subject(hyperid, alice) == "alice"
        assert_push_reaches(hyperid, site, "alice")


@pytest.mark.parametrize("library", [MOZILLA])
def test_a_returning_user_is_found_by_their_hyperid_account_whatever_their_email(
    hyperid, sign_in, library
):
    sign_in(library, "alice")
    alice = get_user_model().objects.get()
    # Her address changes on the site (or mallory's account takes hers over).
    alice.email = "alice@bank.example"
    alice.save()
    get_user_model().objects.create_user("mallory", email_of("alice"), "pw")

    site = sign_in(library, "alice")

    assert flow.signed_in_user(site) == alice
    assert flow.stored_subject(hyperid, alice) == "alice"
    assert [(account.issuer, account.subject) for account in alice.hyperid_accounts.all()] == [
        (hyperid.issuer, "alice")
    ]


@pytest.mark.parametrize("library", [MOZILLA])
def test_a_local_account_named_like_the_hyperid_accounts_user_does_not_receive_its_sign_in(
    hyperid, sign_in, settings, library
):
    from hyperid_mfa.contrib.mozilla_oidc import HyperIDOIDCBackend

    flow.configure(settings, hyperid, library)
    backend = HyperIDOIDCBackend()
    backend._subject = "alice"
    squatter = get_user_model().objects.create_user(backend.get_username({}), "m@evil.test", "pw")
    site = flow.site_client()

    response = flow.sign_in(site, library, "alice")

    assert_refused(library, response)
    assert flow.signed_in_user(site) is None
    assert flow.stored_subject(hyperid, squatter) is None
    assert not squatter.hyperid_accounts.exists()


# ------------------------------------------------------------------------------ kinds of sign-in


@pytest.mark.parametrize("library", BOTH)
def test_a_new_account_made_by_a_hyperid_sign_in_gets_its_token(hyperid, sign_in, library):
    site = sign_in(library, "alice")

    [user] = get_user_model().objects.all()
    assert flow.signed_in_user(site) == user
    assert flow.stored_subject(hyperid, user) == "alice"
    assert_push_reaches(hyperid, site, "alice")


@pytest.mark.parametrize("library", [ALLAUTH])
def test_a_new_account_made_through_allauths_sign_up_form_gets_its_token(
    hyperid, settings, library
):
    flow.configure(settings, hyperid, library)
    settings.SOCIALACCOUNT_AUTO_SIGNUP = False  # allauth asks for the account's details
    site = flow.site_client()
    back = flow.sign_in(site, library, "alice")
    assert back["Location"] == "/accounts/3rdparty/signup/"
    assert not HyperIDToken.objects.exists()  # no account yet

    signed_up = site.post(back["Location"], {"email": "alice@hyperid.test", "username": "al"})

    assert signed_up.status_code == 302
    user = flow.signed_in_user(site)
    assert user.username == "al"
    assert flow.stored_subject(hyperid, user) == "alice"
    assert_push_reaches(hyperid, site, "alice")


@pytest.mark.parametrize("library", BOTH)
def test_a_returning_user_gets_the_token_of_the_new_sign_in(hyperid, sign_in, library):
    sign_in(library, "alice")
    [user] = get_user_model().objects.all()
    first = HyperIDToken.objects.get(user=user).access_token_encrypted
    hyperid.revoke_tokens("alice")  # the first sign-in's tokens are no good any more

    site = sign_in(library, "alice")  # another browser, another day

    assert flow.signed_in_user(site) == user
    assert HyperIDToken.objects.get(user=user).access_token_encrypted != first
    assert flow.stored_subject(hyperid, user) == "alice"
    assert_push_reaches(hyperid, site, "alice")
    assert hyperid.call_count("token") == 2  # the two sign-ins: no refresh was needed


@pytest.mark.parametrize("library", [ALLAUTH])
def test_a_signed_in_user_who_connects_hyperid_gets_its_token(hyperid, sign_in, library):
    carol = get_user_model().objects.create_user("carol", "carol@example.com", "pw")
    site = flow.site_client()
    site.force_login(carol)

    sign_in(library, "carol-at-hyperid", site=site, process="connect")

    assert flow.signed_in_user(site) == carol
    assert carol.socialaccount_set.get().uid == "carol-at-hyperid"
    assert flow.stored_subject(hyperid, carol) == "carol-at-hyperid"
    assert_push_reaches(hyperid, site, "carol-at-hyperid")


# ------------------------------------------------------------------------------ system checks


def check_ids() -> set[str]:
    return {message.id for message in checks.run_checks() if message.id}


def hyperid_app(**app_settings: Any) -> dict[str, Any]:
    return {
        "provider_id": "hyperid",
        "name": "HyperID",
        "client_id": "tests",
        "secret": "tests-secret",
        "settings": {"server_url": "https://login.hypersecureid.test/auth/realms/HyperID"}
        | app_settings,
    }


@NEEDS_ALLAUTH
def test_the_checks_are_quiet_about_a_hyperid_app_that_asks_for_mfa_client():
    assert {"hyperid_mfa.W013", "hyperid_mfa.W014"}.isdisjoint(check_ids())


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    "app",
    [
        pytest.param(hyperid_app(scope=["openid", "email"]), id="scope-without-mfa-client"),
        # allauth's own default scope: openid, profile, email.
        pytest.param(hyperid_app(), id="no-scope"),
    ],
)
def test_check_w013_warns_when_the_hyperid_apps_scope_lacks_mfa_client(settings, app):
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [app]}}

    [warning] = [m for m in checks.run_checks() if m.id == "hyperid_mfa.W013"]

    assert "mfa-client" in warning.msg
    assert "mfa-client" in warning.hint


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    "providers",
    [
        pytest.param({}, id="no-providers"),
        pytest.param(
            {"openid_connect": {"APPS": [{**hyperid_app(), "provider_id": "other"}]}},
            id="another-openid-connect-app",
        ),
    ],
)
def test_check_w014_warns_when_no_hyperid_app_is_configured(settings, providers):
    settings.SOCIALACCOUNT_PROVIDERS = providers

    ids = check_ids()

    assert "hyperid_mfa.W014" in ids
    assert "hyperid_mfa.W013" not in ids


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda settings: {"SOCIALACCOUNT_EMAIL_AUTHENTICATION": True}, id="setting"),
        pytest.param(
            lambda settings: {
                "SOCIALACCOUNT_PROVIDERS": {
                    "openid_connect": {"EMAIL_AUTHENTICATION": True, "APPS": [hyperid_app()]}
                }
            },
            id="provider",
        ),
        pytest.param(
            lambda settings: {
                "SOCIALACCOUNT_PROVIDERS": {
                    "openid_connect": {
                        "APPS": [
                            hyperid_app()
                            | {
                                "settings": {
                                    **hyperid_app()["settings"],
                                    "email_authentication": True,
                                }
                            }
                        ]
                    }
                }
            },
            id="app",
        ),
    ],
)
def test_check_w030_warns_when_allauth_signs_hyperid_users_in_by_email(settings, where):
    for name, value in where(settings).items():
        setattr(settings, name, value)

    [warning] = [m for m in checks.run_checks() if m.id == "hyperid_mfa.W030"]

    assert "pre-account hijacking" in warning.msg
    assert "off" in warning.hint


@NEEDS_ALLAUTH
def test_w030_is_quiet_when_the_hyperid_app_turns_email_authentication_off(settings):
    settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
    app = hyperid_app()
    app["settings"]["email_authentication"] = False
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": [app]}}

    assert "hyperid_mfa.W030" not in check_ids()


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    ("reporter_filter", "warned"),
    [
        ("django.views.debug.SafeExceptionReporterFilter", True),
        ("hyperid_mfa.sensitive.SignInExceptionReporterFilter", False),
        (f"{__name__}.ProjectReporterFilter", False),
    ],
)
def test_check_w029_warns_under_deploy_when_sign_in_reports_may_show_tokens(
    settings, reporter_filter, warned
):
    settings.DEFAULT_EXCEPTION_REPORTER_FILTER = reporter_filter

    ids = {m.id for m in checks.run_checks(include_deployment_checks=True)}

    assert ("hyperid_mfa.W029" in ids) is warned
    assert "hyperid_mfa.W029" not in check_ids()  # a deployment check


class ProjectReporterFilter(SignInExceptionReporterFilter):
    """A project's own filter, derived from the app's as the W029 hint says."""


def deploy_check_messages(settings: Any, **changes: Any) -> list[Any]:
    settings.DEBUG = False
    for name, value in changes.items():
        setattr(settings, name, value)
    return [
        m for m in checks.run_checks(include_deployment_checks=True) if m.id == "hyperid_mfa.E028"
    ]


@NEEDS_ALLAUTH
@pytest.mark.parametrize(
    "server_url",
    [
        "http://127.0.0.1:8765/auth/realms/HyperID",
        "http://login.hypersecureid.com/auth/realms/HyperID",
    ],
    ids=["simulator", "plain-http"],
)
def test_check_e028_reports_an_allauth_server_url_of_the_simulator_under_deploy(
    settings, server_url
):
    app = hyperid_app(server_url=server_url)
    providers = {"openid_connect": {"APPS": [app]}}

    [error] = deploy_check_messages(settings, SOCIALACCOUNT_PROVIDERS=providers)

    assert "server_url" in error.msg
    assert server_url in error.msg
    assert "https://login.hypersecureid.com/auth/realms/HyperID" in error.hint
    settings.DEBUG = True
    assert not [
        m for m in checks.run_checks(include_deployment_checks=True) if m.id == "hyperid_mfa.E028"
    ]


@NEEDS_MOZILLA
def test_check_e028_reports_mozilla_endpoints_of_the_simulator_under_deploy(settings):
    simulator = "http://127.0.0.1:8765/auth/realms/HyperID/protocol/openid-connect"
    endpoints = {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": simulator + "/auth",
        "OIDC_OP_TOKEN_ENDPOINT": "https://[::1]/token",
        "OIDC_OP_USER_ENDPOINT": "http://hyperid.example/userinfo",
        "OIDC_OP_JWKS_ENDPOINT": "https://login.hypersecureid.com/certs",
    }
    settings.AUTHENTICATION_BACKENDS = ["hyperid_mfa.contrib.mozilla_oidc.HyperIDOIDCBackend"]

    errors = deploy_check_messages(settings, **endpoints)

    assert [error.msg.split(" is ")[0] for error in errors] == [
        "OIDC_OP_AUTHORIZATION_ENDPOINT",
        "OIDC_OP_TOKEN_ENDPOINT",
        "OIDC_OP_USER_ENDPOINT",
    ]
    assert "unencrypted" in errors[2].msg
    # Without HyperID's backend, the endpoints are not HyperID's to check.
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert deploy_check_messages(settings) == []
