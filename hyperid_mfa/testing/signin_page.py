"""The pages of the sign-in: the form HyperID shows at its authorization endpoint, and errors.

Plain HTML with no script at all and every value escaped; the one style block is
allowed by its hash, so a Content-Security-Policy without ``unsafe-inline`` holds.
The form posts back to the authorization endpoint and may be redirected to the
client, so ``form-action`` names the client's origin too (browsers apply it to the
redirect after a form submission).
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Iterable

from .responses import FakeResponse

__all__ = ["CSRF_FIELD", "SCOPE_DESCRIPTIONS", "message_page", "sign_in_page"]

#: The form field carrying the page's token, which names the pending sign-in.
CSRF_FIELD = "csrf_token"

#: What each scope HyperID offers lets the site do, as the page says it.
SCOPE_DESCRIPTIONS = {
    "openid": "know who you are: your HyperID account id",
    "profile": "see your user name",
    "email": "see your email address",
    "mfa-client": "send pushes to your HyperID Authenticator, to have you approve actions",
}

_STYLE = """\
body { margin: 0; background: #eef1f5; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.banner { background: #6e40c9; color: #fff; padding: 0.5rem 1rem; font-size: 0.85rem;
  text-align: center; }
.card { max-width: 26rem; margin: 2rem auto; padding: 1.5rem; background: #fff;
  border: 1px solid #d0d7de; border-radius: 1rem; }
h1 { font-size: 1.3rem; margin: 0 0 0.75rem; }
h2 { font-size: 1rem; margin: 1.25rem 0 0.5rem; color: #57606a; }
code { overflow-wrap: anywhere; }
.scopes { padding-left: 1.2rem; margin: 0; }
.scopes .ignored { color: #57606a; }
.problem { background: #ffebe9; padding: 0.6rem 0.8rem; border-radius: 0.6rem; }
label { display: block; font-weight: 600; margin: 1.25rem 0 0.35rem; }
input[type=text] { box-sizing: border-box; width: 100%; font-size: 1rem; padding: 0.55rem;
  border: 1px solid #d0d7de; border-radius: 0.5rem; }
.hint { font-size: 0.85rem; color: #57606a; }
.buttons { display: flex; flex-direction: row-reverse; gap: 0.5rem; margin-top: 1rem; }
.buttons button { flex: 1; font-size: 1rem; padding: 0.6rem; border-radius: 0.6rem;
  border: 1px solid #d0d7de; cursor: pointer; background: #fff; }
.buttons .sign-in { background: #1f883d; color: #fff; border-color: #1a7f37; }
@media (prefers-color-scheme: dark) {
  body { background: #0d1117; color: #e6edf3; }
  .card { background: #161b22; border-color: #3d444d; }
  h2, .scopes .ignored, .hint { color: #9ea7b3; }
  .problem { background: #4c1414; }
  input[type=text] { background: #0d1117; color: #e6edf3; border-color: #3d444d; }
  .buttons button { background: #21262d; color: #e6edf3; border-color: #3d444d; }
  .buttons .sign-in { background: #238636; color: #fff; border-color: #2ea043; }
}
"""
_STYLE_SOURCE = "'sha256-{}'".format(
    base64.b64encode(hashlib.sha256(_STYLE.encode("utf-8")).digest()).decode("ascii")
)


def sign_in_page(
    *,
    action: str,
    token: str,
    client_id: str,
    redirect_uri: str,
    redirect_origin: str,
    requested_scopes: Iterable[str],
    subject: str,
    accounts: Iterable[str],
    problem: str | None = None,
    status: int = 200,
) -> FakeResponse:
    """The sign-in form; ``action`` is the path it posts to (the authorization endpoint)."""
    scopes = []
    for scope in requested_scopes:
        description = SCOPE_DESCRIPTIONS.get(scope)
        if description is None:
            scopes.append(
                f'<li class="ignored" data-scope="{_e(scope)}"><code>{_e(scope)}</code>: '
                "not offered by HyperID, ignored</li>"
            )
        else:
            scopes.append(
                f'<li data-scope="{_e(scope)}"><code>{_e(scope)}</code>: {_e(description)}</li>'
            )
    options = "".join(f'<option value="{_e(account)}"></option>' for account in accounts)
    alert = f'<p class="problem" role="alert">{_e(problem)}</p>' if problem else ""
    # "Sign in" comes first so that Enter submits it; the style puts Cancel on the left.
    content = (
        "<h1>Sign in with HyperID</h1>"
        f'<p class="client"><strong>{_e(client_id)}</strong> asks you to sign in, then '
        f"sends you back to <code>{_e(redirect_uri)}</code>.</p>"
        f'<h2>It asks to</h2><ul class="scopes">{"".join(scopes)}</ul>'
        f"{alert}"
        f'<form method="post" action="{_e(action)}">'
        f'<input type="hidden" name="{CSRF_FIELD}" value="{_e(token)}">'
        '<label for="subject">HyperID account</label>'
        '<input id="subject" name="subject" type="text" required maxlength="200" '
        f'autocomplete="username" autofocus list="accounts" value="{_e(subject)}">'
        f'<datalist id="accounts">{options}</datalist>'
        '<p class="hint">Any name will do: a new account is made, with a simulated '
        "HyperID Authenticator to answer its pushes.</p>"
        '<div class="buttons"><button type="submit" class="sign-in">Sign in</button>'
        '<button type="submit" name="cancel" value="1" class="cancel" formnovalidate>'
        "Cancel</button></div></form>"
    )
    return _page(status, "Sign in with HyperID", content, form_action=f"'self' {redirect_origin}")


def message_page(status: int, title: str, text: str) -> FakeResponse:
    """A page with a message only: why the sign-in stops here, or that the user signed out."""
    content = f'<h1>{_e(title)}</h1><p class="message">{_e(text)}</p>'
    return _page(status, title, content, form_action="'none'")


def _page(status: int, title: str, content: str, *, form_action: str) -> FakeResponse:
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(title)} &middot; HyperID simulator</title>"
        f"<style>{_STYLE}</style></head><body>"
        '<header class="banner">HyperID simulator &middot; a test double for local '
        "development, not HyperID</header>"
        f'<main class="card">{content}</main></body></html>'
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src {_STYLE_SOURCE}; form-action {form_action}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Not no-referrer: browsers then send "Origin: null" with the form, and the
        # sign-in checks the Origin of its form posts.
        "Referrer-Policy": "same-origin",
    }
    return FakeResponse(status, headers, document.encode("utf-8"))


def _e(text: str) -> str:
    return html.escape(text, quote=True)
