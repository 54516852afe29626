"""Where a gated request comes from, and where the URLs the app renders lead
(``hyperid_mfa.gate.origins``), tried as an attacker would (issue 17, attacks 2 and 3).

- A page on another site that makes the victim's browser send a gated request
  (a link, a form, a script) gets no push onto the victim's phone and consumes no
  approval and no window, whatever the method; the victim gets a page whose button
  starts over from this site.
- Every URL the approval page holds (the form that sends the request again, the
  way back, the status and cancel URLs, the sign-in link's ``next``) leads to this
  site as a browser resolves it, whatever the request's path.
"""

from __future__ import annotations

import json
import re
from urllib.parse import SplitResult, parse_qs, quote, unquote, urljoin, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hyperid_mfa.models import ApprovalWindow, HyperIDToken, MFARequest
from tests import gate_views, window_views
from tests.conftest import approve_pending
from tests.shop.models import Shop
from tests.test_admin_step_up import IBAN, NEW_IBAN, change_url, shop_form
from tests.test_gate import KINDS, submit
from tests.test_windows import open_window, post

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
CROSS_SITE = {"HTTP_SEC_FETCH_SITE": "cross-site"}
SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin"}
FUNCTION_SCOPED = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()
    window_views.RUNS.clear()


def config_of(response) -> dict:
    """The approval page's settings for its script."""
    found = re.search(
        r'<script id="hyperid-mfa-config" type="application/json">(.*?)</script>',
        response.content.decode(),
        re.DOTALL,
    )
    assert found, response.content
    return json.loads(found.group(1))


def pushes(fake) -> int:
    return fake.call_count("start")


# --- cross-site requests: no push, nothing consumed -------------------------------------------


def test_a_link_on_another_site_sends_no_push_and_offers_to_start_over(fake_hyperid, browser):
    response = browser.get(
        "/gate/export/?month=5", HTTP_REFERER="https://evil.example/", **CROSS_SITE
    )

    assert response.status_code == 403
    assert response["X-Frame-Options"] == "DENY"
    page = response.content.decode()
    assert 'id="hyperid-mfa-start-over"' in page
    config = config_of(response)
    assert config["code"] == "mfa_cross_site"
    assert config["state"] is None  # nothing to wait for: the page does not poll
    assert config["resubmit"] == {
        "method": "GET",
        "url": "/gate/export/",
        "fields": [["month", "5"]],
        "has_files": False,
    }
    assert pushes(fake_hyperid) == 0
    assert not MFARequest.objects.exists()
    # The button is the user's own request from this site: it goes through the gate.
    again = browser.get("/gate/export/?month=5", **SAME_ORIGIN, **JSON)
    assert again.json()["code"] == "mfa_pending"
    assert pushes(fake_hyperid) == 1


def test_a_cross_site_form_post_offers_to_send_the_same_form_from_this_site(fake_hyperid, browser):
    response = submit(browser, "function", html=True, **CROSS_SITE)

    assert response.status_code == 403
    config = config_of(response)
    assert config["resubmit"]["method"] == "POST"
    assert config["resubmit"]["url"] == "/gate/function/"
    assert config["resubmit"]["fields"] == [["amount", "500"], ["payee", "Bob"]]
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()
    assert pushes(fake_hyperid) == 0


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_a_cross_site_request_consumes_no_approval_whatever_its_method(
    fake_hyperid, browser, method
):
    def send(**extra):
        return browser.generic(method, "/gate/default/?amount=5", **JSON, **extra)

    assert send().json()["code"] == "mfa_pending"  # the user's own request, approved
    approve_pending(fake_hyperid)

    refused = send(**CROSS_SITE)

    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "mfa_cross_site"
    assert "another site" in body["detail"]
    assert "mfa_request" not in body
    assert gate_views.runs("default") == []
    # The approval is still there for the user's own request, and runs it once.
    assert send(**SAME_ORIGIN).status_code == 200
    assert gate_views.runs("default") == ["5"]
    assert pushes(fake_hyperid) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_gated_view_refuses_a_cross_site_request(fake_hyperid, browser, kind):
    refused = submit(browser, kind, **CROSS_SITE)

    assert refused.status_code == 403
    assert refused.json()["code"] == "mfa_cross_site"
    assert pushes(fake_hyperid) == 0
    honest = submit(browser, kind, **SAME_ORIGIN)
    assert honest.json()["code"] == "mfa_pending"


def test_inside_an_open_window_a_cross_site_request_does_not_run(fake_hyperid, browser):
    window = open_window(browser, fake_hyperid)
    runs_before = window.runs

    refused = post(browser, "send", extra=CROSS_SITE, amount="9999")

    assert refused.status_code == 403
    assert refused.json()["code"] == "mfa_cross_site"
    assert window_views.runs("send") == ["500"]
    window.refresh_from_db()
    assert window.runs == runs_before
    # The user's own requests still run in the window.
    assert post(browser, "send", extra=SAME_ORIGIN, amount="7").status_code == 200
    assert window_views.runs("send") == ["500", "7"]
    assert ApprovalWindow.objects.count() == 1


def admin_with_a_shop(user) -> tuple[Client, Shop]:
    """``user`` signed in to the admin as a superuser, and a shop to edit."""
    user.is_staff = user.is_superuser = True
    user.save()
    admin = Client()
    admin.force_login(user)
    return admin, Shop.objects.create(name="Acme", iban=IBAN)


def test_the_admins_step_up_refuses_a_cross_site_save(fake_hyperid, hyperid_user):
    admin, shop = admin_with_a_shop(hyperid_user)

    refused = admin.post(change_url(shop), shop_form(shop, iban=NEW_IBAN), **CROSS_SITE)

    assert refused.status_code == 403
    assert config_of(refused)["code"] == "mfa_cross_site"
    assert 'id="header"' in refused.content.decode()  # in the admin's own layout
    assert Shop.objects.get().iban == IBAN
    assert pushes(fake_hyperid) == 0
    honest = admin.post(change_url(shop), shop_form(shop, iban=NEW_IBAN), **SAME_ORIGIN)
    assert config_of(honest)["code"] == "mfa_pending"
    assert pushes(fake_hyperid) == 1


def test_a_cross_site_request_of_someone_signed_out_is_sent_to_sign_in(fake_hyperid):
    response = Client().get("/gate/export/?month=5", **CROSS_SITE)

    assert response.status_code == 302
    assert pushes(fake_hyperid) == 0


# --- requests no page of this site started ------------------------------------------------
# Sec-Fetch-Site: none is a navigation no page started: typed, a bookmark, and also a
# link opened from outside the browser (a mail or chat app, a PDF, a QR code), which
# the attacker writes as freely as a link on their own site. It may ask the phone,
# which names every value, but never runs inside an approval window. A prefetch or
# prerender (Sec-Purpose) is the browser's guess, made before, or without, the user's
# click: it is refused like a cross-site request.

FROM_OUTSIDE = {"HTTP_SEC_FETCH_SITE": "none"}
PREFETCH = {"HTTP_SEC_FETCH_SITE": "same-origin", "HTTP_SEC_PURPOSE": "prefetch"}


def test_a_link_opened_from_outside_the_browser_asks_the_phone_with_every_value(
    fake_hyperid, browser
):
    # A bookmark, a typed URL, or a link in a mail app: the phone names what will run.
    response = browser.get("/gate/export/?month=13", **JSON, **FROM_OUTSIDE)

    assert response.status_code == 403
    assert response.json()["code"] == "mfa_pending"
    [push] = fake_hyperid.pending()
    assert push.question == "Approve reports.export: month 13?"
    fake_hyperid.approve(push.transaction_id)
    ran = browser.get("/gate/export/?month=13", **FROM_OUTSIDE)
    assert ran.content == b"exported 13"
    # Once: the same link again asks again.
    again = browser.get("/gate/export/?month=13", **JSON, **FROM_OUTSIDE)
    assert again.json()["code"] == "mfa_pending"


def test_inside_an_open_window_a_link_from_outside_the_browser_asks_the_phone(
    fake_hyperid, browser
):
    window = open_window(browser, fake_hyperid, view="export")
    ran_before = len(window_views.runs("export"))
    pushed_before = pushes(fake_hyperid)

    asked = browser.get("/windows/export/?month=13", **JSON, **FROM_OUTSIDE)

    assert asked.status_code == 403
    assert asked.json()["code"] == "mfa_pending"
    assert pushes(fake_hyperid) == pushed_before + 1
    assert len(window_views.runs("export")) == ran_before
    window.refresh_from_db()
    assert window.runs == 0
    # The user's own request on the site's pages still runs in the window.
    assert browser.get("/windows/export/?month=13", **JSON, **SAME_ORIGIN).status_code == 200


@pytest.mark.parametrize(
    "purpose",
    [
        {"HTTP_SEC_PURPOSE": "prefetch"},
        {"HTTP_SEC_PURPOSE": "prefetch;prerender"},
        {"HTTP_SEC_PURPOSE": "Prefetch"},
        {"HTTP_PURPOSE": "prefetch"},
        {"HTTP_X_PURPOSE": "preview"},
        {"HTTP_X_MOZ": "prefetch"},
        {"HTTP_X_SEC_PURPOSE": "prefetch"},
    ],
)
def test_a_prefetch_sends_no_push_and_consumes_no_approval(fake_hyperid, browser, purpose):
    def get(**extra):
        return browser.get("/gate/export/?month=5", **JSON, **SAME_ORIGIN, **extra)

    assert get(**purpose).json()["code"] == "mfa_cross_site"
    assert pushes(fake_hyperid) == 0
    assert get().json()["code"] == "mfa_pending"  # the user's own click
    approve_pending(fake_hyperid)

    assert get(**purpose).status_code == 403  # a prefetch of the approved page
    assert get().status_code == 200  # the approval is still there for the click
    assert pushes(fake_hyperid) == 1


def test_inside_an_open_window_a_prefetch_does_not_run(fake_hyperid, browser):
    window = open_window(browser, fake_hyperid, view="export")

    refused = browser.get("/windows/export/?month=13", **JSON, **PREFETCH)

    assert refused.json()["code"] == "mfa_cross_site"
    window.refresh_from_db()
    assert window.runs == 0


# --- how the browser says where a request comes from -------------------------------------

ANOTHER_SITE = [
    {"HTTP_SEC_FETCH_SITE": "cross-site"},
    {"HTTP_SEC_FETCH_SITE": "Cross-Site"},
    {"HTTP_SEC_FETCH_SITE": " cross-site "},
    {"HTTP_SEC_FETCH_SITE": "same-origin, cross-site"},  # a repeated header, joined
    {"HTTP_SEC_FETCH_SITE": "cross-site,same-origin"},
    {"HTTP_SEC_FETCH_SITE": "same-orig"},  # a value no browser sends
    {"HTTP_SEC_FETCH_SITE": ""},
    # Bounced through a redirect on another site: the Referer is still this site's.
    {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_REFERER": "http://testserver/gate/"},
    {"HTTP_SEC_FETCH_SITE": "cross-site", "HTTP_ORIGIN": "http://testserver"},
    {"HTTP_ORIGIN": "null"},
    {"HTTP_ORIGIN": ""},
    {"HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_ORIGIN": "http://testserver.evil.example"},
    {"HTTP_ORIGIN": "http://testserver:8000"},
    {"HTTP_ORIGIN": "https://testserver"},  # another scheme
    {"HTTP_ORIGIN": "http://testserver/"},  # not an origin
    {"HTTP_ORIGIN": " http://testserver"},
    {"HTTP_ORIGIN": "http://evil.example@testserver"},
    {"HTTP_ORIGIN": "http://testserver@evil.example"},
    {"HTTP_ORIGIN": "http://testserver\\@evil.example"},
    {"HTTP_ORIGIN": "http://testserver, http://evil.example"},
    {"HTTP_ORIGIN": "http://evil.example", "HTTP_REFERER": "http://testserver/"},
    {"HTTP_REFERER": "https://evil.example/page"},
    {"HTTP_REFERER": "http://testserver@evil.example/"},
    {"HTTP_REFERER": "http://evil.example@testserver/"},
    {"HTTP_REFERER": "http://evil.example\\@testserver/"},
    {"HTTP_REFERER": "http://evil.example\\testserver/"},
    {"HTTP_REFERER": "http://testserver.evil.example/"},
    {"HTTP_REFERER": "http://testserver:8080/"},
    {"HTTP_REFERER": "http://testserver:99999/"},
    {"HTTP_REFERER": "http://test\tserver/"},
    {"HTTP_REFERER": "//testserver/page"},
    {"HTTP_REFERER": "/gate/transfer-form/"},
    {"HTTP_REFERER": "javascript:alert(1)//testserver/"},
    {"HTTP_REFERER": "ftp://testserver/"},
]
THIS_SITE = [
    {},  # API clients and curl say nothing
    {"HTTP_SEC_FETCH_SITE": "same-origin"},
    {"HTTP_SEC_FETCH_SITE": "same-site"},
    {"HTTP_SEC_FETCH_SITE": "Same-Origin"},
    {"HTTP_SEC_FETCH_SITE": "none"},  # no page: typed, a bookmark, a link from a mail app
    {"HTTP_SEC_FETCH_SITE": "None"},
    {"HTTP_ORIGIN": "http://testserver"},
    {"HTTP_ORIGIN": "http://TestServer"},
    {"HTTP_ORIGIN": "http://testserver:80"},
    {"HTTP_ORIGIN": "http://testserver", "HTTP_REFERER": "https://evil.example/"},
    {"HTTP_REFERER": "http://testserver/gate/transfer-form/?next=https://evil.example/"},
    {"HTTP_REFERER": "http://testserver:80/"},
]


@pytest.mark.parametrize("headers", ANOTHER_SITE)
def test_requests_another_site_sent_push_nothing(fake_hyperid, browser, headers):
    response = browser.post("/gate/default/", {"amount": "5"}, **JSON, **headers)

    assert response.status_code == 403
    assert response.json()["code"] == "mfa_cross_site"
    assert pushes(fake_hyperid) == 0


@pytest.mark.parametrize("headers", THIS_SITE)
def test_requests_of_this_site_work_as_before(fake_hyperid, browser, headers):
    response = browser.post("/gate/default/", {"amount": "5"}, **JSON, **headers)

    assert response.json()["code"] == "mfa_pending"
    assert pushes(fake_hyperid) == 1


def test_behind_a_tls_proxy_the_origin_has_the_proxys_scheme(fake_hyperid, browser, settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # As a browser sends it through the proxy: the Host header names no port.
    https = {"HTTP_HOST": "testserver", "HTTP_ORIGIN": "https://testserver"}
    proxied = {"HTTP_HOST": "testserver", "HTTP_X_FORWARDED_PROTO": "https"}

    through_the_proxy = submit(browser, "default", **https, HTTP_X_FORWARDED_PROTO="https")
    plain_http = submit(browser, "default", amount="6", **https)
    downgraded = submit(browser, "default", amount="7", **proxied, HTTP_ORIGIN="http://testserver")

    assert through_the_proxy.json()["code"] == "mfa_pending"
    assert plain_http.json()["code"] == "mfa_cross_site"
    assert downgraded.json()["code"] == "mfa_cross_site"
    assert pushes(fake_hyperid) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"HTTP_ORIGIN": "https://app.example.com"}, "mfa_pending"),
        ({"HTTP_ORIGIN": "https://pay.partner.example"}, "mfa_pending"),
        ({"HTTP_ORIGIN": "https://partner.example"}, "mfa_pending"),
        ({"HTTP_ORIGIN": "https://app.example.com", **CROSS_SITE}, "mfa_pending"),
        ({"HTTP_REFERER": "https://pay.partner.example/checkout", **CROSS_SITE}, "mfa_pending"),
        ({"HTTP_ORIGIN": "http://app.example.com"}, "mfa_cross_site"),
        ({"HTTP_ORIGIN": "https://app.example.com:8443"}, "mfa_cross_site"),
        ({"HTTP_ORIGIN": "https://evilpartner.example"}, "mfa_cross_site"),
        ({"HTTP_ORIGIN": "https://partner.example.evil.example"}, "mfa_cross_site"),
        ({"HTTP_REFERER": "https://evil.example/", **CROSS_SITE}, "mfa_cross_site"),
    ],
)
def test_csrf_trusted_origins_count_as_this_site(fake_hyperid, browser, settings, headers, code):
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.partner.example"]

    response = submit(browser, "default", **headers)

    assert response.json()["code"] == code


# Pieces of a hostile origin: whatever the attacker spells around it, their own host
# (evil.example) is in it.
ORIGIN_PIECES = st.sampled_from(
    [
        "testserver",
        "TESTSERVER",
        "evil.example",
        "@",
        "\\",
        ":",
        "80",
        ".",
        " ",
        "\t",
        "%40",
        "[",
        "]",
        "::1",
        "*",
        "http://",
        "https://",
        "null",
        ",",
        "\u3002",  # an ideographic full stop, which hosts read as a dot
    ]
)
hostile_origins = st.lists(ORIGIN_PIECES, min_size=1, max_size=8).map("".join)


@FUNCTION_SCOPED
@given(
    scheme=st.sampled_from(["http://", "https://", ""]),
    text=hostile_origins.filter(lambda text: "evil.example" in text),
    header=st.sampled_from(["HTTP_ORIGIN", "HTTP_REFERER"]),
    fetch_site=st.sampled_from([None, "cross-site"]),
)
@example(scheme="http://", text="evil.example@testserver", header="HTTP_REFERER", fetch_site=None)
@example(scheme="http://", text="evil.example\\@testserver", header="HTTP_REFERER", fetch_site=None)
def test_no_spelling_of_another_sites_origin_passes_for_this_one(
    fake_hyperid, browser, scheme, text, header, fetch_site
):
    value = scheme + text + ("/page" if header == "HTTP_REFERER" else "")
    headers = {header: value}
    if fetch_site is not None:
        headers["HTTP_SEC_FETCH_SITE"] = fetch_site

    response = browser.post("/gate/default/", {"amount": "5"}, **JSON, **headers)

    assert response.json()["code"] == "mfa_cross_site", headers
    assert pushes(fake_hyperid) == 0


@FUNCTION_SCOPED
@given(before=st.text(max_size=12), after=st.text(max_size=12))
def test_no_sec_fetch_site_that_says_cross_site_passes(fake_hyperid, browser, before, after):
    fetch_site = f"{before}cross-site{after}"

    response = browser.post(
        "/gate/default/", {"amount": "5"}, HTTP_SEC_FETCH_SITE=fetch_site, **JSON
    )

    assert response.json()["code"] == "mfa_cross_site", fetch_site
    assert pushes(fake_hyperid) == 0


# --- every URL the app renders leads to this site ----------------------------------------


def browser_resolve(page: str, url: str) -> SplitResult:
    """``url`` in a link or form of ``page`` (an http(s) page), as a browser parses it
    (the WHATWG URL standard): leading and trailing C0 controls and spaces trimmed,
    every tab and newline removed, a backslash read as a slash."""
    url = url.strip("".join(map(chr, range(0x21))))
    url = re.sub(r"[\t\n\r]", "", url).replace("\\", "/")
    return urlsplit(urljoin(page, url))


def browser_resolves_on_this_site(url: str, page: str = "http://testserver/") -> str:
    """The path a browser showing ``page`` goes to for ``url``; fails if it leaves
    the site."""
    parts = browser_resolve(page, url)
    assert (parts.scheme, parts.netloc) == ("http", "testserver"), (url, parts)
    return parts.path


def test_a_backslash_path_is_sent_again_to_this_site(fake_hyperid, browser):
    # /%5Cevil.example/statement/: read as /\evil.example/... a browser would go to
    # https://evil.example/statement/ on approval.
    response = browser.get("/%5Cevil.example/statement/?month=5", HTTP_ACCEPT="text/html")

    config = config_of(response)
    assert config["resubmit"]["url"] == "/%5Cevil.example/statement/"
    assert browser_resolves_on_this_site(config["resubmit"]["url"]) == "/%5Cevil.example/statement/"
    assert 'action="/%5Cevil.example/statement/"' in response.content.decode()
    # The honest request is unharmed: approved, the same path runs the view.
    approve_pending(fake_hyperid)
    done = browser.get("/%5Cevil.example/statement/?month=5")
    assert done.status_code == 200
    assert gate_views.runs("statement") == ["\\evil.example"]


def test_a_posted_form_on_a_backslash_path_is_sent_again_to_this_site(fake_hyperid, browser):
    response = browser.post("/%5C%5Cevil.example/statement/?x=%5C", {"amount": "5"})

    url = config_of(response)["resubmit"]["url"]
    assert url == "/%5C%5Cevil.example/statement/?x=%5C"
    browser_resolves_on_this_site(url)


# Pieces of a hostile path segment: what browsers reinterpret (backslashes, doubled
# slashes, whitespace, controls), encoded slashes, look-alikes, userinfo and schemes.
PATH_PIECES = st.sampled_from(
    [
        "\\",
        "/",
        "//",
        "\\\\",
        "/\\",
        "\t",
        "\r",
        "\n",
        " ",
        "@",
        ":",
        "evil.example",
        "%2F",
        "%5C",
        "%2f%2f",
        "\uff0f",  # fullwidth solidus
        "\uff3c",  # fullwidth reverse solidus
        "\u2215",  # division slash
        "\u2044",  # fraction slash
        "\uff0e",
        ".",
        "..",
        "?",
        "#",
        "javascript:",
        "https:",
        "\x00",
        "\x7f",
        "\u202e",
        "\u00e9",
    ]
)
hostile_paths = st.lists(PATH_PIECES, min_size=1, max_size=8).map("".join)
hostile_queries = st.lists(
    st.sampled_from(["next=", "//evil.example", "\\", "&", "=", "#", "%23", "\n", "x", "@"]),
    max_size=5,
).map("".join)


def assert_same_path(resolved: str, decoded_path: str) -> None:
    """``resolved`` is ``decoded_path`` (a browser removes "." and ".." segments)."""
    segments = decoded_path.split("/")
    if "." not in segments and ".." not in segments:
        assert unquote(resolved) == decoded_path


def _request_path(segment: str) -> str:
    # As a client sends it: every character of the segment percent-encoded but the
    # slashes, so the server reads the hostile text itself.
    return "/" + quote(segment, safe="/") + "/statement/"


def send(client, method: str, segment: str, query: str = "", **extra):
    """``method`` on the statement view under ``segment``, its path given to the
    server as a WSGI server gives it (the test client would read a leading ``//``
    as a host), with a form body for POST."""
    path = "/" + segment + "/statement/"
    extra["PATH_INFO"] = path.encode("utf-8").decode("iso-8859-1")
    url = "/placeholder/" + ("?" + quote(query, safe="=&") if query else "")
    if method == "POST":
        return client.post(url, {"amount": "5"}, **extra)
    return client.get(url, **extra)


def _assert_rendered_urls_stay_on_site(response, decoded_path: str) -> None:
    config = config_of(response)
    resubmit = config["resubmit"]["url"]
    assert resubmit is not None
    # Faithful too: the form goes back to the very view, not just to this site.
    assert_same_path(browser_resolves_on_this_site(resubmit), decoded_path)
    for name in ("statusUrl", "cancelUrl"):
        if config[name] is not None:
            browser_resolves_on_this_site(config[name])
    back = re.search(r'id="hyperid-mfa-back"[^>]*href="([^"]*)"', response.content.decode())
    if back is None:
        back = re.search(r'href="([^"]*)"[^>]*id="hyperid-mfa-back"', response.content.decode())
    assert back is not None
    browser_resolves_on_this_site(back.group(1).replace("&amp;", "&"))


@FUNCTION_SCOPED
@given(segment=hostile_paths, query=hostile_queries, method=st.sampled_from(["GET", "POST"]))
@example(segment="\\evil.example", query="", method="GET")
@example(segment="/\\evil.example", query="", method="POST")
@example(segment="\t/evil.example", query="", method="GET")
def test_every_url_the_page_renders_stays_on_this_site(
    fake_hyperid, browser, settings, segment, query, method
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    decoded = "/" + segment + "/statement/"
    target = _request_path(segment) + ("?" + quote(query, safe="=&") if query else "")
    referer = {"HTTP_REFERER": "http://testserver" + target}

    page = send(browser, method, segment, query, **referer)
    cross_site = send(browser, method, segment, query, **referer, **CROSS_SITE)
    as_json = send(browser, method, segment, query, **JSON)

    assert page.status_code == 403, page.content
    _assert_rendered_urls_stay_on_site(page, decoded)
    _assert_rendered_urls_stay_on_site(cross_site, decoded)
    browser_resolves_on_this_site(as_json.json()["mfa_request"]["status_url"])


@FUNCTION_SCOPED
@given(segment=hostile_paths)
@example(segment="/evil.example")
@example(segment="\\evil.example")
def test_the_way_back_after_signing_in_again_stays_on_this_site(
    fake_hyperid, browser, hyperid_user, settings, segment
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "REAUTHENTICATE_URL": "/sso/hyperid/"}
    HyperIDToken.objects.filter(user=hyperid_user).delete()

    answer = send(browser, "GET", segment, **JSON).json()

    assert answer["code"] == "mfa_reauthenticate"
    sign_in = urlsplit(answer["reauthenticate_url"])
    assert sign_in.path == "/sso/hyperid/"
    [back] = parse_qs(sign_in.query)["next"]
    assert_same_path(browser_resolves_on_this_site(back), "/" + segment + "/statement/")


@FUNCTION_SCOPED
@given(segment=hostile_paths)
@example(segment="/evil.example")
def test_the_sign_in_redirect_of_a_signed_out_user_comes_back_to_this_site(segment):
    response = send(Client(), "GET", segment)

    assert response.status_code == 302
    [back] = parse_qs(urlsplit(response["Location"]).query)["next"]
    browser_resolves_on_this_site(back)


def test_status_and_cancel_urls_are_the_apis(fake_hyperid, browser):
    config = config_of(submit(browser, "function", html=True))
    request = MFARequest.objects.get()

    assert config["statusUrl"] == "http://testserver" + reverse(
        "hyperid_mfa:request-detail", args=[request.pk]
    )
    assert config["cancelUrl"] == "http://testserver" + reverse(
        "hyperid_mfa:request-cancel", args=[request.pk]
    )


def test_a_request_a_form_cannot_repeat_is_not_sent_again(fake_hyperid, browser):
    response = browser.generic("PUT", "/gate/default/", b"amount=5", "text/plain")

    config = config_of(response)
    assert config["resubmit"]["url"] is None
    assert 'id="hyperid-mfa-continue"' not in response.content.decode()
    assert "send your request again" in config["messages"]["sendAgain"]
