"""Security headers that every response carries (CSP, HSTS under https, nosniff, framing,
referrer). Other guards live elsewhere: CSRF is Flask-WTF's (service/extensions.py), the
desk's logins are desk_login.py, the API's bearer tokens api_auth.py."""

from __future__ import annotations

from flask import Flask, Response

from service.app_state import settings_of


def init_app(app: Flask) -> None:
    https = settings_of(app).base_url.startswith("https://")

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if https:
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        return response
