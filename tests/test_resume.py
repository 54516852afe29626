"""A gated form refused for want of a HyperID token is kept across the sign-in
(hyperid_mfa/gate/resume.py), and the page asks to "Sign in with HyperID" on a first use,
"again" only when a token exists but no longer works."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from html import unescape
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.core.cache import cache
from django.core.cache.backends.dummy import DummyCache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from django.urls import reverse

from hyperid_mfa.gate import resume
from hyperid_mfa.gate.rendering import sign_in_method
from hyperid_mfa.models import HyperIDToken
from hyperid_mfa.tokens.store import store_tokens
from tests.conftest import approve_pending
from tests.gate_views import RUNS, runs
from tests.settings import HAVE_ALLAUTH, HAVE_MOZILLA_OIDC
from tests.test_dependencies import redis_proxy  # noqa: F401 (a fixture, used by name)

pytestmark = pytest.mark.django_db

FORM = {"amount": "500", "payee": "Bob"}
URL = "/gate/function/"
SIGN_IN_FORM = re.compile(r'<form id="hyperid-mfa-sign-in" method="post" action="([^"]+)">')
SIGN_IN_LINK = re.compile(r'<a id="hyperid-mfa-reauthenticate"[^>]* href="([^"]+)"')


@pytest.fixture
def first_use(browser, hyperid_user):
    """The HyperID user's browser, before any sign-in with HyperID: no token stored."""
    HyperIDToken.objects.filter(user=hyperid_user).delete()
    return browser


def sign_in_target(page: str) -> str:
    """Where the page's "Sign in with HyperID" sends the browser."""
    match = SIGN_IN_FORM.search(page) or SIGN_IN_LINK.search(page)
    assert match is not None, page
    return unescape(match.group(1))


def next_of(url: str) -> str:
    return parse_qs(urlsplit(url).query).get("next", [""])[0]


def refused(client: Client, data: dict[str, object] | None = None, **extra: object) -> str:
    response = client.post(URL, data or FORM, **extra)
    assert response.status_code == 403
    return response.content.decode()


def signs_in_with_hyperid(fake, user) -> None:
    """What the identity provider's callback does: the user's tokens stored."""
    pair = fake.issue_tokens(user.hyperid_subject)
    store_tokens(user, pair.access_token, pair.refresh_token, expires_in=int(pair.expires_in))


def resume_path(page: str) -> str:
    back = next_of(sign_in_target(page))
    assert back.startswith("/mfa/resume/"), back
    return back


def resumed_form(page: str) -> tuple[str, list[tuple[str, str]]]:
    """The resume page's form: its action and its hidden fields."""
    action = re.search(r'<form id="hyperid-mfa-resume"[^>]* action="([^"]+)"', page)
    assert action is not None, page
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)
    return unescape(action.group(1)), [(unescape(n), unescape(v)) for n, v in fields]


# --- the wording --------------------------------------------------------------------------


def test_a_user_without_a_hyperid_token_is_asked_to_sign_in_with_hyperid_not_again(
    fake_hyperid, first_use
):
    page = refused(first_use)
    assert '<h1 id="hyperid-mfa-heading">Sign in with HyperID</h1>' in page
    assert "Sign in with HyperID to approve this action." in page
    assert "again" not in page.split("<main")[1].split("</main>")[0].replace("Try again", "")
    assert fake_hyperid.call_count("start") == 0


def test_a_user_whose_token_no_longer_works_is_asked_to_sign_in_again(
    fake_hyperid, browser, hyperid_user
):
    fake_hyperid.revoke_tokens(hyperid_user.hyperid_subject)
    page = refused(browser)
    assert '<h1 id="hyperid-mfa-heading">Sign in with HyperID again</h1>' in page


def test_json_clients_get_the_same_code_either_way(fake_hyperid, first_use):
    body = first_use.post(URL, FORM, HTTP_ACCEPT="application/json").json()
    assert body["code"] == "mfa_reauthenticate"
    assert body["detail"] == "Sign in with HyperID to approve this action."
    # JSON clients send their requests again themselves: nothing is kept for them.
    assert "resume" not in body.get("reauthenticate_url", "")


# --- the sign-in: a POST to allauth, a link elsewhere ---------------------------------------


@pytest.mark.skipif(not HAVE_ALLAUTH, reason="needs the [allauth] extra")
def test_the_sign_in_posts_to_allauth_with_the_csrf_token_and_comes_back_to_the_resume_page(
    fake_hyperid, first_use
):
    page = refused(first_use)
    target = sign_in_target(page)
    assert urlsplit(target).path == reverse(
        "openid_connect_login", kwargs={"provider_id": "hyperid"}
    )
    form = page.split('<form id="hyperid-mfa-sign-in"')[1].split("</form>")[0]
    assert 'name="csrfmiddlewaretoken"' in form
    assert '<button type="submit" form="hyperid-mfa-sign-in" id="hyperid-mfa-reauthenticate">' in (
        page
    )
    assert "What you entered is kept" in page


def test_a_sign_in_elsewhere_is_a_link_and_sends_no_csrf_token(fake_hyperid, first_use, settings):
    for configured in ("/sso/hyperid/", "https://sso.example/login"):
        settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REAUTHENTICATE_URL": configured}
        page = refused(first_use)
        assert SIGN_IN_FORM.search(page) is None
        assert sign_in_target(page).startswith(configured + "?next=%2Fmfa%2Fresume%2F")


@pytest.mark.skipif(not HAVE_ALLAUTH, reason="needs the [allauth] extra")
@pytest.mark.parametrize("site", ["//sso.example", "https://sso.example"])
def test_allauths_login_path_on_another_site_is_a_link_and_gets_no_csrf_token(
    fake_hyperid, first_use, settings, site
):
    # The path of this site's allauth login, but on another host: a POST would hand it
    # this site's CSRF token.
    login = site + reverse("openid_connect_login", kwargs={"provider_id": "hyperid"})
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REAUTHENTICATE_URL": login}
    page = refused(first_use)
    assert SIGN_IN_FORM.search(page) is None
    assert sign_in_target(page).startswith(login + "?next=")
    assert sign_in_method(login) == "GET"


@pytest.mark.parametrize(
    "url",
    ["/nowhere/at/all/", "relative/path/", "https://sso.example/login", "/gate/function/"],
    ids=["unknown-path", "relative", "other-site", "not-a-login-view"],
)
def test_anything_but_allauths_login_on_this_site_is_signed_in_by_a_get(url):
    assert sign_in_method(url) == "GET"


@pytest.mark.skipif(not HAVE_ALLAUTH, reason="needs the [allauth] extra")
def test_allauths_login_on_this_site_is_signed_in_by_a_post():
    assert sign_in_method(reverse("openid_connect_login", kwargs={"provider_id": "hyperid"})) == (
        "POST"
    )


def test_a_refused_page_that_was_no_form_does_not_say_a_form_is_kept(fake_hyperid, first_use):
    response = first_use.get("/gate/default/", {"amount": "500"})
    assert response.status_code == 403, response.content
    page = response.content.decode()
    assert "Sign in with HyperID" in page
    assert "What you entered is kept" not in page
    assert not next_of(sign_in_target(page)).startswith("/mfa/resume/")


@pytest.mark.skipif(not HAVE_MOZILLA_OIDC, reason="needs the [oidc] extra")
def test_mozilla_django_oidcs_sign_in_is_a_link_it_takes_only_get(
    fake_hyperid, first_use, settings
):
    settings.HYPERID_MFA = {
        **settings.HYPERID_MFA,
        "REAUTHENTICATE_URL": "oidc_authentication_init",
    }
    page = refused(first_use)
    assert SIGN_IN_FORM.search(page) is None
    target = sign_in_target(page)
    assert urlsplit(target).path == reverse("oidc_authentication_init")
    assert next_of(target).startswith("/mfa/resume/")


# --- the form kept, and sent again after the sign-in --------------------------------------


def test_after_the_sign_in_the_kept_form_is_posted_to_its_own_path_and_asks_for_approval(
    fake_hyperid, first_use, hyperid_user
):
    page = refused(first_use, {**FORM, "csrfmiddlewaretoken": "x" * 64})
    back = resume_path(page)
    signs_in_with_hyperid(fake_hyperid, hyperid_user)

    shown = first_use.get(back)
    assert shown.status_code == 200
    assert shown["X-Frame-Options"] == "DENY"
    assert "no-store" in shown["Cache-Control"]
    html = shown.content.decode()
    action, fields = resumed_form(html)
    assert action == URL
    [(_, token)] = [field for field in fields if field[0] == "csrfmiddlewaretoken"]
    assert token != "x" * 64  # a fresh token, not the one first posted
    fields = [field for field in fields if field[0] != "csrfmiddlewaretoken"]
    assert fields == [("amount", "500"), ("payee", "Bob")]
    assert 'data-auto="true"' in html
    assert '<script src="/static/hyperid_mfa/resume.js" defer></script>' in html
    assert "<script>" not in html  # nothing inline: strict CSP works

    pending = first_use.post(action, dict(fields), HTTP_ACCEPT="application/json")
    assert pending.json()["code"] == "mfa_pending"
    [push] = fake_hyperid.pending()
    assert push.question == "Withdraw 500 EUR to Bob?"
    assert fake_hyperid.call_count("start") == 1


def test_a_resume_key_is_used_once(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    assert first_use.get(back).status_code == 200
    again = first_use.get(back)
    assert again.status_code == 404
    assert "This form is no longer kept" in again.content.decode()
    assert 'id="hyperid-mfa-resume"' not in again.content.decode()


def test_a_guessed_key_finds_nothing(fake_hyperid, first_use):
    resume_path(refused(first_use))
    guessed = first_use.get(reverse("hyperid_mfa:resume", args=["A" * 43]))
    assert guessed.status_code == 404
    assert 'id="hyperid-mfa-resume"' not in guessed.content.decode()


def key_of(back: str) -> str:
    return back.rstrip("/").rsplit("/", 1)[1]


def kept(back: str) -> dict[str, object]:
    entry: dict[str, object] = cache.get(resume._cache_key(key_of(back)))
    return entry


def test_another_users_key_is_refused_and_left_for_its_user(fake_hyperid, first_use, other_user):
    back = resume_path(refused(first_use))
    elsewhere = Client()
    elsewhere.force_login(other_user)
    answer = elsewhere.get(back)
    assert answer.status_code == 403
    assert "This form was kept for someone else" in answer.content.decode()
    assert 'id="hyperid-mfa-resume"' not in answer.content.decode()
    assert first_use.get(back).status_code == 200


def test_the_cache_key_is_not_the_resume_key(fake_hyperid, first_use):
    key = key_of(resume_path(refused(first_use)))
    assert cache.get(resume._PREFIX + key) is None
    assert key not in resume._cache_key(key)


def test_an_expired_key_is_410_and_posts_nothing(fake_hyperid, first_use, monkeypatch):
    back = resume_path(refused(first_use))
    later = time.time() + resume.LIFETIME + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the cache's clock too
    assert kept(back) is None  # the fields are gone; only the key's user is left
    gone = first_use.get(back)
    assert gone.status_code == 410
    assert "This form was kept too long" in gone.content.decode()
    assert 'id="hyperid-mfa-resume"' not in gone.content.decode()


def test_signed_out_the_resume_page_shows_nothing(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    assert Client().get(back).status_code == 403


def test_the_resume_page_takes_no_post_and_no_prefetch(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    assert first_use.post(back, {"path": "/admin/"}).status_code == 405
    assert first_use.get(back, HTTP_SEC_PURPOSE="prefetch").status_code == 503
    assert first_use.get(back).status_code == 200  # neither used the key up


def test_the_resume_page_posts_only_where_the_form_was_posted(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    shown = first_use.get(back + "?next=https://evil.example/&action=//evil.example/")
    action, _ = resumed_form(shown.content.decode())
    assert action == URL


def test_a_kept_path_that_would_leave_the_site_is_never_posted_to(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    cache.set(resume._cache_key(key_of(back)), {**kept(back), "path": "//evil.example/"})
    shown = first_use.get(back)
    assert shown.status_code == 404
    assert "evil.example" not in shown.content.decode()


def test_a_huge_form_is_not_kept_and_the_page_does_not_say_it_is(fake_hyperid, first_use):
    page = refused(first_use, {**FORM, "note": "x" * (resume.MAX_BYTES + 1)})
    assert "What you entered is kept" not in page
    assert not next_of(sign_in_target(page)).startswith("/mfa/resume/")


def test_a_user_keeps_at_most_a_few_forms(fake_hyperid, first_use):
    backs = [resume_path(refused(first_use)) for _ in range(resume.MAX_KEPT + 1)]
    assert first_use.get(backs[0]).status_code == 404  # the oldest went first
    for back in backs[1:]:
        assert first_use.get(back).status_code == 200


def test_files_are_not_kept_and_both_pages_say_so(fake_hyperid, first_use):
    upload = SimpleUploadedFile("contract.pdf", b"%PDF-1.4", content_type="application/pdf")
    page = refused(first_use, {**FORM, "contract": upload})
    assert "The files you chose cannot be kept" in page
    shown = first_use.get(resume_path(page)).content.decode()
    assert "The files you chose could not be kept" in shown
    assert 'data-auto="true"' not in shown  # sent only by a click
    assert 'id="hyperid-mfa-continue"' in shown


def test_a_cache_that_keeps_nothing_keeps_no_form_and_the_page_does_not_say_it_does(
    fake_hyperid, first_use, monkeypatch
):
    monkeypatch.setattr(resume, "cache", DummyCache("nothing", {}))
    page = refused(first_use)
    assert "What you entered is kept" not in page
    assert not next_of(sign_in_target(page)).startswith("/mfa/resume/")


# --- on Redis: one of concurrent requests, and a cache that fails ---------------------------


@pytest.mark.redis
@pytest.mark.usefixtures("redis_proxy")
def test_of_concurrent_requests_for_one_key_on_redis_one_only_gets_the_form(
    fake_hyperid, first_use, hyperid_user
):
    back = resume_path(refused(first_use))
    factory = RequestFactory()

    def open_it(_: int) -> int:
        request = factory.get(back)
        request.user = hyperid_user
        return resume.resume_view(request, key_of(back)).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = sorted(pool.map(open_it, range(8)))
    assert answers == [200] + [404] * 7


@pytest.mark.redis
def test_with_the_cache_down_the_resume_page_says_so_and_the_form_waits(
    fake_hyperid, first_use, request
):
    proxy = request.getfixturevalue("redis_proxy")
    back = resume_path(refused(first_use))
    proxy.down()
    assert first_use.get(back).status_code == 503
    proxy.up()
    assert first_use.get(back).status_code == 200


# --- attacks on the kept form ---------------------------------------------------------------


def test_another_sites_post_keeps_no_form_and_offers_no_sign_in(fake_hyperid, first_use):
    # Another site's form, posted in the victim's session, must not become a form that
    # this site's resume page sends (as this site's own page) after the victim signs in.
    cache.clear()
    for headers in (
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_REFERER": "https://evil.example/pay"},
    ):
        page = first_use.post(URL, FORM, **headers).content.decode()
        assert "/mfa/resume/" not in page
        assert "What you entered is kept" not in page
    assert not [key for key in cache._cache if "hyperid_mfa:resume:" in str(key)]
    # The victim's own form, from this site's page, is kept as before.
    page = refused(first_use, HTTP_SEC_FETCH_SITE="same-origin")
    assert resume_path(page)


def test_a_form_django_is_told_holds_a_secret_is_not_kept(fake_hyperid, first_use):
    # sensitive_post_parameters: a password must not wait in the cache for 15 minutes,
    # nor come back in a page as a hidden field.
    cache.clear()
    response = first_use.post("/gate/password/", {"new_password": "hunter2-Secret"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "What you entered is kept" not in page
    assert "/mfa/resume/" not in page
    assert not [key for key in cache._cache if "hyperid_mfa:resume:" in str(key)]
    # A form without a secret is still kept.
    assert resume_path(refused(first_use))


def test_a_form_kept_on_one_host_is_not_sent_from_another(fake_hyperid, first_use, settings):
    # One project serving two sites from one cache: a key opened on the other host
    # must not post the form there.
    settings.ALLOWED_HOSTS = ["bank.example", "shop.example"]
    page = refused(first_use, HTTP_HOST="shop.example")
    back = resume_path(page)
    elsewhere = first_use.get(back, HTTP_HOST="bank.example")
    assert elsewhere.status_code == 404
    assert 'id="hyperid-mfa-resume"' not in elsewhere.content.decode()
    shown = first_use.get(back, HTTP_HOST="shop.example")
    assert shown.status_code == 200
    assert resumed_form(shown.content.decode())[0] == URL


def test_the_resume_key_goes_to_no_other_site_in_the_referer(fake_hyperid, first_use):
    back = resume_path(refused(first_use))
    for answer in (first_use.get(back), first_use.get(back)):  # the form, then "used"
        assert answer["Referrer-Policy"] == "same-origin"
        assert answer["X-Frame-Options"] == "DENY"


def test_duplicate_and_odd_fields_come_back_exactly_as_posted(fake_hyperid, first_use):
    data = [
        ("payee", "Bob"),
        ("payee", 'Eve" autofocus onfocus="alert(1)'),
        ("amount", "500"),
        ("note", "<script>alert(1)</script>"),
        ('na"me<', "odd name"),
    ]
    body = "&".join(f"{quote(n)}={quote(v)}" for n, v in data)
    response = first_use.post(URL, body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    shown = first_use.get(resume_path(response.content.decode())).content.decode()
    assert "<script>alert(1)</script>" not in shown
    assert 'onfocus="alert(1)' not in shown
    _, fields = resumed_form(shown)
    assert [f for f in fields if f[0] != "csrfmiddlewaretoken"] == data


@pytest.mark.parametrize("key", ["x" * 5000, "%00", "..", "é", "a" * 43 + "%0a"])
def test_an_odd_resume_key_is_a_404_not_a_500(fake_hyperid, first_use, key):
    resume_path(refused(first_use))
    answer = first_use.get(f"/mfa/resume/{key}/")
    assert answer.status_code == 404
    assert 'id="hyperid-mfa-resume"' not in answer.content.decode()


def test_a_resumed_form_still_needs_its_own_approval_and_consumes_it_once(
    fake_hyperid, first_use, hyperid_user
):
    RUNS.clear()
    back = resume_path(refused(first_use))
    signs_in_with_hyperid(fake_hyperid, hyperid_user)
    action, fields = resumed_form(first_use.get(back).content.decode())
    data = dict(fields)
    assert first_use.post(action, data, HTTP_ACCEPT="application/json").status_code == 403
    assert runs("function") == []
    approve_pending(fake_hyperid)
    assert first_use.post(action, data, HTTP_ACCEPT="application/json").status_code == 200
    assert first_use.post(action, data, HTTP_ACCEPT="application/json").status_code == 403
    assert len(runs("function")) == 1
    assert first_use.get(back).status_code == 404  # the key is not a second way in


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"amount=500&payee=Bob"),  # no boundary
        ("multipart/form-data; boundary=x", b"--x\r\nnot a part"),
        ("APPLICATION/X-WWW-FORM-URLENCODED", b"amount=500&payee=Bob"),
        ("application/x-www-form-urlencoded; charset=utf-16", "amount=500".encode("utf-16")),
        ("application/x-www-form-urlencoded; charset=nonsense", b"amount=500&payee=Bob"),
        ("application/x-www-form-urlencoded", b"&".join([b"f=1"] * 1001)),  # too many
        ("application/x-www-form-urlencoded", b"amount=%ff%fe&payee=%00"),
        ("text/plain", b"amount=500&payee=Bob"),
    ],
    ids=[
        "multipart-without-boundary",
        "multipart-broken-part",
        "form-upper-case",
        "form-utf-16",
        "form-unknown-charset",
        "form-too-many-fields",
        "form-invalid-utf-8",
        "text-plain",
    ],
)
def test_an_odd_body_is_a_4xx_and_whatever_is_kept_is_sent_back_as_read(
    fake_hyperid, first_use, content_type, body
):
    response = first_use.generic("POST", URL, body, content_type=content_type)
    assert 400 <= response.status_code < 500
    page = response.content.decode()
    if "/mfa/resume/" in page:
        shown = first_use.get(resume_path(page))
        assert shown.status_code == 200
        action, _fields = resumed_form(shown.content.decode())
        assert action == URL


@pytest.mark.xfail(
    strict=True,
    reason="the cap of MAX_KEPT forms per user is a read-modify-write of one cache key: "
    "concurrent refusals each read the same list, and the forms they drop from it stay "
    "in the cache for LIFETIME (up to MAX_BYTES each)",
)
def test_concurrent_refusals_keep_no_more_than_a_few_forms_per_user(
    fake_hyperid, hyperid_user, monkeypatch
):
    cache.clear()
    together = threading.Barrier(8, timeout=10)

    class SlowToWrite:
        """The site's cache, each refusal reading the user's list before any writes it."""

        def __getattr__(self, name):
            return getattr(cache, name)

        def get(self, key, *args, **kwargs):
            value = cache.get(key, *args, **kwargs)
            if key == resume._user_key(hyperid_user):
                together.wait()
            return value

    monkeypatch.setattr(resume, "cache", SlowToWrite())
    factory = RequestFactory()

    def keep(index: int) -> str | None:
        request = factory.post(URL, FORM)
        request.user = hyperid_user
        return resume.keep(request, URL, [("amount", str(index))], has_files=False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = [key for key in pool.map(keep, range(8)) if key]
    monkeypatch.undo()
    assert len(keys) == 8
    assert sum(cache.get(resume._cache_key(key)) is not None for key in keys) <= resume.MAX_KEPT
