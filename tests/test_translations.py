"""The German and Spanish catalogs (hyperid_mfa/locale/): every message the source
marks is translated and compiled, and users see the approval page, the JSON answers
and the admin in their language, chosen as a real site chooses it (LocaleMiddleware:
Accept-Language or the language cookie)."""

from __future__ import annotations

import ast
import gettext
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import translation

import hyperid_mfa
from hyperid_mfa import services
from tests.factories import make_request

APP = Path(hyperid_mfa.__file__).resolve().parent
LOCALE = APP / "locale"
LANGUAGES = ["de", "es"]
REFRESH = "refresh them with ./scripts/messages"

pytestmark = pytest.mark.django_db

# %(name)s, %s, %d, %% and {name}: what a translation must keep, each as often.
PLACEHOLDER = re.compile(r"%(?:\(\w+\))?[#0 +-]*\d*(?:\.\d+)?[sdifr%]|\{[^{}]*\}")


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    """LocaleMiddleware leaves the language of the last request active in the thread."""
    yield
    translation.deactivate()


# --- the catalogs ---------------------------------------------------------------------------


@dataclass
class Message:
    """One entry of a .po or .pot file."""

    msgid: str
    plural: str | None = None
    context: str | None = None
    translations: list[str] = field(default_factory=list)
    fuzzy: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return self.context, self.msgid

    def problems(self) -> list[str]:
        """What keeps this entry from being used, or from reading right."""
        if self.fuzzy:
            return ["fuzzy"]
        if not self.translations or not all(self.translations):
            return ["untranslated"]
        found = []
        for index, text in enumerate(self.translations):
            # msgstr[0] is the singular; every other form is a plural.
            source = self.msgid if index == 0 or self.plural is None else self.plural
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(source)):
                found.append(f"placeholders of {text!r} differ from {source!r}")
        return found


def read_po(path: Path) -> dict[tuple[str | None, str], Message]:
    """The live entries of a .po or .pot file (not the header, not obsolete ones)."""
    messages = {}
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        fields: dict[str, str] = {}
        name = None
        flags = set()
        for line in block.splitlines():
            if line.startswith("#,"):
                flags.update(flag.strip() for flag in line[2:].split(","))
            elif line.startswith('"') and name is not None:
                fields[name] += ast.literal_eval(line)
            elif not line.startswith("#") and " " in line:
                name, literal = line.split(" ", 1)
                fields[name] = ast.literal_eval(literal)
        if not fields.get("msgid"):
            continue
        message = Message(
            msgid=fields["msgid"],
            plural=fields.get("msgid_plural"),
            context=fields.get("msgctxt"),
            translations=[
                text for name, text in sorted(fields.items()) if name.startswith("msgstr")
            ],
            fuzzy="fuzzy" in flags,
        )
        messages[message.key] = message
    return messages


def catalog(language: str) -> dict[tuple[str | None, str], Message]:
    return read_po(LOCALE / language / "LC_MESSAGES" / "django.po")


@pytest.fixture(scope="module")
def marked(tmp_path_factory) -> dict[tuple[str | None, str], Message]:
    """Every message the app's source marks for translation today, as makemessages
    finds it in hyperid_mfa/ (scripts/messages does the same)."""
    copy = tmp_path_factory.mktemp("source") / "hyperid_mfa"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("locale", "__pycache__"))
    (copy / "locale").mkdir()
    # No settings: makemessages then writes to ./locale only, as in scripts/messages.
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "--locale", "de", "--keep-pot"],
        cwd=copy,
        env=env,
        check=True,
    )
    messages = read_po(copy / "locale" / "django.pot")
    assert len(messages) > 50  # makemessages found the app's strings at all
    return messages


@pytest.mark.gettext
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_the_source_marks_is_translated(marked, language):
    translated = catalog(language)
    problems = []
    for key, message in marked.items():
        entry = translated.get(key)
        if entry is None:
            problems.append(f"{message.msgid!r}: missing")
        elif entry.plural != message.plural:
            problems.append(f"{message.msgid!r}: plural {entry.plural!r} != {message.plural!r}")
        else:
            problems += [f"{message.msgid!r}: {problem}" for problem in entry.problems()]

    assert problems == [], f"{language}: {REFRESH} and translate"


@pytest.mark.gettext
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogs_hold_no_message_the_source_dropped(marked, language):
    dropped = [message.msgid for key, message in catalog(language).items() if key not in marked]

    assert dropped == [], f"{language}: {REFRESH}"


def compiled(path: Path) -> dict[object, str]:
    """What a .mo file translates, as Python's gettext (and so Django) reads it."""
    with path.open("rb") as mo:
        return gettext.GNUTranslations(mo)._catalog


@pytest.mark.gettext
@pytest.mark.parametrize("language", LANGUAGES)
def test_each_compiled_catalog_says_what_its_po_file_says(language, tmp_path):
    messages = LOCALE / language / "LC_MESSAGES"
    fresh = tmp_path / "django.mo"
    # --check: also refuses a python-format translation whose placeholders differ.
    subprocess.run(
        ["msgfmt", "--check", "-o", str(fresh), str(messages / "django.po")],
        check=True,
    )

    assert compiled(messages / "django.mo") == compiled(fresh), f"{language}: {REFRESH}"


def test_a_message_with_different_placeholders_is_reported():
    message = Message(
        msgid="Wait %(seconds)s seconds.", translations=["Warten Sie %(sekunden)s Sekunden."]
    )

    assert message.problems() == [
        "placeholders of 'Warten Sie %(sekunden)s Sekunden.' differ from "
        "'Wait %(seconds)s seconds.'"
    ]


# --- what users see --------------------------------------------------------------------------

WITHDRAWAL = {"amount": "500", "payee": "Bob"}

#: Texts of the approval page, in English and as each language shows them.
PAGE = {
    "Approve this action on your phone": {
        "de": "Geben Sie diese Aktion auf Ihrem Smartphone frei",
        "es": "Apruebe esta acción en su teléfono",
    },
    "Open the HyperID Authenticator app and choose this number:": {
        "de": "Öffnen Sie die App HyperID Authenticator und wählen Sie diese Zahl:",
        "es": "Abra la aplicación HyperID Authenticator y elija este número:",
    },
    "Waiting for your approval…": {
        "de": "Warten auf Ihre Freigabe …",
        "es": "Esperando su aprobación…",
    },
}


def page_config(html: str) -> dict:
    """The settings the page gives its script (hyperid_mfa/static/hyperid_mfa/approval.js)."""
    found = re.search(
        r'<script id="hyperid-mfa-config" type="application/json">(.*?)</script>', html
    )
    assert found, html
    return json.loads(found[1])


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_approval_page_speaks_the_language_the_browser_asks_for(
    fake_hyperid, browser, language
):
    response = browser.post(
        "/gate/function/", WITHDRAWAL, HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5"
    )

    html = response.content.decode()
    assert response.status_code == 403
    assert f'<html lang="{language}">' in html
    for english, translated in PAGE.items():
        assert translated[language] in html
        assert english not in html
    # What the script shows once the user has denied the push on the phone.
    denied_title = {"de": "Sie haben diese Aktion abgelehnt", "es": "Ha rechazado esta acción"}
    assert page_config(html)["messages"]["deniedTitle"] == denied_title[language]


def test_without_accept_language_the_approval_page_is_english(fake_hyperid, browser):
    html = browser.post("/gate/function/", WITHDRAWAL).content.decode()

    assert '<html lang="en">' in html
    assert "Approve this action on your phone" in html
    assert page_config(html)["messages"]["deniedTitle"] == "You denied this action"


PENDING_DETAIL = {
    "de": "Geben Sie diese Aktion in der App HyperID Authenticator frei: Prüfen Sie, dass "
    "dort {code} angezeigt wird.",
    "es": "Apruebe esta acción en la aplicación HyperID Authenticator: compruebe que muestra "
    "{code}.",
}
RATE_LIMITED_DETAIL = {
    "de": "Sie haben in kurzer Zeit mehrere Freigaben angefordert. Warten Sie, bevor Sie "
    "eine weitere anfordern.",
    "es": "Ha pedido varias aprobaciones en poco tiempo. Espere antes de pedir otra.",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_gates_json_answers_are_in_the_language_asked_for(
    fake_hyperid, browser, settings, language
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": "1/10m"}
    asked = {"HTTP_ACCEPT": "application/json", "HTTP_ACCEPT_LANGUAGE": language}

    # A plain Django view answers with JsonResponse, a DRF view with its Response.
    pending = browser.post("/gate/function/", WITHDRAWAL, **asked)
    limited = browser.post(
        "/gate/drf-permission/",
        json.dumps({"amount": "999", "payee": "Eve"}),
        content_type="application/json",
        **asked,
    )

    assert pending.status_code == 403
    body = pending.json()
    assert body["detail"] == PENDING_DETAIL[language].format(code=body["mfa_request"]["code"])
    assert limited.status_code == 429
    assert limited.json() == {"code": "mfa_rate_limited", "detail": RATE_LIMITED_DETAIL[language]}


API_ERRORS = {
    "de": {
        "not_found": "Diese MFA-Anfrage gibt es nicht.",
        "unknown_state": "Unbekannter Zustand; verwenden Sie einen dieser Werte: ",
        "finished": "Diese MFA-Anfrage ist bereits abgeschlossen: approved.",
    },
    "es": {
        "not_found": "No existe esa solicitud de MFA.",
        "unknown_state": "Estado desconocido; use uno de estos: ",
        "finished": "Esta solicitud de MFA ya ha terminado: approved.",
    },
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_apis_errors_are_in_the_language_asked_for(browser, hyperid_user, language):
    approved = make_request(hyperid_user, "approved")
    asked = {"HTTP_ACCEPT_LANGUAGE": language}
    expected = API_ERRORS[language]

    not_found = browser.get(reverse("hyperid_mfa:request-detail", args=["nope"]), **asked)
    unknown_state = browser.get(reverse("hyperid_mfa:request-list"), {"state": "won"}, **asked)
    finished = browser.post(reverse("hyperid_mfa:request-cancel", args=[approved.pk]), **asked)

    assert not_found.status_code == 404
    assert not_found.json() == {"detail": expected["not_found"]}
    assert unknown_state.status_code == 400
    [refusal] = unknown_state.json()["state"]
    assert refusal.startswith(expected["unknown_state"])
    assert "Unknown state" not in refusal
    assert finished.status_code == 409
    assert finished.json()["detail"] == expected["finished"]


# --- the admin --------------------------------------------------------------------------------

#: Texts of the MFA request admin, in English and as each language shows them.
CHANGELIST = {
    "Refresh from HyperID": {"de": "Bei HyperID aktualisieren", "es": "Actualizar desde HyperID"},
    ">Approved<": {"de": ">Freigegeben<", "es": ">Aprobada<"},
    "By outcome": {"de": "Nach Ergebnis", "es": "Por resultado"},
}
CHANGE_PAGE = {
    "The two-digit number the user matches in the app.": {
        "de": "Die zweistellige Zahl, die der Benutzer in der App auswählt.",
        "es": "El número de dos dígitos que el usuario elige en la aplicación.",
    },
    ">Outcome<": {"de": ">Ergebnis<", "es": ">Resultado<"},
    ">Approved<": {"de": ">Freigegeben<", "es": ">Aprobada<"},
    "MFA requests": {"de": "MFA-Anfragen", "es": "Solicitudes de MFA"},
}


def speaking(client, language):
    """``client`` with the language cookie set, as Django's set_language view leaves it."""
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = language
    return client


def assert_shows(html, texts, language):
    for english, translated in texts.items():
        assert translated[language] in html
        assert english not in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_admin_lists_and_shows_mfa_requests_in_the_chosen_language(
    admin_client, user, language
):
    request = make_request(user, "approved")
    client = speaking(admin_client, language)

    listing = client.get(reverse("admin:hyperid_mfa_mfarequest_changelist"))
    change = client.get(reverse("admin:hyperid_mfa_mfarequest_change", args=[request.pk]))

    assert listing.status_code == change.status_code == 200
    assert_shows(listing.content.decode(), CHANGELIST, language)
    assert_shows(change.content.decode(), CHANGE_PAGE, language)


CANCEL_NOTES = {
    "de": [
        "2 Anfragen abgebrochen; ihre Push-Benachrichtigungen wurden zurückgezogen.",
        "1 Anfrage war bereits abgeschlossen und bleibt unverändert.",
    ],
    "es": [
        "Se cancelaron 2 solicitudes; se retiraron sus notificaciones push.",
        "1 solicitud ya había terminado y se dejó como estaba.",
    ],
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_admins_action_reports_counts_in_the_chosen_languages_plural_forms(
    admin_client, fake_hyperid, hyperid_user, settings, language
):
    settings.HYPERID_MFA = {**settings.HYPERID_MFA, "START_RATE_LIMIT": None}
    pending = [
        services.start_request(hyperid_user, "payments.withdraw", question="Withdraw 500 EUR?")
        for _ in range(2)
    ]
    finished = make_request(hyperid_user, "approved")

    response = speaking(admin_client, language).post(
        reverse("admin:hyperid_mfa_mfarequest_changelist"),
        {"action": "cancel", "_selected_action": [str(r.pk) for r in [*pending, finished]]},
        follow=True,
    )

    assert [str(note) for note in response.context["messages"]] == CANCEL_NOTES[language]
