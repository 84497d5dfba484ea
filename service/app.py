"""The composition root: create_app builds the Flask app from Settings and binds the web, the
CLI, the database and the task door (service/dispatch.py) to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service import app_state, broker, dispatch, logs, redis_sentinel, webhook_bell
from service.config import ConfigError, Settings, load_settings
from service.db import Database
from service.domain.addresses import display_address
from service.domain.emails import EmailRenderer
from service.domain.mail_site import Dkim
from service.domain.tokens import TokenSigner
from service.extensions import babel, csrf, migrate, select_locale
from service.locales import PRIMARY_LANGUAGE
from service.redis_url import redis_url_or_embedded

MAX_REQUEST_BYTES = 64 * 1024
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Settings | dict[str, Any] | None = None) -> Flask:
    """Build the app from a Settings object, or from the environment with optional overrides."""
    settings = config if isinstance(config, Settings) else load_settings(config)
    if not settings.testing and not logs.configured():  # once a process; tests keep pytest's
        logs.configure(settings.log_format)
    # Named for the package, as before: where templates and static files are, the logger's name.
    app = Flask("service", instance_path=str(Path.cwd() / "instance"))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SECRET_KEY_FALLBACKS=list(settings.secret_key_fallbacks),
        TESTING=settings.testing,
        DEBUG=settings.debug,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        BABEL_DEFAULT_LOCALE=PRIMARY_LANGUAGE,
        BABEL_DEFAULT_TIMEZONE=settings.timezone,
        RATELIMIT_STRATEGY="moving-window",
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_KEY_PREFIX="pressroom-limit",
        JSON_SORT_KEYS=False,
    )
    redis_url = redis_url_or_embedded(settings)
    app.config["RATELIMIT_STORAGE_URI"], app.config["RATELIMIT_STORAGE_OPTIONS"] = (
        redis_sentinel.limiter_storage(redis_url)
    )
    if settings.trusted_proxy_count:
        count = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]

    app_state.install(
        app,
        settings=settings,
        redis_url=redis_url,
        broker_url=broker.broker_url(settings.celery_broker_url, redis_url),
        database=Database(
            settings.sqlalchemy_url, prepared_statements=settings.prepared_statements
        ),
        signer=TokenSigner(settings.secret_key, settings.secret_key_fallbacks),
        emails=EmailRenderer(),
        dkim=_dkim_key(settings),
    )
    app.add_template_filter(display_address, "address")
    dispatch.init_app(app, app_state.broker_url_of(app), settings.task_queue)
    webhook_bell.init_app(app)

    from service.web import body_limits, converters, request_ids, request_limits

    request_ids.init_app(app)  # first: every later hook's log lines carry the request's id
    converters.init_app(app)  # before any route: ids in paths are ASCII digits
    request_limits.init_app(app)  # first: an oversized request meets no other hook
    body_limits.init_app(app)  # before CSRF: its check reads the form under the view's limit
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    from service.web import l10n

    l10n.init_app(app)  # after Babel's: numbers in the page's language in every template
    import service.models  # noqa: F401  (registers the tables for migrations)
    from service.db import Base

    migrate.init_app(app, Base, directory=str(PROJECT_ROOT / "migrations"))

    from service.web import (
        api,
        archive,
        desk,
        desk_charts,
        desk_deliverability,
        desk_login,
        desk_releases,
        desk_subscribers,
        desk_suppressions,
        desk_webhooks,
        errors,
        health,
        icons,
        metrics,
        openapi,
        public,
        security,
        signup,
        webhooks,
    )

    desk_login.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(public.bp)
    app.register_blueprint(icons.bp)
    app.register_blueprint(archive.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(desk_releases.bp)
    app.register_blueprint(desk_subscribers.bp)
    app.register_blueprint(desk_suppressions.bp)
    app.register_blueprint(desk_charts.bp)
    app.register_blueprint(desk_deliverability.bp)
    app.register_blueprint(desk_webhooks.bp)
    documented = openapi.init_app(app)
    documented.register_blueprint(api.bp)
    documented.register_blueprint(webhooks.bp)
    errors.init_app(app)  # after flask-smorest's: our error answers are the contract
    signup.limit_signups(app)
    desk.limit_logins(app)
    security.init_app(app)
    metrics.init_app(app)
    if settings.dev_mailbox_dir:
        from service.web import dev

        app.register_blueprint(dev.bp)
    from service.cli import commands

    commands.init_app(app)
    return app


def _dkim_key(settings: Settings) -> Dkim | None:
    if not settings.dkim_private_key_file:
        return None
    key = Path(settings.dkim_private_key_file).read_bytes()
    if b"PRIVATE KEY-----" not in key:
        raise ConfigError("DKIM_PRIVATE_KEY_FILE must hold a PEM private key.")
    return Dkim(
        selector=(settings.dkim_selector or "").encode(),
        domain=(settings.dkim_domain or "").encode(),
        private_key=key,
    )
