"""The fingerprint, under every spelling of a request (property-based).

The promise: two requests with the same fingerprint give a view the same values,
however the view reads them. So for pairs of requests, one of them a re-spelling of
the other (the Content-Type in other case or with parameters, values moved between
query and body, keys repeated, numbers written differently, another method, the
same bytes under another type...), equal fingerprints must mean equal readings:

- the method, the path and the query string;
- for a body declared a form (as Django reads the type): the form as Django parses
  it (``request.POST``, or the same parser for PUT/PATCH/DELETE), and the body read
  as JSON where it parses as JSON (a view reading JSON whatever the type says);
- for a body declared JSON: the body read by ``json.loads``, with floats and with
  Decimals;
- for any other body: its bytes;
- on DRF: ``request.data``.

And the converse, so that the binding is not simply "everything differs": a
faithful re-submission (the Content-Type re-spelled, fields in another order, the
CSRF token renewed, JSON keys reordered) gives the same fingerprint.
"""

from __future__ import annotations

import json
from decimal import Decimal
from io import BytesIO
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.test import RequestFactory
from django.test.client import BOUNDARY, encode_multipart
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request

from hyperid_mfa.exceptions import UnreadableBody
from hyperid_mfa.gate import fingerprint

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
NAMES = ("amount", "payee")

# --- building requests ----------------------------------------------------------------

KEYS = st.sampled_from(["amount", "payee", "memo", "csrfmiddlewaretoken", "a+b", "é"])
VALUES = st.sampled_from(["250", "9999", "Bob", "Mallory", "", "x y", "x+y", "1e2", "100.0"])
PAIRS = st.lists(st.tuples(KEYS, VALUES), max_size=4)
FAMILIES = ["form", "multipart", "json", "vnd+json", "text", "octet", "none", "garbage"]
BASE_TYPES = {
    "form": FORM,
    "multipart": MULTIPART,
    "json": "application/json",
    "vnd+json": "application/vnd.api+json",
    "text": "text/plain",
    "octet": "application/octet-stream",
    "none": "",
    "garbage": "application/x-www-form-urlencoded, text/plain",
}
JSON_NUMBERS = st.sampled_from(["250", "250.0", "2.5e2", "250.00000000000000001", "-0", "0"])


@st.composite
def spellings(draw: Any, media_type: str) -> str:
    """``media_type`` in random case, with spaces and parameters Django tolerates."""
    if not media_type:
        return ""
    cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in media_type)
    spaced = draw(st.sampled_from(["", " ", "  "])) + cased
    params = draw(st.sampled_from(["", "; charset=utf-8", ";charset=UTF-8", "; q=1"]))
    if media_type == MULTIPART:
        params += f"; boundary={BOUNDARY}"
    return spaced + params


@st.composite
def json_texts(draw: Any) -> bytes:
    """JSON object texts with the number, key order, spacing and escapes varied."""
    amount = draw(JSON_NUMBERS)
    payee = draw(st.sampled_from(['"Bob"', '"B\\u006fb"', '"Mallory"', "null", "[1]"]))
    items = [f'"amount": {amount}', f'"payee":{payee}']
    if draw(st.booleans()):
        items.append('"memo": "rent"')
    if draw(st.booleans()):
        items.append(f'"amount": {draw(JSON_NUMBERS)}')  # a repeated key
    items = draw(st.permutations(items))
    return ("{" + draw(st.sampled_from([",", ", ", " ,\n"])).join(items) + "}").encode()


@st.composite
def requests_(draw: Any) -> dict[str, Any]:
    family = draw(st.sampled_from(FAMILIES))
    pairs = draw(PAIRS)
    if family in ("json", "vnd+json") or (
        family in ("text", "octet", "none") and draw(st.booleans())
    ):
        body = draw(json_texts())
    elif family == "multipart":
        data: dict[str, list[str]] = {}
        for key, value in pairs:
            data.setdefault(key, []).append(value)
        body = encode_multipart(BOUNDARY, data)
    elif family == "form" and draw(st.booleans()):
        body = draw(json_texts())  # JSON declared as a form
    else:
        body = urlencode(pairs).encode()
    return {
        "method": draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"])),
        "query": draw(PAIRS),
        "content_type": draw(spellings(BASE_TYPES[family])),
        "body": body,
        "drf": draw(st.booleans()),
    }


def build(shape: dict[str, Any]) -> Any:
    query = urlencode(shape["query"])
    path = "/gate/function/" + (f"?{query}" if query else "")
    request = RequestFactory().generic(
        shape["method"], path, data=shape["body"], content_type=shape["content_type"]
    )
    if shape["drf"]:
        return Request(request, parsers=[JSONParser(), FormParser(), MultiPartParser()])
    return request


def fp(shape: dict[str, Any], bind: Any = None) -> str | None:
    """The fingerprint, or None where the gate answers 400 (or DRF 415): no view runs."""
    try:
        return fingerprint.compute(build(shape), bind=bind)
    except (UnreadableBody, APIException):
        return None


# --- what a view can read ------------------------------------------------------------------


def _lists(data: QueryDict, skip: str | None = None) -> dict[str, list[Any]]:
    return {key: data.getlist(key) for key in sorted(data) if key != skip}


def _json(raw: bytes, **kwargs: Any) -> Any:
    try:
        return json.loads(raw, **kwargs)
    except (ValueError, RecursionError):
        return "<not json>"


def _pick(value: Any, names: tuple[str, ...] | None) -> Any:
    """The named fields of a form reading or a JSON object; anything else whole."""
    if names is None:
        return value
    if isinstance(value, dict):
        return {name: value.get(name, "<absent>") for name in names}
    return value


def _form_reading(fields: dict[str, Any], names: tuple[str, ...] | None, **more: Any) -> Any:
    """A form as a view reads it; a form with nothing to read reads as no body."""
    picked = _pick(fields, names)
    present = {key: value for key, value in picked.items() if value != "<absent>"}
    if not present and all(value == "<not json>" for value in more.values()):
        return "<empty>"
    return {"form": picked, **more}


def readings(shape: dict[str, Any], names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """What views of every kind read from the request (each from a fresh copy)."""
    request = build(shape)
    plain = fingerprint.django_request(request)
    seen: dict[str, Any] = {
        "method": plain.method,
        "path": plain.path,
        "query": _lists(plain.GET),
    }
    if shape["drf"]:
        data = request.data
        if isinstance(data, QueryDict):
            seen["body"] = _form_reading(_lists(data, skip=fingerprint.CSRF_FIELD), names)
        else:
            seen["body"] = {"drf": _pick(data, names)} if data else "<empty>"
        return seen
    media_type = plain.content_type.lower()
    raw = plain.body
    if not raw:
        seen["body"] = "<empty>"
    elif media_type == FORM:
        form = _lists(QueryDict(raw), skip=fingerprint.CSRF_FIELD)
        seen["body"] = _form_reading(form, names, as_json=_json(raw))
    elif media_type == MULTIPART:
        form, _files = build(shape).parse_file_upload(plain.META, BytesIO(raw))
        seen["body"] = _form_reading(_lists(form, skip=fingerprint.CSRF_FIELD), names)
    elif fingerprint.is_json_media_type(media_type):
        seen["body"] = {
            "json": _pick(_json(raw), names),
            "json as Decimal": _pick(_json(raw, parse_float=Decimal), names),
        }
    else:
        seen["body"] = {"bytes": raw}
    return seen


# --- mutations: the same request spelled another way, or changed a little ------------------


@st.composite
def respelled(draw: Any, shape: dict[str, Any]) -> dict[str, Any]:
    other = dict(shape)
    # (Never DRF against plain Django: one view is one or the other.)
    change = draw(
        st.sampled_from(
            ["type-case", "type-family", "move-to-query", "repeat-key", "method", "body"]
        )
    )
    if change == "type-case":
        family = next(
            (f for f, t in BASE_TYPES.items() if t and t in shape["content_type"].lower()), "none"
        )
        other["content_type"] = draw(spellings(BASE_TYPES[family]))
    elif change == "type-family":
        other["content_type"] = draw(spellings(BASE_TYPES[draw(st.sampled_from(FAMILIES))]))
    elif change == "move-to-query":
        other["query"] = shape["query"] + draw(PAIRS)
    elif change == "repeat-key":
        other["body"] = shape["body"] + b"&amount=9999"
    elif change == "method":
        other["method"] = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]))
    else:
        other["body"] = draw(requests_())["body"]
    return other


pairs_of_requests = requests_().flatmap(lambda a: st.tuples(st.just(a), respelled(a)))
independent_pairs = st.tuples(requests_(), requests_()).map(
    lambda pair: (pair[0], dict(pair[1], drf=pair[0]["drf"]))
)

#: The review's attack: a form spelled in capitals, the approved values in the query.
REVIEWED_ATTACK = (
    {
        "method": "POST",
        "query": [("amount", "250"), ("payee", "Bob")],
        "content_type": FORM,
        "body": b"amount=250&payee=Bob",
        "drf": False,
    },
    {
        "method": "POST",
        "query": [("amount", "250"), ("payee", "Bob")],
        "content_type": "Application/X-WWW-Form-Urlencoded",
        "body": b"amount=9999&payee=Mallory",
        "drf": False,
    },
)

PROPERTY_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def check_equal_fingerprint_means_equal_readings(a, b, names):
    bind = names
    fa, fb = fp(a, bind), fp(b, bind)
    if fa is None or fa != fb:
        return
    assert readings(a, names) == readings(b, names), (a, b)


@PROPERTY_SETTINGS
@given(pairs_of_requests)
@example(REVIEWED_ATTACK)
def test_a_respelled_request_with_the_same_fingerprint_reads_the_same(pair):
    a, b = pair
    check_equal_fingerprint_means_equal_readings(a, b, None)


@PROPERTY_SETTINGS
@given(pairs_of_requests)
@example(REVIEWED_ATTACK)
def test_with_named_fields_the_same_fingerprint_means_the_same_named_values(pair):
    a, b = pair
    check_equal_fingerprint_means_equal_readings(a, b, NAMES)


@settings(max_examples=200, deadline=None)
@given(independent_pairs)
def test_unrelated_requests_with_the_same_fingerprint_read_the_same(pair):
    a, b = pair
    check_equal_fingerprint_means_equal_readings(a, b, None)
    check_equal_fingerprint_means_equal_readings(a, b, NAMES)


# --- a faithful re-submission keeps its fingerprint ------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["amount", "payee", "memo"]), VALUES), max_size=4),
    st.sampled_from(["POST", "PUT", "PATCH"]),
    st.data(),
)
def test_a_faithful_resubmission_of_a_form_keeps_its_fingerprint(pairs, method, data):
    """Another spelling of the type, other keys' order, a new CSRF token: the same."""
    keyed = sorted(pairs, key=lambda pair: pair[0])  # same order within each key
    shuffled = data.draw(st.permutations(keyed)).copy()
    # Keep each key's own values in their order; only the order between keys changes.
    by_key: dict[str, list[str]] = {}
    for key, value in keyed:
        by_key.setdefault(key, []).append(value)
    reordered = []
    for key in dict.fromkeys(k for k, _ in shuffled):
        reordered += [(key, value) for value in by_key[key]]
    first = {
        "method": method,
        "query": [("account", "1")],
        "content_type": FORM,
        "body": urlencode([*keyed, ("csrfmiddlewaretoken", "one")]).encode(),
        "drf": False,
    }
    second = dict(
        first,
        content_type=data.draw(spellings(FORM)),
        body=urlencode([*reordered, ("csrfmiddlewaretoken", "two")]).encode(),
    )
    assert fp(first) == fp(second)
    assert fp(first, NAMES) == fp(second, NAMES)


@settings(max_examples=200, deadline=None)
@given(st.permutations(['"amount": 250', '"payee": "Bob"', '"memo": "r\\u00e9nt"']), st.data())
def test_a_faithful_resubmission_of_json_keeps_its_fingerprint(items, data):
    separator = data.draw(st.sampled_from([",", ", ", " ,\n  "]))
    first = {
        "method": "POST",
        "query": [],
        "content_type": "application/json",
        "body": b'{"amount": 250, "payee": "Bob", "memo": "r\\u00e9nt"}',
        "drf": data.draw(st.booleans()),
    }
    second = dict(
        first,
        content_type=data.draw(spellings("application/json")),
        body=("{" + separator.join(items) + "}").encode(),
    )
    assert fp(first) == fp(second)


# --- examples worth naming -------------------------------------------------------------------


def shape(**kwargs: Any) -> dict[str, Any]:
    return {"method": "POST", "query": [], "content_type": FORM, "body": b"", "drf": False} | kwargs


def test_the_same_values_in_the_query_or_the_body_are_not_the_same_request():
    in_body = shape(body=b"amount=250&payee=Bob")
    in_query = shape(query=[("amount", "250"), ("payee", "Bob")], body=b"")
    assert fp(in_body, NAMES) != fp(in_query, NAMES)


def test_a_form_body_that_reads_as_json_is_bound_by_its_bytes():
    # "+" and "%2B" parse alike as a form, but not as JSON.
    plus = shape(body=b'{"payee": "x+y"}')
    encoded = shape(body=b'{"payee": "x%2By"}')
    assert fp(plus) != fp(encoded)


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: b"\xef\xbb\xbf" + text.encode(),  # UTF-8 with a BOM
        lambda text: text.encode("utf-16"),
        lambda text: text.encode("utf-32"),
    ],
)
def test_a_form_body_that_json_loads_reads_in_another_encoding_is_bound_by_its_bytes(encode):
    # json.loads(request.body) reads a BOM and UTF-16/32 where a form parse sees noise.
    plus = shape(body=encode('{"payee": "x+y"}'))
    encoded = shape(body=encode('{"payee": "x%2By"}'))
    assert fp(plus) != fp(encoded)


def test_numbers_are_bound_as_written():
    as_int = shape(content_type="application/json", body=b'{"amount": 100}')
    as_float = shape(content_type="application/json", body=b'{"amount": 100.0}')
    assert fp(as_int) != fp(as_float)


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1, "a": 2}', b'{"a": NaN}', b'{"a": Infinity}', b"\xff{}", b'{"a": 1', b"[" * 5000],
    ids=["repeated-key", "nan", "infinity", "not-utf-8", "truncated", "too-deep"],
)
def test_json_the_gate_will_not_guess_at_is_unreadable(body):
    with pytest.raises(UnreadableBody):
        fingerprint.compute(build(shape(content_type="application/json", body=body)))


def test_the_session_is_bound():
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    first, second = build(shape(body=b"a=1")), build(shape(body=b"a=1"))
    first.session = SessionStore("first-session-key")
    second.session = SessionStore("second-session-key")
    assert fingerprint.compute(first) != fingerprint.compute(second)


def test_a_gated_helper_called_with_objects_binds_the_url_not_the_objects():
    """The example bank gates a helper called with its form: the objects' text (often
    with a memory address) must not make each call's fingerprint different."""
    first, second = build(shape(body=b"amount=1")), build(shape(body=b"amount=1"))
    assert fingerprint.compute(first, args=(object(),)) == fingerprint.compute(
        second, args=(object(),)
    )


# --- an unreadable body says why ---------------------------------------------------------


def unreadable(call) -> UnreadableBody:
    with pytest.raises(UnreadableBody) as info:
        call()
    return info.value


def test_a_body_larger_than_django_reads_is_refused_saying_it_cannot_be_read(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request = RequestFactory().post("/x/", b'{"amount": "250000"}', content_type="text/plain")

    refusal = unreadable(lambda: fingerprint.read_body(request))

    assert str(refusal) == "the request body cannot be read"
    assert refusal.user_text() == "The request could not be read: the request body cannot be read"


def test_drf_bodies_it_cannot_parse_or_read_are_refused_saying_why(settings):
    malformed = Request(
        RequestFactory().post("/x/", b"{", content_type="application/json"),
        parsers=[JSONParser()],
    )
    assert str(unreadable(lambda: fingerprint.read_body(malformed))).startswith("JSON parse error")

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    too_big = Request(
        RequestFactory().post("/x/", b'{"amount": "250000"}', content_type="application/json"),
        parsers=[JSONParser()],
    )
    assert str(unreadable(lambda: fingerprint.read_body(too_big))) == (
        "the request body cannot be read"
    )


def test_a_json_body_in_another_charset_is_refused_naming_the_charset_cut_to_40():
    charset = "x" * 39 + "yz"
    request = RequestFactory().generic(
        "POST", "/x/", b"{}", CONTENT_TYPE=f"application/json; charset={charset}"
    )

    refusal = unreadable(lambda: fingerprint.read_body(request))

    assert str(refusal) == f"the body must be UTF-8, not {charset[:40]!r}"
    assert "z" not in str(refusal)


def test_json_that_is_not_strict_is_refused_saying_what_is_wrong():
    refusal = unreadable(lambda: fingerprint.strict_json(b'{"amount": 1, "amount": 2}'))

    prefix = "the request body is not strict JSON: "
    assert str(refusal).startswith(prefix)
    assert len(str(refusal)) > len(prefix)


def test_a_value_nested_deeper_than_python_recurses_is_refused_saying_so():
    value: Any = []
    for _ in range(100_000):
        value = [value]

    refusal = unreadable(lambda: fingerprint.canonical_json(value))

    assert str(refusal) == "the request body is nested too deeply"
