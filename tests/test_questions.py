"""The phone's question names every value the approval binds (``hyperid_mfa.gate.questions``),
and no question carries bidi or control characters (``pushes.clean_question``), tried
as an attacker would (issue 17, attack 4).

The user approves what the phone shows. An attacker who can make the user's browser
send a gated request (or who holds the session) chooses the values; if the question
shows only some of them, the user approves the rest unseen.
"""

from __future__ import annotations

import logging
import unicodedata
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hyperid_mfa import services
from hyperid_mfa.services import ratelimit
from hyperid_mfa.services.pushes import MAX_QUESTION_LENGTH
from tests import gate_views
from tests.conftest import approve_pending
from tests.test_admin_step_up import change_url, shop_form
from tests.test_origins import admin_with_a_shop
from tests.test_windows import post as window_post

pytestmark = pytest.mark.django_db

FORM = "application/x-www-form-urlencoded"
JSON = {"HTTP_ACCEPT": "application/json"}
SNEAKY = "\u202e\u2066\u200b\u200f\x00\x1b\n\r\t\u2028\ufeff\x7f\x85"


@pytest.fixture(autouse=True)
def _forget_runs():
    gate_views.RUNS.clear()


def asked(fake) -> str:
    """The question of the latest push on the phone."""
    return fake.transactions()[-1].question


def send_form(client, url, pairs, **extra):
    """A form body with its fields in exactly this order."""
    return client.post(url, urlencode(pairs), content_type=FORM, **JSON, **extra)


# --- every bound value, in one order ---------------------------------------------------------


def test_the_default_question_names_every_field_not_the_first_five(fake_hyperid, browser):
    # The attack: five decoys first, then what the view acts on.
    attack = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]
    attack += [("amount", "9999"), ("payee", "Mallory")]

    send_form(browser, "/gate/default/", attack)

    assert asked(fake_hyperid) == (
        "Approve payments.withdraw: a 1, amount 9999, b 2, c 3, d 4, e 5, payee Mallory?"
    )


def test_the_order_is_the_names_whatever_order_the_fields_came_in(fake_hyperid, browser):
    send_form(browser, "/gate/default/", [("payee", "Bob"), ("amount", "5")])
    first = asked(fake_hyperid)
    send_form(browser, "/gate/default/", [("amount", "6"), ("payee", "Bob")])

    assert first == "Approve payments.withdraw: amount 5, payee Bob?"
    assert asked(fake_hyperid) == "Approve payments.withdraw: amount 6, payee Bob?"


def test_repeated_fields_show_every_value(fake_hyperid, browser):
    send_form(browser, "/gate/default/", [("payee", "Bob"), ("payee", "Mallory")])

    assert asked(fake_hyperid) == "Approve payments.withdraw: payee [Bob, Mallory]?"


def test_url_arguments_and_the_query_string_are_named_too(fake_hyperid, browser):
    browser.get("/acct-42/statement/?month=5&format=pdf", **JSON)

    assert asked(fake_hyperid) == "Approve statements.send: account acct-42, format pdf, month 5?"


def test_a_name_in_the_query_and_the_body_is_shown_from_both(fake_hyperid, browser):
    send_form(browser, "/gate/default/?amount=1", [("amount", "9999")])

    assert asked(fake_hyperid) == "Approve payments.withdraw: amount 1, amount in the body 9999?"


def test_a_value_that_reads_like_more_fields_is_quoted(fake_hyperid, browser):
    send_form(browser, "/gate/default/", [("amount", "9999"), ("payee", "Bob, amount 5")])

    assert asked(fake_hyperid) == 'Approve payments.withdraw: amount 9999, payee "Bob, amount 5"?'


def test_bind_names_are_shown_in_binds_order_with_the_query(fake_hyperid, browser):
    send_form(
        browser, "/gate/named/?source=app", [("amount", "5"), ("note", "x"), ("payee", "Bob")]
    )

    # The note is not bound (the view may not act on it); the query string is.
    assert asked(fake_hyperid) == "Approve payments.withdraw: source app, payee Bob, amount 5?"


def test_a_bind_callable_is_shown_by_what_it_returns(fake_hyperid, browser):
    send_form(browser, "/gate/callable/", [("amount", "5"), ("payee", "Bob")])

    assert asked(fake_hyperid) == "Approve payments.withdraw: amount 5, to Bob?"


def test_json_values_are_shown_as_sent_and_nested_ones_compactly(fake_hyperid, browser):
    body = '{"payee": {"name": "Bob", "iban": "DE89"}, "amount": 100.0, "tags": ["a", "b"]}'

    browser.post("/gate/default/", body, content_type="application/json")

    assert asked(fake_hyperid) == (
        'Approve payments.withdraw: amount 100.0, payee {"iban":"DE89","name":"Bob"}, '
        'tags ["a","b"]?'
    )


def test_a_json_array_is_shown_whole(fake_hyperid, browser):
    browser.post("/gate/default/", "[1, 2.50]", content_type="application/json")

    assert asked(fake_hyperid) == "Approve payments.withdraw: body [1,2.50]?"


def test_a_text_body_is_shown_as_its_text(fake_hyperid, browser):
    browser.post("/gate/default/", "pay 5 to Bob", content_type="text/plain", **JSON)

    assert asked(fake_hyperid) == "Approve payments.withdraw: body pay 5 to Bob?"


def test_the_window_question_names_what_a_bind_callable_keeps_it_to(fake_hyperid, browser):
    browser.post("/gate/window-callable/", {"iban": "DE89", "amount": "5"}, **JSON)

    assert asked(fake_hyperid) == "Allow iban-payouts for 5 minutes: iban DE89?"


# --- what cannot be shown is refused, and costs nothing -----------------------------------


def assert_refused_without_a_push(response, fake, caplog):
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "mfa_bad_request"
    assert "cannot be approved" in body["detail"]
    assert fake.call_count("start") == 0
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "question=" in error.getMessage()


def assert_the_push_limit_is_untouched(fake, client):
    for amount in range(5):
        assert send_form(client, "/gate/default/", [("amount", str(amount))]).status_code == 403
    assert fake.call_count("start") == 5


def test_a_default_question_too_long_for_the_phone_is_refused_not_shortened(
    fake_hyperid, browser, caplog
):
    fields = [(f"field{n:02d}", "x" * 20) for n in range(30)] + [("payee", "Mallory")]

    response = send_form(browser, "/gate/default/", fields)

    assert_refused_without_a_push(response, fake_hyperid, caplog)
    assert_the_push_limit_is_untouched(fake_hyperid, browser)


def test_an_explicit_question_too_long_is_refused_too(fake_hyperid, browser, caplog):
    response = browser.post("/gate/function/", {"amount": "5", "payee": "B" * 600}, **JSON)

    assert_refused_without_a_push(response, fake_hyperid, caplog)


def test_a_body_that_is_not_text_is_refused_for_the_default_question(fake_hyperid, browser, caplog):
    response = browser.post(
        "/gate/default/", b"\xff\xfe\x00binary", content_type="application/octet-stream", **JSON
    )

    assert_refused_without_a_push(response, fake_hyperid, caplog)
    assert_the_push_limit_is_untouched(fake_hyperid, browser)


def test_the_service_refuses_an_overlong_question_before_taking_a_push_slot(
    fake_hyperid, hyperid_user
):
    with pytest.raises(ValueError, match="at most 500"):
        services.start_request(hyperid_user, "payments.withdraw", question="x" * 501)

    assert fake_hyperid.call_count("start") == 0
    assert all(ratelimit.reserve(hyperid_user.pk).allowed for _ in range(5))


def test_a_question_of_exactly_the_length_fits(fake_hyperid, hyperid_user):
    request = services.start_request(
        hyperid_user, "payments.withdraw", question="x" * MAX_QUESTION_LENGTH
    )

    assert fake_hyperid.transaction(request.transaction_id).question == "x" * 500


# --- bidi and control characters never reach the phone -------------------------------------


def assert_clean(question: str) -> None:
    assert question == question.strip()
    assert "  " not in question
    for char in question:
        assert unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(question)


# In a value the gate shows, each is escaped: removed, it would make two values read alike.
SNEAKY_ESCAPED = r"\u202e\u2066\u200b\u200f\u0000\u001b\n\r\t\u2028\ufeff\u007f\u0085"


def test_bidi_and_controls_are_shown_escaped_in_the_default_question(fake_hyperid, browser):
    send_form(browser, "/gate/default/", [("amount", "9999"), ("payee", f"Bob{SNEAKY}yrallaM")])

    question = asked(fake_hyperid)
    assert_clean(question)
    assert question == (
        f'Approve payments.withdraw: amount 9999, payee "Bob{SNEAKY_ESCAPED}yrallaM"?'
    )


def test_bidi_and_controls_are_removed_from_an_explicit_question(fake_hyperid, browser):
    browser.post("/gate/function/", {"amount": "5", "payee": f"\u202eBob{SNEAKY}"}, **JSON)

    question = asked(fake_hyperid)
    assert_clean(question)
    assert question == "Withdraw 5 EUR to Bob ?"  # controls and line breaks: a space


def test_bidi_and_controls_are_shown_escaped_in_a_window_question(fake_hyperid, browser):
    window_post(browser, "account", account=f"4\u202e2{SNEAKY}0", amount="5")

    question = asked(fake_hyperid)
    assert_clean(question)
    assert question == f'Allow payouts for 5 minutes: account "4\\u202e2{SNEAKY_ESCAPED}0"?'


def test_bidi_and_controls_are_removed_from_the_admins_question(fake_hyperid, hyperid_user):
    admin, shop = admin_with_a_shop(hyperid_user)

    # Django's forms refuse a NUL character; the rest passes them.
    sneaky = SNEAKY.replace("\x00", "")
    admin.post(change_url(shop), shop_form(shop, iban=f"DE44\u202e5001{sneaky}9"))

    question = asked(fake_hyperid)
    assert_clean(question)
    assert "DE445001" in question.replace(" ", "")


def twelve_new_accounts() -> list[dict[str, str]]:
    return [
        {"label": f"Account {n:02d}", "iban": f"DE{n:02d}37040044053201300{n:02d}"}
        for n in range(12)
    ]


def test_an_admin_question_too_long_for_the_phone_is_refused_and_names_the_hook(
    fake_hyperid, hyperid_user, caplog
):
    admin, shop = admin_with_a_shop(hyperid_user)

    with caplog.at_level(logging.ERROR, logger="hyperid_mfa"):
        refused = admin.post(change_url(shop), shop_form(shop, extra=twelve_new_accounts()))

    assert refused.status_code == 400
    assert fake_hyperid.transactions() == []
    assert shop.accounts.count() == 0
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "get_mfa_question()" in line
    assert "ShopAdmin" in line
    assert "question=" not in line


def test_an_admin_whose_hook_words_it_shorter_asks_and_saves_once_approved(
    fake_hyperid, hyperid_user, monkeypatch
):
    from tests.shop.admin import ShopAdmin

    admin, shop = admin_with_a_shop(hyperid_user)
    monkeypatch.setattr(
        ShopAdmin,
        "get_mfa_question",
        lambda self, request, obj, change: f"Add {len(change.rows)} accounts to {obj}?",
        raising=False,
    )
    form = shop_form(shop, extra=twelve_new_accounts())

    assert admin.post(change_url(shop), form).status_code == 403
    assert asked(fake_hyperid) == "Add 12 accounts to Acme?"
    approve_pending(fake_hyperid)

    assert admin.post(change_url(shop), form).status_code == 302
    assert shop.accounts.count() == 12


@settings(max_examples=300, deadline=None)
@given(st.text())
@example(f"a{SNEAKY}b")
def test_no_question_carries_invisible_or_control_characters(question):
    from hyperid_mfa.services.pushes import clean_question

    cleaned = clean_question(question)

    assert_clean(cleaned)
    assert clean_question(cleaned) == cleaned


# --- values that differ only in what the phone does not show --------------------------------
# Removing or merging what the phone cannot show makes two bound values read alike:
# the site's payee "Bob Smith" and the attacker's "Bob\u2060 Smith" (a word joiner),
# an account the attacker registered, were both shown as "payee Bob Smith".

#: Characters a phone shows as nothing (Unicode's Default_Ignorable_Code_Point among
#: them) besides controls and format characters.
RENDERED_AS_NOTHING = {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
RENDERED_AS_NOTHING |= {*range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}


def as_read(question: str) -> str:
    """``question`` as a person reads it on the phone: what renders as nothing gone,
    every run of white space one space."""
    kept = "".join(
        char
        for char in question
        if unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Co", "Cn")
        and ord(char) not in RENDERED_AS_NOTHING
    )
    return " ".join(kept.split())


LOOK_ALIKES = [
    "Bob\u200b Smith",  # zero-width space
    "Bob\u2060 Smith",  # word joiner
    "Bob\u00ad Smith",  # soft hyphen
    "Bob\u200e Smith",  # left-to-right mark
    "Bob\U000e0041 Smith",  # a tag character
    "Bob\u034f Smith",  # combining grapheme joiner (a mark, not a format character)
    "Bob\ufe0f Smith",  # a variation selector
    "Bob\u3164 Smith",  # Hangul filler (a letter)
    "Bob\u00a0Smith",  # no-break space
    "Bob\u3000Smith",  # ideographic space
    "Bob  Smith",  # two spaces
    "Bob\tSmith",
    "Bob\u2028Smith",  # line separator
]


@pytest.mark.parametrize("forged", LOOK_ALIKES)
def test_a_value_that_differs_only_in_what_the_phone_cannot_show_does_not_read_alike(
    fake_hyperid, browser, forged
):
    send_form(browser, "/gate/default/", [("amount", "5"), ("payee", "Bob Smith")])
    honest = asked(fake_hyperid)
    send_form(browser, "/gate/default/", [("amount", "5"), ("payee", forged)])

    assert as_read(asked(fake_hyperid)) != as_read(honest)
    assert_clean(asked(fake_hyperid))


def test_text_in_any_script_is_shown_as_it_is(fake_hyperid, browser):
    send_form(browser, "/gate/default/", [("payee", "Zoë Ünal 李雷 محمد José")])

    assert asked(fake_hyperid) == "Approve payments.withdraw: payee Zoë Ünal 李雷 محمد José?"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=8), st.text(max_size=8))
@example("Bob", "Bob\u200b")
@example("Bob", '"Bob"')
@example('"Bob\\u200b"', "Bob\u200b")
def test_no_two_values_read_alike_on_the_phone(first, second):
    from hyperid_mfa.gate.questions import compact, text
    from hyperid_mfa.services.pushes import clean_question

    if first == second:
        return
    for shown in (text, compact):
        assert as_read(clean_question(shown(first))) != as_read(clean_question(shown(second)))


# --- every value, whatever it is -------------------------------------------------------------

shown_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=15
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.dictionaries(shown_text, shown_text, min_size=1, max_size=12))
@example({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "amount": "9999", "payee": "M"})
def test_every_submitted_field_is_on_the_phone_or_nothing_is_sent(
    fake_hyperid, browser, settings, fields
):
    from hyperid_mfa.gate.questions import text
    from hyperid_mfa.services.pushes import clean_question

    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    fields.pop("csrfmiddlewaretoken", None)
    before = fake_hyperid.call_count("start")

    response = send_form(browser, "/gate/default/", list(fields.items()))

    if response.status_code == 400:
        assert response.json()["code"] == "mfa_bad_request"
        assert fake_hyperid.call_count("start") == before
        return
    body = response.json()
    if body["code"] == "mfa_pending" and fake_hyperid.call_count("start") == before:
        return  # the same fields again: the pending push already names them
    question = asked(fake_hyperid)
    for name, value in fields.items():
        assert clean_question(f"{text(name)} {text(value)}") in question, (name, value)


def test_the_approved_request_still_runs_once(fake_hyperid, browser):
    pairs = [("amount", "5"), ("payee", "Bob, Jr.")]
    send_form(browser, "/gate/default/", pairs)
    approve_pending(fake_hyperid)

    assert send_form(browser, "/gate/default/", pairs).status_code == 200
    assert send_form(browser, "/gate/default/", pairs).status_code == 403
    assert gate_views.runs("default") == ["5"]
