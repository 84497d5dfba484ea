"""Typed settings read from the environment (CONTRACT.md §3), validated at start."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from service import broker, redis_sentinel, smtp_relays
from service.domain import mail_headers
from service.domain.ip_precision import DEFAULT as DEFAULT_CONSENT_IP_PRECISION
from service.domain.ip_precision import IpPrecision
from service.domain.verp import VerpAddresses

DEFAULT_SIGNUP_RATE_LIMIT = "10/minute;100/hour"
DEFAULT_ADDRESS_RATE_LIMIT = "5/hour"
DEFAULT_METRICS_ALLOW = ("127.0.0.0/8", "::1/128")  # loopback: /metrics is never public
DEFAULT_MAIL_FROM = "Pressroom <noreply@localhost>"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TOPIC_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable service; the message says why in one line."""


def normalize_database_url(url: str) -> str:
    """Accept the URLs operators paste (``postgres://``) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True)
class Settings:
    secret_key: str
    secret_key_fallbacks: tuple[str, ...] = ()
    database_url: str = "sqlite:///instance/pressroom.db"
    database_pool_mode: str = "session"  # transaction: behind PgBouncer, no prepared statements
    redis_url: str = ""
    celery_broker_url: str = ""  # Celery's broker; empty: REDIS_URL's server (service/broker.py)
    smtp_url: str = "smtp://127.0.0.1:8025"
    base_url: str = DEFAULT_BASE_URL
    mail_from: str = DEFAULT_MAIL_FROM
    signup_rate_limit: str = DEFAULT_SIGNUP_RATE_LIMIT
    address_rate_limit: str = DEFAULT_ADDRESS_RATE_LIMIT
    send_rate: float | None = None
    dkim_private_key_file: str | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    consent_text_version: str = "2026-11-01"
    # How much of a reader's IP the consent record keeps: IPv4,IPv6 prefix bits, full or none.
    consent_ip_precision: str = DEFAULT_CONSENT_IP_PRECISION
    check_deliverability: bool = False
    list_id: str = "releases.pressroom.localhost"
    dev_mailbox_dir: str | None = None
    site_name: str = "Pressroom"
    task_queue: str = "pressroom"
    topics: tuple[str, ...] = ()
    send_lease_seconds: int = 60
    send_chains: int = 4  # send_batch chains per release, each one batch at a time
    smtp_connections: int = 32  # concurrent SMTP connections per worker process, all relays
    smtp_messages_per_connection: int = 100  # then the connection is renewed
    retry_seconds: float = 30.0
    sweep_seconds: float = 30.0
    trusted_proxy_count: int = 0
    worker_concurrency: int = 8  # tasks a worker process runs at once, each in a thread
    timezone: str = "Europe/Oslo"  # the desk's clock: schedules are typed and shown in it
    # Digests go out at DIGEST_HOUR:00 in TIMEZONE, weekly ones on DIGEST_WEEKDAY (0 is Monday).
    digest_hour: int = 8
    digest_weekday: int = 0
    # A file holding the ISO 8601 time the digest schedule takes for now, read at each sweep:
    # for rehearsals and tests (a simulated week); unset, the system clock.
    digest_clock_file: str | None = None
    bounce_address: str | None = None  # VERP: each message's envelope sender is local+code@domain
    complaint_rate_limit: float = 0.003  # a send pauses above this share of delivered
    bounce_rate_limit: float = 0.05  # ... or above this share of attempted in hard bounces
    webhook_secret: str | None = None  # the generic webhook's HMAC key; Postmark's password
    mailgun_webhook_signing_key: str | None = None
    sendgrid_webhook_public_key: str | None = None  # base64 DER, ECDSA P-256
    # Outgoing webhooks: retried until this long after the event, the first retry after
    # about WEBHOOK_BACKOFF_SECONDS, each wait doubling (at most an hour), with jitter.
    webhook_retry_seconds: float = 86400.0
    webhook_backoff_seconds: float = 10.0
    # Outgoing webhooks may go to loopback, private and link-local addresses (service/domain/
    # webhook_addresses.py); off, they are refused at registration and at connection.
    webhook_allow_private: bool = False
    ses_sns_topic_arns: tuple[str, ...] = ()
    dns_resolver: str | None = None  # host:port for the deliverability check; unset: the system's
    metrics_allow: tuple[str, ...] = DEFAULT_METRICS_ALLOW  # networks that may read /metrics
    worker_metrics_port: int = 0  # a worker serves its metrics on this port; 0: it does not
    log_format: str = "json"  # service/logs.py: json (one object a line) or console
    debug: bool = False
    testing: bool = False

    @classmethod
    def from_env(
        cls, env: os._Environ[str] | dict[str, str] | None = None, **overrides: Any
    ) -> Settings:
        env = os.environ if env is None else env
        debug = _flag(env.get("FLASK_DEBUG")) or _flag(env.get("PRESSROOM_DEBUG"))
        testing = _flag(env.get("PRESSROOM_TESTING"))
        values: dict[str, Any] = {
            "secret_key": env.get("SECRET_KEY", ""),
            "secret_key_fallbacks": tuple(
                k.strip() for k in env.get("SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
            ),
            "database_url": env.get("DATABASE_URL", "sqlite:///instance/pressroom.db"),
            "database_pool_mode": env.get("DATABASE_POOL_MODE", "session").strip().lower()
            or "session",
            "redis_url": redis_url_from_env(env),
            "celery_broker_url": env.get("CELERY_BROKER_URL", "").strip(),
            "smtp_url": env.get("SMTP_URL", "smtp://127.0.0.1:8025"),
            "base_url": env.get("BASE_URL", DEFAULT_BASE_URL),
            "mail_from": env.get("MAIL_FROM", DEFAULT_MAIL_FROM),
            "signup_rate_limit": env.get("SIGNUP_RATE_LIMIT", DEFAULT_SIGNUP_RATE_LIMIT),
            "address_rate_limit": env.get("ADDRESS_RATE_LIMIT", DEFAULT_ADDRESS_RATE_LIMIT),
            "send_rate": _optional_float("SEND_RATE", env.get("SEND_RATE")),
            "dkim_private_key_file": env.get("DKIM_PRIVATE_KEY_FILE") or None,
            "dkim_selector": env.get("DKIM_SELECTOR") or None,
            "dkim_domain": env.get("DKIM_DOMAIN") or None,
            "consent_text_version": env.get("CONSENT_TEXT_VERSION", "2026-11-01"),
            "consent_ip_precision": env.get("CONSENT_IP_PRECISION", "").strip()
            or DEFAULT_CONSENT_IP_PRECISION,
            "check_deliverability": _flag(env.get("EMAIL_CHECK_DELIVERABILITY")),
            "list_id": env.get("LIST_ID", "releases.pressroom.localhost"),
            "dev_mailbox_dir": env.get("PRESSROOM_DEV_MAILBOX") or None,
            "site_name": env.get("SITE_NAME", "Pressroom"),
            "task_queue": env.get("CELERY_QUEUE", "pressroom"),
            "topics": tuple(
                t.strip().lower() for t in env.get("TOPICS", "").split(",") if t.strip()
            ),
            "send_lease_seconds": _int("SEND_LEASE_SECONDS", env.get("SEND_LEASE_SECONDS")) or 60,
            "send_chains": _int("SEND_CHAINS", env.get("SEND_CHAINS"), default=4),
            "smtp_connections": _int("SMTP_CONNECTIONS", env.get("SMTP_CONNECTIONS"), default=32),
            "smtp_messages_per_connection": _int(
                "SMTP_MESSAGES_PER_CONNECTION",
                env.get("SMTP_MESSAGES_PER_CONNECTION"),
                default=100,
            ),
            "retry_seconds": _optional_float("SMTP_RETRY_SECONDS", env.get("SMTP_RETRY_SECONDS"))
            or 30.0,
            "sweep_seconds": _optional_float("SWEEP_SECONDS", env.get("SWEEP_SECONDS")) or 30.0,
            "trusted_proxy_count": _int("TRUSTED_PROXY_COUNT", env.get("TRUSTED_PROXY_COUNT")),
            "worker_concurrency": _int(
                "WORKER_CONCURRENCY", env.get("WORKER_CONCURRENCY"), default=8
            ),
            "timezone": env.get("TIMEZONE", "Europe/Oslo").strip() or "Europe/Oslo",
            "digest_hour": _hour("DIGEST_HOUR", env.get("DIGEST_HOUR"), default=8),
            "digest_weekday": _weekday("DIGEST_WEEKDAY", env.get("DIGEST_WEEKDAY")),
            "digest_clock_file": env.get("DIGEST_CLOCK_FILE", "").strip() or None,
            "bounce_address": env.get("BOUNCE_ADDRESS", "").strip() or None,
            "complaint_rate_limit": _rate(
                "COMPLAINT_RATE_LIMIT", env.get("COMPLAINT_RATE_LIMIT"), default=0.003
            ),
            "bounce_rate_limit": _rate(
                "BOUNCE_RATE_LIMIT", env.get("BOUNCE_RATE_LIMIT"), default=0.05
            ),
            "webhook_secret": env.get("WEBHOOK_SECRET", "").strip() or None,
            "mailgun_webhook_signing_key": env.get("MAILGUN_WEBHOOK_SIGNING_KEY", "").strip()
            or None,
            "sendgrid_webhook_public_key": env.get("SENDGRID_WEBHOOK_PUBLIC_KEY", "").strip()
            or None,
            "webhook_retry_seconds": _optional_float(
                "WEBHOOK_RETRY_SECONDS", env.get("WEBHOOK_RETRY_SECONDS")
            )
            or 86400.0,
            "webhook_backoff_seconds": _optional_float(
                "WEBHOOK_BACKOFF_SECONDS", env.get("WEBHOOK_BACKOFF_SECONDS")
            )
            or 10.0,
            "webhook_allow_private": _flag(env.get("WEBHOOK_ALLOW_PRIVATE")),
            "dns_resolver": env.get("DNS_RESOLVER", "").strip() or None,
            "ses_sns_topic_arns": tuple(
                a.strip() for a in env.get("SES_SNS_TOPIC_ARNS", "").split(",") if a.strip()
            ),
            "log_format": env.get("LOG_FORMAT", "json").strip().lower() or "json",
            "worker_metrics_port": _int("WORKER_METRICS_PORT", env.get("WORKER_METRICS_PORT")),
            "metrics_allow": tuple(
                n.strip()
                for n in env.get("METRICS_ALLOW", ",".join(DEFAULT_METRICS_ALLOW)).split(",")
                if n.strip()
            ),
            "debug": debug,
            "testing": testing,
        }
        values.update(overrides)
        if not values["secret_key"] and (values["debug"] or values["testing"]):
            values["secret_key"] = secrets.token_urlsafe(32)
        settings = cls(**values)
        settings.validate()
        return settings

    def replace(self, **changes: Any) -> Settings:
        current = {f.name: getattr(self, f.name) for f in fields(self)}
        current.update(changes)
        settings = Settings(**current)
        settings.validate()
        return settings

    @property
    def sqlalchemy_url(self) -> str:
        return normalize_database_url(self.database_url)

    @property
    def prepared_statements(self) -> bool:
        """Whether psycopg may prepare statements on the server: not behind a pooler in
        transaction mode, where the next transaction can run on another server connection
        (PgBouncer's docs, "Features": protocol-level prepared statements)."""
        return self.database_pool_mode != "transaction"

    def validate(self) -> None:
        if not self.secret_key:
            raise ConfigError(
                "SECRET_KEY is not set: set it to a long random string "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        if not self.debug and not self.testing and len(self.secret_key) < 16:
            raise ConfigError("SECRET_KEY is too short: use at least 16 random characters.")
        if not self.redis_url and not self.debug:
            raise ConfigError(
                "REDIS_URL is not set: point it at your Redis (`make run` starts one for you)."
            )
        try:
            redis_sentinel.parse(self.redis_url)
        except redis_sentinel.SentinelUrlError as error:
            raise ConfigError(f"REDIS_URL: {error}") from None
        if self.celery_broker_url:
            try:
                broker.check_broker_url(self.celery_broker_url)
            except broker.BrokerUrlError as error:
                raise ConfigError(f"CELERY_BROKER_URL {error}.") from None
        base = urlsplit(self.base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ConfigError(f"BASE_URL must be an absolute http(s) URL, not {self.base_url!r}.")
        self._validate_mail_identity()
        try:
            smtp_relays.parse_relays(self.smtp_url)
        except smtp_relays.RelayUrlError as error:
            raise ConfigError(f"SMTP_URL {error}.") from None
        dkim = (self.dkim_private_key_file, self.dkim_selector, self.dkim_domain)
        if any(dkim) and not all(dkim):
            raise ConfigError(
                "DKIM needs all three of DKIM_PRIVATE_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN."
            )
        if self.dkim_private_key_file and not Path(self.dkim_private_key_file).is_file():
            raise ConfigError(
                f"DKIM_PRIVATE_KEY_FILE {self.dkim_private_key_file!r} is not a file."
            )
        bad_topics = [t for t in self.topics if not TOPIC_PATTERN.match(t)]
        if bad_topics:
            raise ConfigError(
                f"TOPICS holds {bad_topics[0]!r}: topics are short names of a-z, 0-9 and hyphens."
            )
        for name, value in (
            ("SIGNUP_RATE_LIMIT", self.signup_rate_limit),
            ("ADDRESS_RATE_LIMIT", self.address_rate_limit),
        ):
            try:
                if not parse_many(value):
                    raise ValueError(value)
            except ValueError:
                raise ConfigError(
                    f"{name} must look like '10/minute;100/hour', not {value!r}."
                ) from None
        try:
            make_url(self.sqlalchemy_url)
        except ArgumentError:
            raise ConfigError(
                "DATABASE_URL is not a database URL (sqlite:///… or postgresql://…)."
            ) from None
        self._validate_pool_mode()
        for name, value in (
            ("WORKER_CONCURRENCY", self.worker_concurrency),
            ("SEND_CHAINS", self.send_chains),
            ("SMTP_CONNECTIONS", self.smtp_connections),
            ("SMTP_MESSAGES_PER_CONNECTION", self.smtp_messages_per_connection),
        ):
            if value < 1:
                raise ConfigError(f"{name} must be a whole number of at least 1, not {value}.")
        if self.bounce_address is not None:
            try:
                VerpAddresses(self.bounce_address, [self.secret_key])
                mail_headers.check_addr_spec(self.bounce_address)
            except (ValueError, mail_headers.HeaderError):
                raise ConfigError(
                    "BOUNCE_ADDRESS must be a plain address without '+', like "
                    f"bounces@press.example, not {self.bounce_address!r}."
                ) from None
        if self.dns_resolver is not None:
            from service.dns_lookup import parse_resolver

            try:
                parse_resolver(self.dns_resolver)
            except ValueError:
                raise ConfigError(
                    f"DNS_RESOLVER must be host:port, like 127.0.0.1:5353, not "
                    f"{self.dns_resolver!r}."
                ) from None
        if self.log_format not in ("json", "console"):
            raise ConfigError(f"LOG_FORMAT must be json or console, not {self.log_format!r}.")
        if not 0 <= self.worker_metrics_port <= 65535:
            raise ConfigError(
                f"WORKER_METRICS_PORT must be a TCP port (1 to 65535), or 0 for none, not "
                f"{self.worker_metrics_port}."
            )
        for network in self.metrics_allow:
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ConfigError(
                    f"METRICS_ALLOW must be networks such as 10.0.0.0/8, comma-separated, not "
                    f"{network!r}."
                ) from None
        if self.webhook_secret is not None and len(self.webhook_secret) < 16:
            raise ConfigError("WEBHOOK_SECRET is too short: use at least 16 random characters.")
        for name, share in (
            ("COMPLAINT_RATE_LIMIT", self.complaint_rate_limit),
            ("BOUNCE_RATE_LIMIT", self.bounce_rate_limit),
        ):
            if not 0 < share <= 1:
                raise ConfigError(f"{name} must be a share above 0 and at most 1, not {share}.")
        for name, seconds in (
            ("WEBHOOK_RETRY_SECONDS", self.webhook_retry_seconds),
            ("WEBHOOK_BACKOFF_SECONDS", self.webhook_backoff_seconds),
        ):
            if not seconds > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {seconds}.")
        try:
            IpPrecision.parse(self.consent_ip_precision)
        except ValueError as error:
            raise ConfigError(
                f"CONSENT_IP_PRECISION must be {error}, not {self.consent_ip_precision!r}."
            ) from None
        if self.send_rate is not None and self.send_rate <= 0:
            raise ConfigError("SEND_RATE must be a positive number of messages per second.")
        if not 0 <= self.digest_hour <= 23:
            raise ConfigError(f"DIGEST_HOUR must be an hour from 0 to 23, not {self.digest_hour}.")
        if not 0 <= self.digest_weekday <= 6:
            raise ConfigError(
                f"DIGEST_WEEKDAY must be a day of the week, not {self.digest_weekday}."
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"TIMEZONE must be an IANA time zone like Europe/Oslo, not {self.timezone!r}."
            ) from None

    def _validate_pool_mode(self) -> None:
        if self.database_pool_mode not in ("session", "transaction"):
            raise ConfigError(
                "DATABASE_POOL_MODE must be session (a direct connection, or PgBouncer's "
                "session pooling) or transaction (PgBouncer's transaction pooling), not "
                f"{self.database_pool_mode!r}."
            )
        if self.database_pool_mode == "transaction" and (
            make_url(self.sqlalchemy_url).get_backend_name() != "postgresql"
        ):
            raise ConfigError(
                "DATABASE_POOL_MODE=transaction is for PostgreSQL behind PgBouncer; "
                "DATABASE_URL names another database."
            )

    def _validate_mail_identity(self) -> None:
        """MAIL_FROM, SITE_NAME, LIST_ID and BASE_URL go into every mail's headers: each must
        be writable by mail_headers as it stands (no control characters, a plain address)."""
        checks: list[tuple[str, str, Callable[[], object]]] = [
            ("MAIL_FROM", "'Name <noreply@example.org>' or a plain address",
             lambda: mail_headers.parse_mailbox(self.mail_from)),
            ("SITE_NAME", "a short name without control characters",
             lambda: self.site_name.strip() or _fail("it is empty")),
            ("SITE_NAME", "a short name without control characters",
             lambda: mail_headers.list_id("List-Id", self.site_name, "a.example")),
            ("LIST_ID", "like releases.example.org",
             lambda: mail_headers.list_id("List-Id", "", self.list_id)),
            ("BASE_URL", "a URL of plain ASCII characters",
             lambda: mail_headers.uris("List-Unsubscribe", f"{self.public_base_url}/x")),
        ]  # fmt: skip
        for name, shape, check in checks:
            try:
                check()
            except mail_headers.HeaderError as error:
                raise ConfigError(f"{name} must be {shape}: {error}.") from None

    @functools.cached_property
    def relays(self) -> tuple[smtp_relays.SmtpSettings, ...]:
        """SMTP_URL's relays, in order (checked at start by validate); read once, as every
        task of a worker asks for them."""
        return smtp_relays.parse_relays(self.smtp_url)

    @functools.cached_property
    def ip_precision(self) -> IpPrecision:
        """CONSENT_IP_PRECISION, read (checked at start by validate)."""
        return IpPrecision.parse(self.consent_ip_precision)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def public_base_url(self) -> str:
        return self.base_url.rstrip("/")


def _fail(reason: str) -> None:
    raise mail_headers.HeaderError(reason)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _rate(name: str, value: str | None, *, default: float) -> float:
    """A share of messages: 0.003 or 0.3%."""
    if value is None or not value.strip():
        return default
    text = value.strip()
    percent = text.endswith("%")
    number = _optional_float(name, text.rstrip("%").strip())
    assert number is not None
    return number / 100 if percent else number


def redis_url_from_env(env: os._Environ[str] | dict[str, str]) -> str:
    """REDIS_URL, or the Sentinel URL that REDIS_SENTINELS and REDIS_SENTINEL_MASTER spell."""
    url = env.get("REDIS_URL", "").strip()
    sentinels = env.get("REDIS_SENTINELS", "").strip()
    master = env.get("REDIS_SENTINEL_MASTER", "").strip()
    if not sentinels and not master:
        return url
    if not sentinels or not master:
        raise ConfigError(
            "REDIS_SENTINELS (host:port,host:port) and REDIS_SENTINEL_MASTER (the name the "
            "sentinels monitor) go together: set both, or REDIS_URL=redis+sentinel://... alone."
        )
    if url:
        raise ConfigError(
            "REDIS_URL and REDIS_SENTINELS are both set: name Redis once, either way."
        )
    return redis_sentinel.url_from_parts(sentinels, master)


def _optional_float(name: str, value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}.") from None


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _hour(name: str, value: str | None, *, default: int) -> int:
    """An hour of the day: "8", "08" or "08:00" (digests go out on the hour)."""
    text = (value or "").strip()
    if not text:
        return default
    hours, _, minutes = text.partition(":")
    if hours.isdigit() and (not minutes or minutes == "00"):
        return int(hours)
    raise ConfigError(f"{name} must be an hour such as 8 or 08:00, not {value!r}.")


def _weekday(name: str, value: str | None) -> int:
    """A day of the week as Python counts it (0 is Monday): its English name (any case), or
    its ISO 8601 number (1 is Monday, 7 Sunday). Unset: Monday."""
    text = (value or "").strip().lower()
    if not text:
        return 0
    if text in WEEKDAYS:
        return WEEKDAYS.index(text)
    if text.isdigit() and 1 <= int(text) <= 7:
        return int(text) - 1
    raise ConfigError(
        f"{name} must be a day such as monday (or its ISO number, 1 for Monday), not {value!r}."
    )


def _int(name: str, value: str | None, *, default: int = 0) -> int:
    if value is None or not value.strip():
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}.") from None


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Settings from the environment (with `overrides`), for a process starting up: a
    configuration error is one line on stderr and exit status 4, not a traceback (4 also stops
    gunicorn's master, APP_LOAD_ERROR, instead of letting it boot workers in a loop)."""
    try:
        return Settings.from_env(**(overrides or {}))
    except ConfigError as error:
        print(f"pressroom: configuration error: {error}", file=sys.stderr)
        raise SystemExit(4) from None
