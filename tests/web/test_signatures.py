"""The webhook's gate, table-tested: only an exact HMAC over the exact bytes, sent recently, passes."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from bot.webhooks import MAX_BODY_BYTES, WebhookRefused, check_headers, parse, verify

SECRET = "whsec_test_secret"
NOW = 1_800_000_000.0
BODY = b'{"type": "image.completed", "payload": {}}'


def signature(body: bytes = BODY, timestamp: str = str(int(NOW)), secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_a_genuine_event_passes() -> None:
    verify(SECRET, str(int(NOW)), signature(), BODY, NOW)
    verify(SECRET, str(int(NOW) - 299), signature(timestamp=str(int(NOW) - 299)), BODY, NOW)
    verify(SECRET, str(int(NOW)), signature().upper(), BODY, NOW)  # hex case is not meaningful


@pytest.mark.parametrize(
    ("timestamp", "sig", "body", "reason"),
    [
        (str(int(NOW)), None, BODY, "unsigned"),
        (None, signature(), BODY, "unsigned"),
        (str(int(NOW)), signature(secret="another secret"), BODY, "bad_signature"),
        (str(int(NOW)), signature(), BODY + b" ", "bad_signature"),  # one byte more than was signed
        (str(int(NOW)), signature(body=BODY.replace(b"completed", b"errored")), BODY, "bad_signature"),
        (str(int(NOW) + 1), signature(), BODY, "bad_signature"),  # the timestamp is signed too
        (str(int(NOW) - 301), signature(timestamp=str(int(NOW) - 301)), BODY, "stale"),
        (str(int(NOW) + 301), signature(timestamp=str(int(NOW) + 301)), BODY, "stale"),
        ("nan", signature(timestamp="nan"), BODY, "stale"),
        ("yesterday", signature(timestamp="yesterday"), BODY, "bad_timestamp"),
        (str(int(NOW)), "sha256=" + signature(), BODY, "bad_signature"),
    ],
)
def test_refusals(timestamp: str | None, sig: str | None, body: bytes, reason: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        verify(SECRET, timestamp, sig, body, NOW)
    assert refused.value.reason == reason
    assert 400 <= refused.value.status < 500


def test_an_oversized_body_is_refused_before_hashing() -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    with pytest.raises(WebhookRefused) as refused:
        verify(SECRET, str(int(NOW)), signature(big), big, NOW)
    assert refused.value.status == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"payload": {}}',
        b'{"type": "image.completed"}',
        b'{"type": "image.completed", "payload": {"id": "cm1"}}',
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WebhookRefused) as refused:
        parse(body)
    assert refused.value.reason == "malformed"


def test_other_event_types_parse_without_a_project() -> None:
    event = parse(json.dumps({"type": "video.completed", "payload": {"anything": 1}}).encode())
    assert event.type == "video.completed"
    assert event.project is None


@pytest.mark.parametrize(
    ("timestamp", "sig", "reason"),
    [
        (None, "ab" * 32, "unsigned"),
        (str(int(NOW)), None, "unsigned"),
        (str(int(NOW)), "", "unsigned"),
        ("yesterday", "ab" * 32, "bad_timestamp"),
        (str(int(NOW) - 301), "ab" * 32, "stale"),
        ("inf", "ab" * 32, "stale"),
    ],
)
def test_headers_are_judged_without_the_body_or_the_secret(timestamp: str | None, sig: str | None, reason: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        check_headers(timestamp, sig, NOW)
    assert refused.value.reason == reason


def test_fresh_headers_pass_before_the_signature_can_be_checked() -> None:
    check_headers(str(int(NOW) - 299), "not checked here", NOW)  # the HMAC needs the body: verify() does it
