"""What a REDIS_URL names, and how each user of Redis reaches it, a Sentinel-guarded one included.

A plain URL (`redis://`, `rediss://`, `unix://`) names one server. A Sentinel URL names the
sentinels that watch a primary and the primary's name:

    redis+sentinel://[[username]:password@]host:port[,host:port...]/master_name[/db]

(the scheme and host list of the `limits` library's Sentinel storage, which the signup limiter
uses; a port left out is Sentinel's 26379). The password, when given, is the primary's and the
sentinels' alike (Redis's `requirepass` and Sentinel's `requirepass`, set to the same value), as
`limits` sends it to both. Every user of Redis (the Celery broker, the limiter, the journal, the
rate bucket, /readyz) asks the sentinels for the current primary, and asks again when it fails
over (https://redis.io/docs/latest/develop/reference/sentinel-clients/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

SCHEME = "redis+sentinel"
SENTINEL_PORT = 26379
# A sentinel that does not answer within this many seconds is passed over for the next.
SENTINEL_SOCKET_SECONDS = 1.0
# The app's own clients (journal, rate bucket, limiter): a primary whose machine vanished must
# fail a command in seconds, not hang a send until TCP gives up (minutes).
CONNECT_SECONDS = 5.0
COMMAND_SECONDS = 10.0


class SentinelUrlError(ValueError):
    """A `redis+sentinel://` URL that names no sentinel, no primary, or a bad port or db."""


@dataclass(frozen=True)
class SentinelAddress:
    """The sentinels (host, port) in the URL's order, the primary's name, its database
    number, and the credentials for the primary and the sentinels."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def auth(self) -> dict[str, str]:
        credentials = {"username": self.username, "password": self.password}
        return {key: value for key, value in credentials.items() if value}


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(SCHEME + "://")


def parse(url: str) -> SentinelAddress | None:
    """The Sentinel address `url` names, or None for a plain Redis URL.

    Raises SentinelUrlError; its message names the part at fault and never quotes the URL,
    which may hold a password."""
    if not is_sentinel_url(url):
        return None
    try:
        return _parse(url)
    except SentinelUrlError:
        raise
    except ValueError:  # urllib's own complaints (a bracket left open, say)
        raise SentinelUrlError(f"{SCHEME}:// is not a URL: host:port,host:port/master.") from None


def _parse(url: str) -> SentinelAddress:
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    username, _, password = credentials.partition(":")
    sentinels = tuple(_sentinel(host) for host in hosts.split(",") if host.strip())
    if not sentinels:
        raise SentinelUrlError(
            f"{SCHEME}:// names no sentinel: list them as host:port,host:port (a password "
            "with / ? # or @ in it must be percent-encoded)."
        )
    path = [segment for segment in parts.path.split("/") if segment]
    if not path:
        raise SentinelUrlError(
            f"{SCHEME}:// names no primary: end the URL with /<master name> (Sentinel's "
            "`sentinel monitor <master name> ...`)."
        )
    if len(path) > 2 or (len(path) == 2 and not (path[1].isascii() and path[1].isdigit())):
        raise SentinelUrlError(
            f"{SCHEME}:// ends with /<master name> or /<master name>/<db number>."
        )
    if parts.query:
        raise SentinelUrlError(
            f"{SCHEME}:// takes no options after '?' (a password with / ? # or @ in it must "
            "be percent-encoded)."
        )
    return SentinelAddress(
        sentinels=sentinels,
        master=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )


def _sentinel(host_port: str) -> tuple[str, int]:
    text = host_port.strip()
    host, colon, port = text.rpartition(":")
    bare_ipv6 = ":" in host and not host.endswith("]")  # [::1] or ::1 with no port
    if not colon or bare_ipv6:
        host, port = text, str(SENTINEL_PORT)
    host = host.strip("[]")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise SentinelUrlError(
            f"{SCHEME}:// has a sentinel that is not host:port (a password with / ? # or @ "
            "in it must be percent-encoded)."
        )
    return host, int(port)


def url_from_parts(sentinels: str, master: str) -> str:
    """The Sentinel URL for REDIS_SENTINELS (`host:port,host:port`) and REDIS_SENTINEL_MASTER."""
    return f"{SCHEME}://{sentinels.replace(' ', '')}/{quote(master, safe='')}"


def connect(url: str, **options: Any) -> redis.Redis:
    """A client for the Redis `url` names: for a Sentinel URL, the current primary's, found
    again through the sentinels when it fails over. `options` are redis.Redis's; its timeouts
    default to CONNECT_SECONDS and COMMAND_SECONDS."""
    options = {
        "socket_connect_timeout": CONNECT_SECONDS,
        "socket_timeout": COMMAND_SECONDS,
        "health_check_interval": 30,
        **options,
    }
    address = parse(url)
    if address is None:
        return redis.Redis.from_url(url, **options)
    sentinel = Sentinel(
        list(address.sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_SOCKET_SECONDS, **address.auth()},
        **options,
    )
    return sentinel.master_for(address.master, db=address.db, **address.auth())


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options it needs for the Redis `url` names
    (kombu's `sentinel://` transport for a Sentinel URL); any other URL as it is, no options."""
    address = parse(url)
    if address is None:
        return url, {}
    credentials = ""
    if address.auth():
        credentials = f"{quote(address.username or '', safe='')}:"
        credentials += f"{quote(address.password or '', safe='')}@"
    broker = ";".join(
        f"sentinel://{credentials}{_host(host)}:{port}/{address.db}"
        for host, port in address.sentinels
    )
    options: dict[str, Any] = {
        "master_name": address.master,
        "sentinel_kwargs": {"socket_timeout": SENTINEL_SOCKET_SECONDS, **address.auth()},
    }
    return broker, options


def limiter_storage(url: str) -> tuple[str, dict[str, Any]]:
    """Flask-Limiter's RATELIMIT_STORAGE_URI and RATELIMIT_STORAGE_OPTIONS for `url`. For a
    Sentinel URL, `limits` is given the hosts and the master's name in the URI and the rest
    as options, decoded (it would send a percent-encoded password as it stands, and reads
    the whole path as the master's name); counts are read from the primary, never a replica
    that may lag behind it."""
    address = parse(url)
    if address is None:
        return url, {}
    hosts = ",".join(f"{_host(host)}:{port}" for host, port in address.sentinels)
    options: dict[str, Any] = {
        "use_replicas": False,
        "sentinel_kwargs": {"socket_timeout": SENTINEL_SOCKET_SECONDS},
        "socket_connect_timeout": CONNECT_SECONDS,
        "socket_timeout": COMMAND_SECONDS,
        **address.auth(),
    }
    if address.db:
        options["db"] = address.db
    return f"{SCHEME}://{hosts}/{quote(address.master, safe='')}", options


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
