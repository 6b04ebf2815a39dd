"""Signature verifiers against vectors computed here with hmac / cryptography."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.ingest.domain import signatures as sig
from services.ingest.domain.signatures import Verdict

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BODY = b'[{"eventId": 1, "subscriptionType": "contact.creation"}]'
OLD, NEW = b"old-secret", b"new-secret"


def b64_hmac(secret: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest()).decode()


def ms(when: datetime) -> str:
    return str(int(when.timestamp() * 1000))


class TestHubspot:
    uri = "https://ingest.example.com/v1/webhooks/hubspot?x=1"

    def check(self, signature: str | None, timestamp: str | None, **kw: object) -> Verdict:
        return sig.verify_hubspot_v3(
            secrets=[OLD, NEW],
            method="POST",
            uri=str(kw.get("uri", self.uri)),
            body=BODY,
            timestamp=timestamp,
            signature=signature,
            now=NOW,
            tolerance_s=300,
        )

    @pytest.mark.parametrize("secret", [OLD, NEW])
    def test_valid_with_either_rotation_secret(self, secret: bytes) -> None:
        ts = ms(NOW - timedelta(seconds=30))
        good = b64_hmac(secret, b"POST" + self.uri.encode() + BODY + ts.encode())
        assert self.check(good, ts) is Verdict.OK

    def test_invalid(self) -> None:
        ts = ms(NOW)
        bad = b64_hmac(b"other", b"POST" + self.uri.encode() + BODY + ts.encode())
        assert self.check(bad, ts) is Verdict.INVALID

    def test_body_tampering_is_invalid(self) -> None:
        ts = ms(NOW)
        good = b64_hmac(OLD, b"POST" + self.uri.encode() + BODY + b" " + ts.encode())
        assert self.check(good, ts) is Verdict.INVALID

    def test_stale_older_than_five_minutes(self) -> None:
        ts = ms(NOW - timedelta(minutes=5, seconds=1))
        good = b64_hmac(OLD, b"POST" + self.uri.encode() + BODY + ts.encode())
        assert self.check(good, ts) is Verdict.STALE

    def test_missing_headers(self) -> None:
        assert self.check(None, ms(NOW)) is Verdict.MISSING
        assert self.check("abc", None) is Verdict.MISSING

    def test_encoded_uri_characters_are_decoded_like_hubspot(self) -> None:
        ts = ms(NOW)
        signed_uri = "https://h.example/v1/webhooks/hubspot?a=b:c"
        good = b64_hmac(OLD, b"POST" + signed_uri.encode() + BODY + ts.encode())
        assert self.check(good, ts, uri="https://h.example/v1/webhooks/hubspot?a=b%3Ac") is (
            Verdict.OK
        )


class TestZendesk:
    def check(self, signature: str | None, timestamp: str | None) -> Verdict:
        return sig.verify_zendesk(
            secrets=[OLD, NEW], body=BODY, timestamp=timestamp, signature=signature,
            now=NOW, tolerance_s=300,
        )

    def test_valid_invalid_stale(self) -> None:
        ts = (NOW - timedelta(seconds=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert self.check(b64_hmac(NEW, ts.encode() + BODY), ts) is Verdict.OK
        assert self.check(b64_hmac(b"nope", ts.encode() + BODY), ts) is Verdict.INVALID
        old = (NOW - timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert self.check(b64_hmac(OLD, old.encode() + BODY), old) is Verdict.STALE
        assert self.check(None, ts) is Verdict.MISSING


class TestStandardWebhooks:
    key = b"\x01" * 24
    secret = "whsec_" + base64.b64encode(b"\x01" * 24).decode()

    def sign(self, key: bytes, msg_id: str, ts: str) -> str:
        return "v1," + b64_hmac(key, f"{msg_id}.{ts}.".encode() + BODY)

    def check(self, signature: str | None, ts: str | None, msg_id: str | None = "msg_1") -> Verdict:
        second = "whsec_" + base64.b64encode(b"k2").decode()
        keys = [sig.standard_webhook_key(self.secret), sig.standard_webhook_key(second)]
        return sig.verify_standard(
            keys=keys, body=BODY, msg_id=msg_id, timestamp=ts, signature=signature,
            now=NOW, tolerance_s=300,
        )

    def test_secret_decoding(self) -> None:
        assert sig.standard_webhook_key(self.secret) == self.key

    def test_valid_among_several_signatures(self) -> None:
        ts = str(int(NOW.timestamp()))
        header = "v1,bm9wZQ== " + self.sign(self.key, "msg_1", ts)
        assert self.check(header, ts) is Verdict.OK

    def test_second_rotation_key(self) -> None:
        ts = str(int(NOW.timestamp()))
        assert self.check(self.sign(b"k2", "msg_1", ts), ts) is Verdict.OK

    def test_invalid_when_id_differs(self) -> None:
        ts = str(int(NOW.timestamp()))
        assert self.check(self.sign(self.key, "msg_2", ts), ts) is Verdict.INVALID

    def test_stale_both_directions(self) -> None:
        for delta in (timedelta(minutes=-6), timedelta(minutes=6)):
            ts = str(int((NOW + delta).timestamp()))
            assert self.check(self.sign(self.key, "msg_1", ts), ts) is Verdict.STALE

    def test_missing(self) -> None:
        ts = str(int(NOW.timestamp()))
        assert self.check(self.sign(self.key, "msg_1", ts), ts, msg_id=None) is Verdict.MISSING


class TestSendgrid:
    def setup_method(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.other = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_b64 = base64.b64encode(der).decode()

    def sign(self, private: ec.EllipticCurvePrivateKey, ts: str) -> str:
        raw = private.sign(ts.encode() + BODY, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(raw).decode()

    def check(self, signature: str | None, ts: str | None) -> Verdict:
        pem = self.other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        keys = [sig.load_sendgrid_key(pem), sig.load_sendgrid_key(self.public_b64)]
        return sig.verify_sendgrid(
            keys=keys, body=BODY, timestamp=ts, signature=signature, now=NOW, tolerance_s=300
        )

    def test_valid_invalid_stale(self) -> None:
        ts = str(int(NOW.timestamp()))
        assert self.check(self.sign(self.private, ts), ts) is Verdict.OK
        assert self.check(self.sign(self.other, ts), ts) is Verdict.OK  # rotation key
        stranger = ec.generate_private_key(ec.SECP256R1())
        assert self.check(self.sign(stranger, ts), ts) is Verdict.INVALID
        assert self.check("not base64!!", ts) is Verdict.INVALID
        old = str(int((NOW - timedelta(minutes=10)).timestamp()))
        assert self.check(self.sign(self.private, old), old) is Verdict.STALE

    def test_signature_over_other_timestamp_is_invalid(self) -> None:
        ts = str(int(NOW.timestamp()))
        assert self.check(self.sign(self.private, ts), str(int(ts) + 1)) is Verdict.INVALID

    def test_rsa_key_refused(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        pem = rsa.generate_private_key(65537, 2048).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        with pytest.raises(ValueError, match="EC"):
            sig.load_sendgrid_key(pem)


def test_url_secret() -> None:
    assert sig.verify_url_secret(secrets=[OLD, NEW], given="new-secret") is Verdict.OK
    assert sig.verify_url_secret(secrets=[OLD, NEW], given="new-secreT") is Verdict.INVALID
    assert sig.verify_url_secret(secrets=[], given="") is Verdict.INVALID
