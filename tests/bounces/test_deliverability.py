"""The deliverability check against a local DNS server (dnslib) that holds the records each
case needs: SPF, DKIM, DMARC, MX and https, each pass, warn or fail with what to publish."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient

from service.dns_lookup import lookup_via
from service.domain.deliverability import Identity, Level, check
from service.domain.header_test import SUBJECT
from service.mailsink import MailSink
from tests.bounces.dns_server import Zone, dns_server
from tests.conftest import csrf_token
from tests.helpers import BIN, ROOT, clean_env, settings_changed

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()
GOOD: Zone = {
    ("press.example", "TXT"): ["v=spf1 include:_spf.relay.example -all"],
    ("bounce.press.example", "TXT"): ["v=spf1 include:_spf.relay.example ~all"],
    ("bounce.press.example", "MX"): ["10 mx.press.example"],
    ("pr1._domainkey.press.example", "TXT"): [f"v=DKIM1; k=rsa; p={PUBLIC}"],
    ("_dmarc.press.example", "TXT"): ["v=DMARC1; p=quarantine; rua=mailto:d@press.example"],
}
IDENTITY = Identity(
    from_domain="press.example",
    bounce_domain="bounce.press.example",
    base_url="https://press.example",
    dkim_selector="pr1",
    dkim_domain="press.example",
    dkim_private_key=PEM,
)


def levels(zone: Zone, identity: Identity = IDENTITY) -> dict[str, Level]:
    with dns_server(zone) as resolver:
        return {f.check: f.level for f in check(identity, lookup_via(resolver))}


def test_a_site_with_every_record_in_place_passes_every_check() -> None:
    assert levels(GOOD) == {
        "SPF press.example": Level.PASS,
        "SPF bounce.press.example": Level.PASS,
        "DKIM": Level.PASS,
        "DMARC": Level.PASS,
        "MX bounce.press.example": Level.PASS,
        "HTTPS": Level.PASS,
    }


@pytest.mark.parametrize(
    ("change", "name", "level"),
    [
        ({("press.example", "TXT"): ["v=spf1 +all"]}, "SPF press.example", Level.FAIL),
        ({("press.example", "TXT"): ["v=spf1 a", "v=spf1 mx"]}, "SPF press.example", Level.FAIL),
        ({("press.example", "TXT"): ["v=spf1 a ?all"]}, "SPF press.example", Level.WARN),
        ({("bounce.press.example", "TXT"): []}, "SPF bounce.press.example", Level.FAIL),
        ({("pr1._domainkey.press.example", "TXT"): []}, "DKIM", Level.FAIL),
        (
            {("pr1._domainkey.press.example", "TXT"): ["v=DKIM1; k=rsa; p=MIIBIjANBgkqh"]},
            "DKIM",
            Level.FAIL,
        ),
        ({("_dmarc.press.example", "TXT"): []}, "DMARC", Level.FAIL),
        ({("bounce.press.example", "MX"): []}, "MX bounce.press.example", Level.FAIL),
    ],
    ids=["plus-all", "two-spf", "neutral", "no-bounce-spf", "no-dkim", "other-key", "no-dmarc",
         "no-mx"],
)  # fmt: skip
def test_each_missing_or_wrong_record_is_named(change: Zone, name: str, level: Level) -> None:
    assert levels({**GOOD, **change})[name] is level


def test_dkim_signing_as_another_domain_is_not_aligned_and_http_fails() -> None:
    identity = Identity(
        from_domain="press.example",
        bounce_domain=None,
        base_url="http://press.example",
        dkim_selector="pr1",
        dkim_domain="relay.example",
        dkim_private_key=PEM,
    )
    zone = {**GOOD, ("pr1._domainkey.relay.example", "TXT"): [f"v=DKIM1; p={PUBLIC}"]}
    with dns_server(zone) as resolver:
        findings = {f.check: f for f in check(identity, lookup_via(resolver))}
    assert findings["DKIM"].level is Level.PASS
    assert findings["DMARC"].level is Level.FAIL
    assert "DKIM_DOMAIN=press.example" in findings["DMARC"].publish
    assert findings["HTTPS"].level is Level.FAIL


def test_the_command_prints_a_line_a_check_and_fails_when_one_does(tmp_path: Path) -> None:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(PEM)
    env = clean_env(
        SECRET_KEY="k" * 32,
        REDIS_URL="redis://127.0.0.1:1/0",
        MAIL_FROM="Pressroom <noreply@press.example>",
        BOUNCE_ADDRESS="bounces@bounce.press.example",
        BASE_URL="https://press.example",
        DKIM_PRIVATE_KEY_FILE=str(key_file),
        DKIM_SELECTOR="pr1",
        DKIM_DOMAIN="press.example",
        DATABASE_URL=f"sqlite:///{tmp_path / 'p.db'}",
    )
    command = [str(BIN / "flask"), "--app", "service", "deliverability", "check"]
    for zone, code in ((GOOD, 0), ({**GOOD, ("_dmarc.press.example", "TXT"): []}, 1)):
        with dns_server(zone) as resolver:
            done = subprocess.run(
                command, env={**env, "DNS_RESOLVER": resolver}, cwd=ROOT, capture_output=True,
                timeout=120,
            )  # fmt: skip
        out = done.stdout.decode()
        assert done.returncode == code, out + done.stderr.decode()
        assert out.count("\n") >= 6 and "DMARC" in out
    assert "publish: TXT _dmarc.press.example" in out


def test_the_desk_page_shows_the_checks_and_sends_a_test(app: Flask, desk: FlaskClient) -> None:
    with dns_server(GOOD) as resolver, settings_changed(app, dns_resolver=resolver):
        page = desk.get("/admin/deliverability")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "SPF press.example" in html and "v=spf1 include:_spf.relay.example -all" in html
    assert 'class="finding-fail"' in html  # no DKIM key set in the test app


def test_send_me_a_test_lists_the_messages_own_headers_as_they_left(
    app: Flask, desk: FlaskClient, worker: None, sink: MailSink
) -> None:
    token = csrf_token(desk.get("/admin/suppressions").get_data(as_text=True))
    answer = desk.post("/admin/deliverability/test", data={"csrf_token": token})
    assert answer.status_code == 303
    [mail] = sink.handler.wait_for(1)
    message = mail.message
    assert message["Subject"] == SUBJECT
    assert mail.mail_from == "bounces@press.example"  # BOUNCE_ADDRESS, the Return-Path
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Message-ID: {message['Message-ID']}" in text
    assert f"Feedback-ID: {message['Feedback-ID']}" in text
    assert "Envelope sender (the receiver's Return-Path): bounces@press.example" in text
