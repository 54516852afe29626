"""The admin's step-up decides what a save changes from the database, not from the form.

Django renders a field whose default is callable with a hidden ``initial-<name>``
input and leaves the field out of ``form.changed_data`` when the submitted value
equals it. An attacker who sends each new value twice, as the value and as its
``initial-`` value, declares every change "unchanged". Here a merchant with a
protected field of every kind (tests/shop: JSON, a time and a date with callable
defaults, a decimal, a choice, a foreign key, a boolean, tags, a file, a UUID) is
changed that way on the change form, in an inline row and in the change list's
editable columns: nothing is saved, one push asks about every value, and after the
approval the approved values are saved once. Honest saves that change no protected
value send no push, however their values are spelled.
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import QueryDict
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperid_mfa.admin.changes import Protection
from hyperid_mfa.admin.values import stored_rows
from hyperid_mfa.models import MFARequest
from tests.conftest import approve_pending
from tests.shop.admin import MERCHANT_PROTECTED, ShopAdmin
from tests.shop.models import Market, Merchant, Shop, Tag
from tests.test_admin_step_up import signed_in

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"
MALLORY_IBAN = "GB33BUKB20201555555555"
API_KEY = uuid.UUID("6f1c1b9e-3f5a-4b8e-9a63-2f0d6b7c1a11")
LICENCE = b"trade licence no. 1"
FORGED_LICENCE = b"trade licence no. 666"


@pytest.fixture(autouse=True)
def _no_push_limit(settings, tmp_path):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def staff(client, hyperid_user):
    """The staff member of ``client``."""
    return hyperid_user


@pytest.fixture
def client(hyperid_user) -> Client:
    """A superuser's browser, signed in (the user has a HyperID account)."""
    hyperid_user.is_staff = hyperid_user.is_superuser = True
    hyperid_user.save(update_fields=["is_staff", "is_superuser"])
    return signed_in(hyperid_user)


@pytest.fixture
def tags() -> dict[str, Tag]:
    return {name: Tag.objects.create(name=name) for name in ("verified", "high risk")}


@pytest.fixture
def shops() -> dict[str, Shop]:
    return {
        "acme": Shop.objects.create(name="Acme", iban=IBAN),
        "mallory": Shop.objects.create(name="Mallory's", iban=MALLORY_IBAN),
    }


@pytest.fixture
def merchant(tags, shops) -> Merchant:
    """A merchant as code creates one: its time to the microsecond (the admin's form
    shows seconds), a JSON object, a stored licence."""
    merchant = Merchant.objects.create(
        market=Market.objects.create(name="Old Town"),
        name="Bob's",
        settings={"iban": IBAN, "limit": 100},
        verified_at=datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=dt_timezone.utc),
        opens_on=date(2024, 6, 1),
        payout_limit=Decimal("250.00"),
        payout_shop=shops["acme"],
        api_key=API_KEY,
    )
    merchant.tags.set([tags["verified"]])
    merchant.licence.save("licence.txt", ContentFile(LICENCE))
    return merchant


def as_stored(merchant: Merchant) -> dict[str, Any]:
    """Every protected value of ``merchant`` as the database holds it now."""
    row = Merchant.objects.get(pk=merchant.pk)
    values = {name: getattr(row, name) for name in MERCHANT_PROTECTED if name != "tags"}
    values["name"] = row.name
    values["payout_shop"] = row.payout_shop_id
    values["licence"] = row.licence.name
    values["tags"] = sorted(row.tags.values_list("name", flat=True))
    return values


# --- the form as a browser submits it ------------------------------------------------------


class _BrowserForm(HTMLParser):
    """The fields a browser submits of the form with ``form_id`` as rendered, before
    anyone edits it (no file chosen, no button yet)."""

    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: dict[str, list[str]] = {}
        self.select: tuple[str, bool, list[tuple[str, bool]]] | None = None
        self.textarea: tuple[str, list[str]] | None = None

    def add(self, name: str, value: str) -> None:
        if "__prefix__" not in name:  # the inline's template row: beyond TOTAL_FORMS
            self.fields.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self.inside = found.get("id") == self.form_id
        name = found.get("name")
        if not self.inside or (not name and tag != "option"):
            return
        if tag == "input":
            kind = (found.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in found:
                    self.add(name, found.get("value") or "on")  # type: ignore[arg-type]
                return
            self.add(name, found.get("value") or "")  # type: ignore[arg-type]
        elif tag == "select":
            self.select = (name, "multiple" in found, [])  # type: ignore[assignment]
        elif tag == "option" and self.select is not None:
            self.select[2].append((found.get("value") or "", "selected" in found))
        elif tag == "textarea":
            self.textarea = (name, [])  # type: ignore[assignment]

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self.textarea is not None:
            name, parts = self.textarea
            text = "".join(parts)
            self.add(name, text[1:] if text.startswith("\n") else text)  # as HTML reads it
            self.textarea = None
        elif tag == "select" and self.select is not None:
            name, multiple, options = self.select
            chosen = [value for value, selected in options if selected]
            if not chosen and not multiple and options:
                chosen = [options[0][0]]
            for value in chosen:
                self.add(name, value)
            self.select = None


def browser_form(client: Client, url: str, form_id: str) -> dict[str, Any]:
    page = client.get(url)
    assert page.status_code == 200
    parser = _BrowserForm(form_id)
    parser.feed(page.content.decode())
    assert parser.fields, f"no form {form_id!r} at {url}"
    return dict(parser.fields)


def forge_initial(form: dict[str, Any]) -> dict[str, Any]:
    """Every ``initial-`` value set to the value submitted: "nothing changed"."""
    forged = dict(form)
    for name in form:
        if name.startswith("initial-"):
            forged[name] = form.get(name.removeprefix("initial-"), [""])
    return forged


def protected_changes(prefix: str, tags, shops) -> dict[str, Any]:
    """A new value for each protected field of the merchant among the form fields
    named ``<prefix><field>``; the box "active" is to be unticked. (Files: below.)"""
    return {
        f"{prefix}settings": json.dumps({"iban": MALLORY_IBAN}),
        f"{prefix}verified_at_0": "2025-01-02",
        f"{prefix}verified_at_1": "03:04:05",
        f"{prefix}opens_on": "2025-02-03",
        f"{prefix}payout_limit": "999999.00",
        f"{prefix}tier": "gold",
        f"{prefix}payout_shop": str(shops["mallory"].pk),
        f"{prefix}tags": [str(tags["high risk"].pk)],
        f"{prefix}api_key": "00000000-0000-4000-8000-000000000666",
    }


def forged_changes(form: dict[str, Any], prefix: str, tags, shops) -> dict[str, Any]:
    """``form`` with a new value for every protected field and the unprotected name
    (Django saves an inline or change list row only where its form says something
    changed), each new value also sent as its ``initial-`` value."""
    changed = {**form, **protected_changes(prefix, tags, shops), "_save": "Save"}
    changed[f"{prefix}name"] = "Bob's (closed)"
    if f"{prefix}tags" not in form:
        del changed[f"{prefix}tags"]  # not an editable column of the change list
    del changed[f"{prefix}active"]  # unticked
    forged = forge_initial(changed)
    assert forged[f"initial-{prefix}settings"] == changed[f"{prefix}settings"]
    return forged


#: What each question names: every protected value, before and after.
CHANGED_VALUES = (
    f'settings from {{"iban": "{IBAN}", "limit": 100}} to {{"iban": "{MALLORY_IBAN}"}}',
    "verified at from 2024-05-01 09:30:15+00:00 to 2025-01-02 03:04:05+00:00",
    "opens on from 2024-06-01 to 2025-02-03",
    "payout limit from 250.00 to 999999.00",
    "tier from Basic to Gold",
    "payout shop from Acme to Mallory's",
    "active from yes to no",
    "tags from verified to high risk",
    f"api key from {API_KEY} to 00000000-0000-4000-8000-000000000666",
)

APPROVED = {
    "name": "Bob's (closed)",
    "settings": {"iban": MALLORY_IBAN},
    "verified_at": datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt_timezone.utc),
    "opens_on": date(2025, 2, 3),
    "payout_limit": Decimal("999999.00"),
    "tier": "gold",
    "active": False,
    "api_key": uuid.UUID("00000000-0000-4000-8000-000000000666"),
    "payout_shop": "Mallory's",
    "tags": ["high risk"],
}


def saved_values(merchant: Merchant) -> dict[str, Any]:
    saved = as_stored(merchant)
    saved["payout_shop"] = Shop.objects.get(pk=saved["payout_shop"]).name
    return {name: saved[name] for name in APPROVED}


def one_push(fake_hyperid) -> str:
    [push] = fake_hyperid.pending()
    assert MFARequest.objects.count() == 1
    return push.question


def asked_and_saved_nothing(
    fake_hyperid, client, url: str, forged: dict[str, Any], merchant
) -> str:
    """Post ``forged``: the approval page, nothing saved, one push; its question."""
    before = as_stored(merchant)

    assert client.post(url, forged).status_code == 403

    assert as_stored(merchant) == before
    return one_push(fake_hyperid)


def approved_once(fake_hyperid, client, url: str, forged: dict[str, Any], merchant) -> None:
    """Approve the push: a re-submission with any other value saves nothing; the
    page's own saves exactly the approved values, once."""
    before = as_stored(merchant)
    approve_pending(fake_hyperid)
    for name in ("payout_limit", "merchants-0-payout_limit", "form-0-payout_limit"):
        if name in forged:
            assert client.post(url, {**forged, name: "999999.01"}).status_code == 403
    assert as_stored(merchant) == before

    assert client.post(url, forged).status_code == 302
    assert MFARequest.objects.filter(consumed_at__isnull=False).count() == 1


# --- the attack: forged initial- values ------------------------------------------------------


@pytest.fixture
def change_form(client, merchant) -> tuple[str, dict[str, Any]]:
    url = reverse("admin:shop_merchant_change", args=[merchant.pk])
    return url, browser_form(client, url, "merchant_form")


def test_forged_initial_values_on_the_change_form_save_nothing_without_approval(
    fake_hyperid, client, merchant, change_form, tags, shops
):
    url, form = change_form
    forged = forged_changes(form, "", tags, shops)

    question = asked_and_saved_nothing(fake_hyperid, client, url, forged, merchant)

    assert question == f"Change Bob's: {', '.join(CHANGED_VALUES)}?"
    approved_once(fake_hyperid, client, url, forged, merchant)
    assert saved_values(merchant) == APPROVED
    assert LogEntry.objects.filter(object_id=str(merchant.pk)).count() == 1


def test_forged_initial_values_in_an_inline_row_save_nothing_without_approval(
    fake_hyperid, client, merchant, tags, shops
):
    url = reverse("admin:shop_market_change", args=[merchant.market_id])
    forged = forged_changes(browser_form(client, url, "market_form"), "merchants-0-", tags, shops)

    question = asked_and_saved_nothing(fake_hyperid, client, url, forged, merchant)

    assert question == f"Change Old Town: Bob's: {', '.join(CHANGED_VALUES)}?"
    approved_once(fake_hyperid, client, url, forged, merchant)
    assert saved_values(merchant) == APPROVED


def test_forged_initial_values_in_the_change_lists_editable_columns_save_nothing_without_approval(
    fake_hyperid, client, merchant, tags, shops
):
    url = reverse("admin:shop_merchant_changelist")
    forged = forged_changes(browser_form(client, url, "changelist-form"), "form-0-", tags, shops)

    question = asked_and_saved_nothing(fake_hyperid, client, url, forged, merchant)

    columns = [value for value in CHANGED_VALUES if not value.startswith("tags")]
    assert question == f"Change Bob's: {', '.join(columns)}?"
    approved_once(fake_hyperid, client, url, forged, merchant)
    assert saved_values(merchant) == {**APPROVED, "tags": ["verified"]}


#: Where a merchant's protected fields are edited: the page, its form, the fields' prefix.
SURFACES = {
    "change form": ("admin:shop_merchant_change", "merchant_form", ""),
    "inline row": ("admin:shop_market_change", "market_form", "merchants-0-"),
    "change list row": ("admin:shop_merchant_changelist", "changelist-form", "form-0-"),
}


def on_surface(client, merchant, surface: str) -> tuple[str, dict[str, Any], str]:
    """The page where ``surface`` edits ``merchant``, its form as the browser submits
    it (saved), and the prefix of the merchant's fields in it."""
    view, form_id, prefix = SURFACES[surface]
    args = {"change form": [merchant.pk], "inline row": [merchant.market_id]}.get(surface)
    url = reverse(view, args=args)
    return url, {**browser_form(client, url, form_id), "_save": "Save"}, prefix


@pytest.mark.parametrize(
    ("surface", "question"),
    [
        ("change form", "Change licence of Bob's from licences/licence.txt to forged.txt?"),
        (
            "inline row",
            "Change Old Town: licence of Bob's from licences/licence.txt to forged.txt?",
        ),
        ("change list row", "Change licence of Bob's from licences/licence.txt to forged.txt?"),
    ],
)
def test_a_new_upload_under_a_forged_initial_value_asks_first(
    fake_hyperid, client, merchant, surface, question
):
    url, form, prefix = on_surface(client, merchant, surface)
    forged = forge_initial({**form, f"initial-{prefix}licence": "licences/licence.txt"})

    def with_upload() -> dict[str, Any]:
        return {**forged, f"{prefix}licence": SimpleUploadedFile("forged.txt", FORGED_LICENCE)}

    response = client.post(url, with_upload())

    assert response.status_code == 403
    assert one_push(fake_hyperid) == question
    assert Merchant.objects.get(pk=merchant.pk).licence.read() == LICENCE
    approve_pending(fake_hyperid)
    assert client.post(url, with_upload()).status_code == 302
    assert Merchant.objects.get(pk=merchant.pk).licence.read() == FORGED_LICENCE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("settings", '{"limit": 100, "iban": "FR76"}'),
        ("verified_at_1", "09:30:16"),
        ("opens_on", "2024-06-02"),
        ("payout_limit", "250.01"),
        ("tier", "gold"),
        ("payout_shop", "mallory"),
        ("active", ""),
        ("api_key", "6f1c1b9e-3f5a-4b8e-9a63-2f0d6b7c1a12"),
        ("licence-clear", "on"),
    ],
)
def test_each_protected_field_alone_with_a_forged_initial_value_asks_first(
    fake_hyperid, client, merchant, change_form, shops, field, value
):
    url, form = change_form
    before = as_stored(merchant)
    if field == "payout_shop":
        value = str(shops["mallory"].pk)
    if value:
        form[field] = [value]
    else:
        del form[field]
    forged = forge_initial(form)
    forged["_save"] = "Save"

    response = client.post(url, forged)

    assert response.status_code == 403
    assert len(fake_hyperid.pending()) == 1
    assert as_stored(merchant) == before


def pushed(fake_hyperid) -> list[str]:
    return [push.question for push in fake_hyperid.pending()]


# --- honest saves ------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", SURFACES)
def test_an_unchanged_resubmission_and_a_new_unprotected_name_need_no_approval(
    fake_hyperid, client, merchant, surface
):
    url, form, prefix = on_surface(client, merchant, surface)
    before = as_stored(merchant)

    assert client.post(url, form).status_code == 302
    assert client.post(url, {**form, f"{prefix}name": "Bob's bakery"}).status_code == 302

    assert fake_hyperid.pending() == []
    saved = as_stored(merchant)
    assert saved.pop("name") == "Bob's bakery"
    # The form shows the time to the second: Django saves it so, as without the mixin.
    assert saved.pop("verified_at") == before.pop("verified_at").replace(microsecond=0)
    del before["name"]
    assert saved == before


# --- JSON -----------------------------------------------------------------------------------


def test_a_protected_json_field_change_asks_for_approval_and_saves_it_after(
    fake_hyperid, client, merchant, change_form
):
    url, form = change_form
    new = {"limit": 100, "iban": MALLORY_IBAN}
    form.update(settings=json.dumps(new), _save="Save")

    response = client.post(url, form)

    assert response.status_code == 403  # not 500
    assert pushed(fake_hyperid) == [
        "Change settings of Bob's from "
        f'{{"iban": "{IBAN}", "limit": 100}} to {{"iban": "{MALLORY_IBAN}", "limit": 100}}?'
    ]
    approve_pending(fake_hyperid)
    # Another spelling of the same object is the same change.
    respelled = {**form, "settings": json.dumps(new, indent=2, sort_keys=True)}
    assert client.post(url, respelled).status_code == 302
    assert Merchant.objects.get(pk=merchant.pk).settings == new


def test_the_key_order_of_a_json_object_is_no_change_its_values_are(
    fake_hyperid, client, merchant, change_form
):
    url, form = change_form
    reordered = json.dumps({"limit": 100, "iban": IBAN})

    assert client.post(url, {**form, "settings": reordered, "_save": "Save"}).status_code == 302
    assert fake_hyperid.pending() == []
    as_number = reordered.replace("100", "100.0")
    assert client.post(url, {**form, "settings": as_number, "_save": "Save"}).status_code == 403


# --- spellings of one value (the decision itself) -----------------------------------------------


def as_post(form: dict[str, Any]) -> QueryDict:
    """``form`` as Django parses it into ``request.POST``."""
    data = QueryDict(mutable=True)
    for name, value in form.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    return data


def _decide(merchant: Merchant, staff, form: dict[str, Any]) -> set[str]:
    """The protected fields whose change the mixin finds in ``form`` for ``merchant``."""
    model_admin = admin.site._registry[Merchant]
    request = RequestFactory().post("/")
    request.user = staff
    instance = Merchant.objects.get(pk=merchant.pk)
    data = as_post(form)
    form = model_admin.get_form(request, instance, change=True)(data, instance=instance)
    assert form.is_valid(), form.errors
    stored = stored_rows(Merchant, [merchant.pk])[str(merchant.pk)]
    changes = Protection(MERCHANT_PROTECTED).changes(form, stored, adding=False)
    return {change.name for change in changes}


def _decimal_spellings(value: Decimal) -> st.SearchStrategy[str]:
    text = f"{value:.2f}"
    plain = text.rstrip("0").rstrip(".") if "." in text else text
    return st.sampled_from(
        [text, plain, f" {text} ", f"+{text}", f"0{text}", f"{value * 100:.0f}E-2"]
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_spellings_of_the_stored_values_are_no_change_other_values_are(
    merchant, staff, change_form, data
):
    _url, form = change_form
    same = data.draw(st.booleans(), label="same values")
    limit = (
        Decimal("250.00")
        if same
        else data.draw(st.decimals("0", "99999", places=2).filter(lambda d: d != Decimal("250.00")))
    )
    stored_settings = {"iban": IBAN, "limit": 100}
    settings_value = stored_settings if same else {**stored_settings, "limit": 101}
    items = data.draw(st.permutations(list(settings_value.items())), label="key order")
    key = str(API_KEY) if same else "6f1c1b9e-3f5a-4b8e-9a63-2f0d6b7c1a12"
    form.update(
        payout_limit=data.draw(_decimal_spellings(limit), label="limit"),
        settings=json.dumps(dict(items), indent=data.draw(st.sampled_from([None, 1, 4]))),
        api_key=data.draw(st.sampled_from([key, key.upper(), key.replace("-", "")])),
        verified_at_1=data.draw(st.sampled_from(["09:30:15", "09:30:15.000000"]))
        if same
        else "09:30:14",
    )

    found = _decide(merchant, staff, form)

    assert found == (set() if same else {"payout_limit", "settings", "api_key", "verified_at"})


def test_whitespace_the_form_strips_is_no_change_a_letters_case_is(merchant, staff, change_form):
    _url, form = change_form

    assert _decide(merchant, staff, {**form, "tier": "basic"}) == set()
    assert _decide(merchant, staff, {**form, "payout_limit": " 250.0 "}) == set()
    assert _decide(merchant, staff, {**form, "opens_on": "06/01/2024"}) == set()
    assert _decide(merchant, staff, {**form, "opens_on": "2024-06-01 "}) == set()
    assert _decide(merchant, staff, {**form, "verified_at_1": "09:30:15.123456"}) == set()
    assert _decide(merchant, staff, {**form, "verified_at_1": "09:30:15.123457"}) == {"verified_at"}


def test_a_stored_value_changed_after_the_approval_asks_again(
    fake_hyperid, client, merchant, change_form
):
    url, form = change_form
    form.update(payout_limit="300.00", _save="Save")
    assert client.post(url, form).status_code == 403
    approve_pending(fake_hyperid)
    # The approval binds the value it replaces: someone changes it meanwhile.
    Merchant.objects.filter(pk=merchant.pk).update(payout_limit=Decimal("5.00"))

    response = client.post(url, form)

    assert response.status_code == 403
    assert Merchant.objects.get(pk=merchant.pk).payout_limit == Decimal("5.00")
    assert pushed(fake_hyperid)[-1] == ("Change payout limit of Bob's from 5.00 to 300.00?")


def test_the_verification_inside_the_save_reads_the_database_not_the_form(
    staff, merchant, change_form
):
    # A custom view that saves through save_model with forged initial values.
    from django.core.exceptions import PermissionDenied

    _url, form = change_form
    model_admin = admin.site._registry[Merchant]
    request = RequestFactory().post("/")
    request.user = staff
    instance = Merchant.objects.get(pk=merchant.pk)
    data = as_post(forge_initial({**form, "payout_limit": "999999.00"}))
    bound = model_admin.get_form(request, instance, change=True)(data, instance=instance)
    assert bound.is_valid()
    assert "payout_limit" not in bound.changed_data  # the form believes the client

    with pytest.raises(PermissionDenied):
        model_admin.save_model(request, bound.save(commit=False), bound, change=True)
    assert Merchant.objects.get(pk=merchant.pk).payout_limit == Decimal("250.00")


def test_adding_a_merchant_binds_every_protected_value(fake_hyperid, client, tags, shops):
    url = reverse("admin:shop_merchant_add")
    form = browser_form(client, url, "merchant_form")
    form.update(protected_changes("", tags, shops), name="Eve's", _save="Save")
    forged = forge_initial(form)

    assert client.post(url, forged).status_code == 403
    assert not Merchant.objects.exists()
    [question] = pushed(fake_hyperid)
    assert question.startswith("Add merchant: settings ")
    assert "payout limit 999999.00" in question
    assert "payout shop Mallory's" in question
    approve_pending(fake_hyperid)
    assert client.post(url, {**forged, "payout_limit": "1000000.00"}).status_code == 403
    assert client.post(url, forged).status_code == 302
    assert Merchant.objects.get().payout_limit == Decimal("999999.00")


def test_a_time_shown_in_the_users_time_zone_is_the_stored_instant(
    merchant, staff, change_form, settings
):
    settings.TIME_ZONE = "Europe/Berlin"
    timezone.activate("Europe/Berlin")
    try:
        _url, form = change_form
        local = timezone.localtime(Merchant.objects.get(pk=merchant.pk).verified_at)
        form.update(verified_at_0=f"{local:%Y-%m-%d}", verified_at_1=f"{local:%H:%M:%S}")
        assert _decide(merchant, staff, form) == set()
        later = local + timedelta(hours=1)
        form.update(verified_at_1=f"{later:%H:%M:%S}")
        assert _decide(merchant, staff, form) == {"verified_at"}
    finally:
        timezone.deactivate()


def test_a_projects_save_model_may_still_normalise_a_protected_value(
    fake_hyperid, client, shops, monkeypatch
):
    # What the project's own code writes into the object is not the browser's: the
    # approval of the submitted IBAN still lets the normalised one be saved.
    def save_model(self, request, obj, form, change):
        obj.iban = obj.iban.replace(" ", "").upper()
        super(ShopAdmin, self).save_model(request, obj, form, change)

    monkeypatch.setattr(ShopAdmin, "save_model", save_model)
    shop = shops["acme"]
    url = reverse("admin:shop_shop_change", args=[shop.pk])
    spaced = "gb33 bukb 2020 1555 5555 55"
    form = {**browser_form(client, url, "shop_form"), "iban": spaced, "_save": "Save"}

    assert client.post(url, form).status_code == 403
    assert one_push(fake_hyperid) == f"Change IBAN of Acme from {IBAN} to {spaced}?"
    approve_pending(fake_hyperid)
    assert client.post(url, form).status_code == 302
    assert Shop.objects.get(pk=shop.pk).iban == MALLORY_IBAN
