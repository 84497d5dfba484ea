"""The SMTP transport against a real aiosmtpd server: plain, STARTTLS, SMTPS, AUTH, refusals."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from service.domain.emails import RenderedEmail, compose
from service.mailsink import MailSink, SinkHandler
from service.sending import transport as smtp_module
from service.sending.transport import (
    PermanentSendError,
    SmtpMailer,
    SmtpSettings,
    TransientSendError,
)


def message(to: str = "reader@mail.example"):  # type: ignore[no-untyped-def]
    return compose(
        RenderedEmail("Hei", "Hei på deg\n", "<p>Hei på deg</p>"),
        sender="Pressroom <noreply@press.example>",
        recipient=to,
        date=datetime(2026, 11, 25, tzinfo=UTC),
    )


class Authenticator:
    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login,
            auth_data.password,
        ) == (b"press", b"p@ss:w/rd")
        return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trust(ca: trustme.CA, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the client trust the test CA the way an operator would: SSL_CERT_FILE."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def plain_sink() -> Iterator[MailSink]:
    sink = MailSink(SinkHandler()).start()
    yield sink
    sink.stop()


def test_url_parsing_decodes_credentials_and_hides_them() -> None:
    settings = SmtpSettings.from_url("smtp+starttls://press:p%40ss%3Aw%2Frd@mail.example:2525")
    assert (settings.scheme, settings.host, settings.port) == (
        "smtp+starttls",
        "mail.example",
        2525,
    )
    assert (settings.username, settings.password) == ("press", "p@ss:w/rd")
    assert "p@ss" not in repr(settings)
    assert SmtpSettings.from_url("smtps://mail.example").port == 465
    assert SmtpSettings.from_url("smtp+starttls://mail.example").port == 587
    with pytest.raises(ValueError):
        SmtpSettings.from_url("http://mail.example")


def test_plain_smtp_delivers_and_reuses_one_connection(plain_sink: MailSink) -> None:
    with SmtpMailer(SmtpSettings.from_url(plain_sink.url)) as mailer:
        mailer.send(message("a@mail.example"))
        first_connection = mailer._connection
        mailer.send(message("b@mail.example"))
        assert mailer._connection is first_connection
    received = plain_sink.handler.wait_for(2)
    assert [m.recipients for m in received] == [("a@mail.example",), ("b@mail.example",)]


@pytest.mark.parametrize(
    "mail_from",
    [
        "Acme, Inc. <noreply@press.example>",
        "a <b> c <noreply@press.example>",
        "Ærlig: nyheter <noreply@press.example>",
        '"Acme, Inc." <noreply@press.example>',
        "noreply@press.example",
    ],
)
def test_the_envelope_sender_is_the_address_of_the_from_header(
    plain_sink: MailSink, mail_from: str
) -> None:
    # email.utils.parseaddr read "Acme, Inc. <noreply@...>" as the address "Acme".
    plain_sink.handler.clear()
    with SmtpMailer(SmtpSettings.from_url(plain_sink.url)) as mailer:
        mailer.send_raw(mail_from, ["a@mail.example"], message().data)
    (received,) = plain_sink.handler.wait_for(1)
    plain_sink.handler.clear()  # the sink is shared by this module's tests
    assert received.mail_from == "noreply@press.example"


def test_a_kept_connection_the_server_dropped_is_renewed_once() -> None:
    first = MailSink(SinkHandler()).start()
    mailer = SmtpMailer(SmtpSettings.from_url(first.url))
    mailer.send(message("a@mail.example"))
    first.stop()  # the server goes away, and with it the connection the mailer keeps
    restarted = MailSink(SinkHandler(), port=first.port).start()
    try:
        mailer.send(message("b@mail.example"))
        assert [m.recipients for m in restarted.handler.wait_for(1)] == [("b@mail.example",)]
    finally:
        mailer.close()
        restarted.stop()
    assert [m.recipients for m in first.handler.received] == [("a@mail.example",)]


def test_starttls_with_auth(ca: trustme.CA, trust: None) -> None:
    sink = MailSink(
        SinkHandler(),
        tls_context=server_context(ca),
        require_starttls=True,
        authenticator=Authenticator(),
        auth_required=True,
    ).start()
    try:
        url = f"smtp+starttls://press:p%40ss%3Aw%2Frd@127.0.0.1:{sink.port}"
        with SmtpMailer(SmtpSettings.from_url(url)) as mailer:
            mailer.send(message())
        assert sink.handler.wait_for(1)[0].recipients == ("reader@mail.example",)

        wrong = f"smtp+starttls://press:wrong@127.0.0.1:{sink.port}"
        with pytest.raises(PermanentSendError), SmtpMailer(SmtpSettings.from_url(wrong)) as mailer:
            mailer.send(message())
    finally:
        sink.stop()


def test_smtps(ca: trustme.CA, trust: None) -> None:
    sink = MailSink(SinkHandler(), ssl_context=server_context(ca)).start()
    try:
        with SmtpMailer(SmtpSettings.from_url(f"smtps://127.0.0.1:{sink.port}")) as mailer:
            mailer.send(message())
        assert len(sink.handler.wait_for(1)) == 1
    finally:
        sink.stop()


class RefusingHandler(SinkHandler):
    def __init__(self, answer: str) -> None:
        super().__init__()
        self.answer = answer

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        return self.answer


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ("451 4.3.0 Try again later", TransientSendError),
        ("550 5.1.1 No such user", PermanentSendError),
    ],
)
def test_refusals_are_told_apart(answer: str, error: type[Exception]) -> None:
    sink = MailSink(RefusingHandler(answer)).start()
    try:
        with pytest.raises(error), SmtpMailer(SmtpSettings.from_url(sink.url)) as mailer:
            mailer.send(message())
    finally:
        sink.stop()


def test_nobody_listening_is_transient() -> None:
    from service.embedded_redis import free_port

    with (
        pytest.raises(TransientSendError),
        SmtpMailer(SmtpSettings.from_url(f"smtp://127.0.0.1:{free_port()}")) as mailer,
    ):
        mailer.send(message())


def test_settings_the_server_cannot_meet_are_permanent_and_systemic(
    plain_sink: MailSink, ca: trustme.CA
) -> None:
    """STARTTLS asked of a server that offers none, or a certificate that does not verify:
    retrying changes nothing, so the send pauses with the reason instead of waiting forever."""
    no_starttls = SmtpSettings.from_url(f"smtp+starttls://127.0.0.1:{plain_sink.port}")
    with pytest.raises(PermanentSendError) as refused, SmtpMailer(no_starttls) as mailer:
        mailer.send(message())
    assert refused.value.systemic and "SMTPNotSupportedError" in str(refused.value)
    tls_sink = MailSink(SinkHandler(), ssl_context=server_context(ca)).start()
    smtp_module._tls_context.cache_clear()  # made once per process: forget an earlier trust
    try:  # no `trust` fixture: the test CA is unknown to the client
        untrusted = SmtpSettings.from_url(f"smtps://127.0.0.1:{tls_sink.port}")
        with pytest.raises(PermanentSendError) as refused, SmtpMailer(untrusted) as mailer:
            mailer.send(message())
        assert refused.value.systemic and "SSLCertVerificationError" in str(refused.value)
    finally:
        tls_sink.stop()
        smtp_module._tls_context.cache_clear()
