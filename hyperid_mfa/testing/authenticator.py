"""The simulator's authenticator: the user's phone, as web pages in front of a FakeHyperID.

HyperID sends a push to the HyperID Authenticator app; locally there is no app, so the
simulator (``python manage.py hyperid_mfa_simulator``) serves these pages instead::

    fake = FakeHyperID(base_url=None)
    with fake.serve(handler=Authenticator(fake).handle) as server:
        print(server.url + "/authenticator/")

Pages, below ``/authenticator/`` on the server's root:

- ``GET  /authenticator/``: every account, with how many pushes wait on its phone;
- ``GET  /authenticator/<subject>/``: one user's phone: each pending push with its
  question, the numbers to pick from, Approve and Deny, then the recent answers;
- ``POST /authenticator/<subject>/<transaction_id>/`` with ``decision=approve|deny``
  and ``code=NN``: answers the push, then redirects back to the phone;
- ``GET  /authenticator/state`` and ``/authenticator/<subject>/state``: what the pages
  poll, so that they reload when a push arrives, expires or is answered.

Every other request goes to :meth:`FakeHyperID.handle` (HyperID's API and ``/_fake/``).

Number matching, as HyperID's app does it: the site shows a two-digit code, the phone
offers it among decoys, and approving takes the matching number. Picking a number
that does not match *denies* the push, because a mismatch means the person is
looking at a push they did not start (someone else's sign-in or payment, or an
attacker hoping for a tap). Deny needs no number. Refused without any change: a push
of another user or an unknown one (404), a push that is no longer pending (409), and
an approval without a number or with a number that was not offered (400).

This is a test double. Like the ``/_fake/`` control endpoints next to it, it has no
authentication at all: anyone who reaches the port can approve anyone's pushes.
Bind it to loopback only (the simulator's default).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
from collections.abc import Iterator, Mapping
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from .fake import FakeHyperID
from .responses import FakeResponse
from .transactions import FakeTransaction

__all__ = ["AUTHENTICATOR_PATH", "Authenticator"]

#: Where the pages live on the simulator's server.
AUTHENTICATOR_PATH = "/authenticator/"

_ROOT = AUTHENTICATOR_PATH.rstrip("/")
_PHONE = re.compile(r"/authenticator/([^/]+)/\Z")
_PHONE_STATE = re.compile(r"/authenticator/([^/]+)/state\Z")
_ANSWER = re.compile(r"/authenticator/([^/]+)/(\d{1,19})/\Z")
_SCRIPT_PATH = _ROOT + "/authenticator.js"
_STYLE_PATH = _ROOT + "/authenticator.css"
_OUTCOMES = ("approved", "denied", "mismatch")
_RECENT = 5

# The pages load their script and style from the server itself, so this policy holds.
_HTML_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class Authenticator:
    """Web pages that play the HyperID Authenticator app for the users of ``fake``.

    :meth:`handle` answers the pages' paths and passes every other request on to
    ``fake.handle``; give it to :meth:`FakeHyperID.serve` as the ``handler``.
    ``choice_count`` is how many numbers a push offers (the right one included).
    """

    def __init__(self, fake: FakeHyperID, *, choice_count: int = 3) -> None:
        if not 2 <= choice_count <= 10:
            raise ValueError("choice_count must be between 2 and 10")
        self.fake = fake
        self.choice_count = choice_count
        # Keys the decoys: the same push offers the same numbers on every reload, so
        # reloading cannot be used to narrow the choice down.
        self._secret = secrets.token_bytes(32)

    def __repr__(self) -> str:
        return f"<Authenticator for {self.fake!r}>"

    @staticmethod
    def phone_path(subject: str) -> str:
        """The path of ``subject``'s phone page, e.g. ``/authenticator/alice/``."""
        return f"{AUTHENTICATOR_PATH}{quote(subject, safe='')}/"

    def choices(self, transaction_id: int) -> list[str]:
        """The numbers the phone offers for a push, in display order; ``KeyError`` if unknown."""
        return self._choices(self.fake.transaction(transaction_id))

    def _choices(self, txn: FakeTransaction) -> list[str]:
        numbers = [txn.code]
        for number in self._decoys(txn.transaction_id):
            if number not in numbers:
                numbers.append(number)
            if len(numbers) == self.choice_count:
                break
        return sorted(numbers)

    def _decoys(self, transaction_id: int) -> Iterator[str]:
        counter = 0
        while True:
            message = f"{transaction_id}:{counter}".encode("ascii")
            for byte in hmac.new(self._secret, message, hashlib.sha256).digest():
                yield f"{byte % 100:02d}"
            counter += 1

    # ------------------------------------------------------------------ routing

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> FakeResponse:
        """Answer one request: a page of the authenticator, or else whatever the fake answers."""
        target = urlsplit(path)
        route = target.path
        if route == "/":
            return _redirect(AUTHENTICATOR_PATH, status=302)
        if route != _ROOT and not route.startswith(AUTHENTICATOR_PATH):
            return self.fake.handle(method, path, headers, body)
        method = method.upper()
        if route == _ROOT:
            return _redirect(AUTHENTICATOR_PATH, status=301)
        answer = _ANSWER.match(route)
        if answer is not None:
            if method != "POST":
                return _not_allowed("POST")
            return self._answer(unquote(answer.group(1)), int(answer.group(2)), body)
        if method not in ("GET", "HEAD"):
            return _not_allowed("GET, HEAD")
        if route == AUTHENTICATOR_PATH:
            return self._index()
        if route == _ROOT + "/state":
            return _json(200, {"state": self._index_state()})
        if route == _SCRIPT_PATH:
            return _asset("text/javascript; charset=utf-8", _SCRIPT)
        if route == _STYLE_PATH:
            return _asset("text/css; charset=utf-8", _STYLE)
        state = _PHONE_STATE.match(route)
        if state is not None:
            return _json(200, {"state": self._phone_state(unquote(state.group(1)))})
        phone = _PHONE.match(route)
        if phone is not None:
            return self._phone(unquote(phone.group(1)), parse_qs(target.query))
        return _message_page(404, "Not found", "The simulator has no such page.")

    # ------------------------------------------------------------------ pages

    def _pending_counts(self) -> dict[str, int]:
        """Every account, oldest first, with how many of its pushes wait."""
        counts = dict.fromkeys(self.fake.users(), 0)
        for txn in self.fake.pending():
            counts[txn.subject] = counts.get(txn.subject, 0) + 1
        return counts

    def _index_state(self) -> str:
        return ";".join(f"{subject}={count}" for subject, count in self._pending_counts().items())

    def _phone_state(self, subject: str) -> str:
        return ",".join(str(txn.transaction_id) for txn in self.fake.pending(subject))

    def _index(self) -> FakeResponse:
        rows = []
        for subject, count in self._pending_counts().items():
            waiting = "no pushes waiting" if count == 0 else f"{count} waiting"
            rows.append(
                f'<li><a href="{_e(self.phone_path(subject))}">{_e(subject)}</a>'
                f' <span class="count" data-count="{count}">{waiting}</span></li>'
            )
        accounts = (
            f'<ul class="accounts">{"".join(rows)}</ul>'
            if rows
            else '<p class="empty">No HyperID accounts yet. Sign in to the site with '
            "HyperID first: the account appears here.</p>"
        )
        content = (
            "<h1>Phones</h1>"
            "<p>One phone per HyperID account. Open yours to answer its pushes.</p>"
            f"{accounts}"
        )
        return _page(200, "Phones", content, _ROOT + "/state", self._index_state())

    def _phone(self, subject: str, query: Mapping[str, list[str]]) -> FakeResponse:
        txns = self.fake.transactions(subject)
        pending = [txn for txn in txns if txn.is_pending]
        answered = [txn for txn in reversed(txns) if not txn.is_pending][:_RECENT]
        parts = [
            f'<h1><span class="owner">{_e(subject)}</span>\'s phone</h1>',
            '<p class="app-name">HyperID Authenticator (simulated)</p>',
            self._outcome(subject, query),
        ]
        if pending:
            parts.extend(self._push(subject, txn) for txn in pending)
        else:
            parts.append(
                '<p class="empty">No pushes waiting. This page shows a new one by itself.</p>'
            )
        if answered:
            items = "".join(
                f'<li data-transaction-id="{txn.transaction_id}">'
                f'<span class="state state-{_e(txn.state)}">{_e(txn.state)}</span> '
                f"{_e(txn.question)}</li>"
                for txn in answered
            )
            parts.append(f'<h2>Recent</h2><ul class="recent">{items}</ul>')
        state_url = self.phone_path(subject) + "state"
        return _page(
            200, f"{subject}'s phone", "".join(parts), state_url, self._phone_state(subject)
        )

    def _outcome(self, subject: str, query: Mapping[str, list[str]]) -> str:
        """The line saying how the last answer went (after the redirect of a POST)."""
        outcome = (query.get("outcome") or [""])[-1]
        answered = (query.get("answered") or [""])[-1]
        if outcome not in _OUTCOMES or not answered.isdecimal() or len(answered) > 19:
            return ""
        try:
            txn = self.fake.transaction(int(answered))
        except KeyError:
            return ""
        if txn.subject != subject:
            return ""
        question = _e(txn.question)
        text = {
            "approved": f"Approved: {question} The site carries on by itself.",
            "denied": f"Denied: {question}",
            "mismatch": "That number does not match the one the site shows, so the push "
            f"was denied: {question} If you did not start it yourself, someone else may "
            "be trying to act in your name.",
        }[outcome]
        css = "ok" if outcome == "approved" else "refused"
        return f'<p class="outcome {css}" role="status" data-outcome="{outcome}">{text}</p>'

    def _push(self, subject: str, txn: FakeTransaction) -> str:
        seconds_left = max(0, int(txn.expires_at - self.fake.now()))
        choices = "".join(
            f'<label class="choice"><input type="radio" name="code" value="{number}" required>'
            f"<span>{number}</span></label>"
            for number in self._choices(txn)
        )
        action = f"{self.phone_path(subject)}{txn.transaction_id}/"
        return (
            f'<section class="push" data-transaction-id="{txn.transaction_id}">'
            f'<p class="push-title">Approve this action?</p>'
            f'<p class="push-question">{_e(txn.question) or "(no question given)"}</p>'
            f'<form method="post" action="{_e(action)}">'
            "<fieldset><legend>Pick the number the site shows</legend>"
            f'<div class="choices">{choices}</div></fieldset>'
            '<div class="buttons">'
            '<button type="submit" name="decision" value="deny" class="deny" '
            "formnovalidate>Deny</button>"
            '<button type="submit" name="decision" value="approve" class="approve">'
            "Approve</button></div></form>"
            f'<p class="expires">Expires in {seconds_left // 60} min {seconds_left % 60:02d} s'
            f" &middot; push {txn.transaction_id}</p></section>"
        )

    # ------------------------------------------------------------------ answers

    def _answer(self, subject: str, transaction_id: int, body: bytes) -> FakeResponse:
        back = self.phone_path(subject)
        try:
            form = {key: values[-1] for key, values in parse_qs(body.decode("utf-8")).items()}
        except UnicodeDecodeError:
            form = {}
        decision = form.get("decision")
        if decision not in ("approve", "deny"):
            return _message_page(400, "Choose Approve or Deny", "Nothing was changed.", back)
        try:
            txn = self.fake.transaction(transaction_id)
        except KeyError:
            txn = None
        if txn is None or txn.subject != subject:
            # The same answer for someone else's push as for a missing one: this phone
            # holds only its own pushes.
            return _message_page(
                404,
                "No such push on this phone",
                f"{subject}'s phone has no push {transaction_id}. Nothing was changed.",
                back,
            )
        if not txn.is_pending:
            return self._no_longer_pending(txn, back)
        if decision == "deny":
            outcome = "denied"
        else:
            picked = form.get("code", "")
            if picked not in self._choices(txn):
                return _message_page(
                    400,
                    "Pick a number first",
                    "Pick the number the site shows among those on the push, then "
                    "Approve. The push is still waiting.",
                    back,
                )
            outcome = "approved" if hmac.compare_digest(picked, txn.code) else "mismatch"
        try:
            if outcome == "approved":
                self.fake.approve(transaction_id)
            else:
                self.fake.deny(transaction_id)
        except ValueError:
            # Expired or canceled by the site between the look-up and the answer.
            return self._no_longer_pending(self.fake.transaction(transaction_id), back)
        return _redirect(back + "?" + urlencode({"answered": transaction_id, "outcome": outcome}))

    def _no_longer_pending(self, txn: FakeTransaction, back: str) -> FakeResponse:
        return _message_page(
            409,
            "This push is no longer waiting",
            f"Push {txn.transaction_id} is {txn.state} already. Nothing was changed.",
            back,
        )


# --------------------------------------------------------------------------- responses


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(
    status: int,
    title: str,
    content: str,
    state_url: str | None = None,
    state: str | None = None,
) -> FakeResponse:
    polling = (
        f' data-state-url="{_e(state_url)}" data-state="{_e(state)}"'
        if state_url is not None and state is not None
        else ""
    )
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)} &middot; HyperID simulator</title>"
        f'<link rel="stylesheet" href="{_STYLE_PATH}">'
        f'<script src="{_SCRIPT_PATH}" defer></script></head><body>'
        '<header class="banner">HyperID simulator &middot; a test double for local '
        'development, not HyperID &middot; <a href="/authenticator/">all phones</a></header>'
        f'<main class="phone"{polling}>{content}</main></body></html>'
    )
    return FakeResponse(status, dict(_HTML_HEADERS), document.encode("utf-8"))


def _message_page(status: int, title: str, text: str, back: str | None = None) -> FakeResponse:
    link = f'<p><a href="{_e(back)}">Back to the phone</a></p>' if back else ""
    content = f'<h1>{_e(title)}</h1><p class="message">{_e(text)}</p>{link}'
    return _page(status, title, content)


def _redirect(location: str, *, status: int = 303) -> FakeResponse:
    return FakeResponse(status, {"Location": location, "Cache-Control": "no-store"}, b"")


def _not_allowed(allow: str) -> FakeResponse:
    response = _message_page(405, "Method not allowed", f"This page answers {allow} only.")
    response.headers["Allow"] = allow
    return response


def _json(status: int, payload: object) -> FakeResponse:
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return FakeResponse(
        status, {"Content-Type": "application/json", "Cache-Control": "no-store"}, body
    )


def _asset(content_type: str, text: str) -> FakeResponse:
    return FakeResponse(
        200, {"Content-Type": content_type, "Cache-Control": "no-cache"}, text.encode("utf-8")
    )


# Reload when the pushes change (one arrives, expires or is answered elsewhere), but
# not while the person is picking a number: that would throw their choice away.
_SCRIPT = """\
(function () {
  "use strict";
  var main = document.querySelector("[data-state-url]");
  if (!main) { return; }
  var url = main.getAttribute("data-state-url");
  var seen = main.getAttribute("data-state");
  function picking() {
    return document.querySelector("input[type=radio]:checked") !== null;
  }
  function poll() {
    fetch(url, {cache: "no-store", headers: {Accept: "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (data && data.state !== seen && !picking()) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
"""

_STYLE = """\
body { margin: 0; background: #eef1f5; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.banner { background: #6e40c9; color: #fff; padding: 0.5rem 1rem; font-size: 0.85rem;
  text-align: center; }
.banner a { color: #fff; }
.phone { max-width: 22rem; margin: 1.5rem auto; padding: 1.25rem 1.25rem 2rem;
  background: #fff; border: 1px solid #d0d7de; border-radius: 1.75rem;
  box-shadow: 0 0.5rem 1.5rem rgba(31, 35, 40, 0.12); }
h1 { font-size: 1.3rem; margin: 0.25rem 0; text-align: center; }
h2 { font-size: 1rem; margin: 1.5rem 0 0.5rem; color: #57606a; }
.app-name { text-align: center; color: #57606a; margin: 0 0 1rem; font-size: 0.9rem; }
.push { border: 1px solid #d0d7de; border-radius: 1rem; padding: 1rem; margin: 1rem 0;
  background: #f6f8fa; }
.push-title { margin: 0; color: #57606a; font-size: 0.9rem; }
.push-question { font-size: 1.15rem; font-weight: 600; margin: 0.35rem 0 0.75rem; }
fieldset { border: 0; padding: 0; margin: 0; }
legend { font-size: 0.9rem; margin-bottom: 0.5rem; }
.choices { display: flex; gap: 0.5rem; justify-content: center; }
.choice input { position: absolute; opacity: 0; }
.choice span { display: inline-block; min-width: 3.5rem; padding: 0.6rem 0; text-align: center;
  font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums;
  border: 2px solid #d0d7de; border-radius: 0.75rem; background: #fff; cursor: pointer; }
.choice input:checked + span { border-color: #6e40c9; background: #f0e9ff; }
.choice input:focus-visible + span { outline: 3px solid #0969da; }
.buttons { display: flex; gap: 0.5rem; margin-top: 1rem; }
.buttons button { flex: 1; font-size: 1rem; padding: 0.65rem; border-radius: 0.6rem;
  border: 1px solid #d0d7de; cursor: pointer; }
.approve { background: #1f883d; color: #fff; border-color: #1a7f37; }
.deny { background: #fff; color: #cf222e; }
.expires { font-size: 0.8rem; color: #57606a; margin: 0.75rem 0 0; text-align: center; }
.outcome { padding: 0.6rem 0.8rem; border-radius: 0.6rem; }
.outcome.ok { background: #dafbe1; }
.outcome.refused { background: #ffebe9; }
.empty, .message { color: #57606a; }
.accounts, .recent { list-style: none; padding: 0; margin: 0; }
.accounts li, .recent li { padding: 0.4rem 0; border-bottom: 1px solid #eaeef2; }
.count { color: #57606a; font-size: 0.9rem; }
.state { display: inline-block; min-width: 5.5rem; font-size: 0.8rem; font-weight: 600; }
.state-approved { color: #1a7f37; }
.state-denied, .state-expired, .state-canceled { color: #cf222e; }
@media (prefers-color-scheme: dark) {
  body { background: #0d1117; color: #e6edf3; }
  a { color: #4493f8; }
  .banner a { color: #fff; }
  .phone { background: #161b22; border-color: #3d444d; box-shadow: none; }
  h2, .app-name, .push-title, .expires, .empty, .message, .count { color: #9ea7b3; }
  .push { background: #0d1117; border-color: #3d444d; }
  .choice span { background: #21262d; color: #e6edf3; border-color: #3d444d; }
  .choice input:checked + span { border-color: #a371f7; background: #2d1f4e; }
  .choice input:focus-visible + span { outline-color: #4493f8; }
  .buttons button { border-color: #3d444d; }
  .approve { background: #238636; border-color: #2ea043; }
  .deny { background: #21262d; color: #ff7b72; }
  .outcome.ok { background: #0f3d1f; }
  .outcome.refused { background: #4c1414; }
  .accounts li, .recent li { border-bottom-color: #30363d; }
  .state-approved { color: #3fb950; }
  .state-denied, .state-expired, .state-canceled { color: #ff7b72; }
}
"""
