"""Will mailbox providers take our mail? The DNS records and settings they look at, each
said as pass, warn or fail, with what to publish.

- SPF (RFC 7208) for MAIL_FROM's domain and the envelope's (BOUNCE_ADDRESS's): one
  `v=spf1` record, not ending in `+all` (anybody may send as us) (§4.5: two records are an
  error);
- DKIM (RFC 6376 §3.6.1): the selector's key record at `<DKIM_SELECTOR>._domainkey.
  <DKIM_DOMAIN>` holds the public half of DKIM_PRIVATE_KEY_FILE;
- DMARC (RFC 7489 §6.1): a `v=DMARC1` record at `_dmarc.<From domain>` (or its parent), and the
  From domain aligned with DKIM's d= (§3.1.1, relaxed: the same domain or one under the
  other; the public suffix list is not consulted);
- MX for the bounce domain (RFC 5321 §5.1): where bounces come back;
- BASE_URL on https: RFC 8058's one-click unsubscribe requires an https link, and Gmail and
  Yahoo require one-click unsubscribe of bulk senders (their 2024 sender guidelines).

Gmail's and Yahoo's bulk sender rules ask for all of SPF, DKIM and DMARC.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from service.config import Settings
from service.domain import mail_headers

# lookup(name, "TXT" | "MX") -> the records' texts; [] when there are none (NXDOMAIN, no
# data); raises LookupError when the DNS could not answer at all.
Lookup = Callable[[str, str], list[str]]


class Level(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str  # "SPF press.example", "DKIM", "DMARC", "MX", "HTTPS"
    level: Level
    detail: str  # what was found
    publish: str = ""  # what to do about it; empty when nothing is to be done


@dataclass(frozen=True)
class Identity:
    """The settings the checks read."""

    from_domain: str  # MAIL_FROM's domain
    bounce_domain: str | None  # BOUNCE_ADDRESS's domain, when set
    base_url: str
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: bytes | None = None  # PEM

    @classmethod
    def from_settings(cls, settings: Settings) -> Identity:
        key_file = settings.dkim_private_key_file
        return cls(
            from_domain=mail_headers.parse_mailbox(settings.mail_from).domain,
            bounce_domain=(settings.bounce_address or "").rpartition("@")[2] or None,
            base_url=settings.public_base_url,
            dkim_selector=settings.dkim_selector,
            dkim_domain=settings.dkim_domain,
            dkim_private_key=Path(key_file).read_bytes() if key_file else None,
        )


def check(identity: Identity, lookup: Lookup) -> list[Finding]:
    domains = [identity.from_domain]
    if identity.bounce_domain and identity.bounce_domain != identity.from_domain:
        domains.append(identity.bounce_domain)
    findings = [_spf(domain, lookup) for domain in domains]
    findings.append(_dkim(identity, lookup))
    findings.append(_dmarc(identity, lookup))
    if identity.bounce_domain:
        findings.append(_mx(identity.bounce_domain, lookup))
    findings.append(_https(identity.base_url))
    return findings


def _records(lookup: Lookup, name: str, kind: str) -> list[str] | None:
    try:
        return lookup(name, kind)
    except LookupError:
        return None


def _spf(domain: str, lookup: Lookup) -> Finding:
    name = f"SPF {domain}"
    records = _records(lookup, domain, "TXT")
    if records is None:
        return Finding(name, Level.WARN, "The DNS did not answer.", "Run the check again.")
    spf = [r for r in records if r.lower().split(" ", 1)[0] == "v=spf1"]
    publish = f'TXT {domain} "v=spf1 include:<your relay\'s SPF domain> -all"'
    if not spf:
        return Finding(name, Level.FAIL, "No SPF record.", publish)
    if len(spf) > 1:
        return Finding(name, Level.FAIL, "Two SPF records: receivers then ignore both.", publish)
    terms = spf[0].lower().split()
    if terms[-1] in ("+all", "all"):
        return Finding(name, Level.FAIL, f"{spf[0]}: anybody may send as {domain} (+all).", publish)
    if terms[-1] == "?all":
        return Finding(name, Level.WARN, f"{spf[0]}: neutral about others (?all).", publish)
    return Finding(name, Level.PASS, spf[0])


def _dkim(identity: Identity, lookup: Lookup) -> Finding:
    if not (identity.dkim_selector and identity.dkim_domain and identity.dkim_private_key):
        return Finding(
            "DKIM",
            Level.FAIL,
            "No DKIM key is set: nothing is signed.",
            "Set DKIM_PRIVATE_KEY_FILE, DKIM_SELECTOR and DKIM_DOMAIN, and publish the key.",
        )
    name = f"{identity.dkim_selector}._domainkey.{identity.dkim_domain}"
    expected = _public_keys(identity.dkim_private_key)
    publish = f'TXT {name} "v=DKIM1; k={expected[0]}; p={expected[1][0]}"'
    records = _records(lookup, name, "TXT")
    if records is None:
        return Finding("DKIM", Level.WARN, "The DNS did not answer.", "Run the check again.")
    tags = [_tags(r) for r in records if "p=" in r]
    if not tags:
        return Finding("DKIM", Level.FAIL, f"No key record at {name}.", publish)
    if any(t.get("p", "") in expected[1] for t in tags):
        return Finding(
            "DKIM", Level.PASS, f"{name} holds the key DKIM_PRIVATE_KEY_FILE signs with."
        )
    return Finding(
        "DKIM", Level.FAIL, f"{name} holds another key than DKIM_PRIVATE_KEY_FILE's.", publish
    )


def _dmarc(identity: Identity, lookup: Lookup) -> Finding:
    domain = identity.from_domain
    publish = f'TXT _dmarc.{domain} "v=DMARC1; p=none; rua=mailto:dmarc@{domain}"'
    found = None
    for candidate in (domain, domain.split(".", 1)[-1] if domain.count(".") > 1 else None):
        if candidate is None:
            continue
        records = _records(lookup, f"_dmarc.{candidate}", "TXT")
        if records is None:
            return Finding("DMARC", Level.WARN, "The DNS did not answer.", "Run the check again.")
        dmarc = [r for r in records if r.replace(" ", "").lower().startswith("v=dmarc1")]
        if dmarc:
            found = dmarc[0]
            break
    if found is None:
        return Finding("DMARC", Level.FAIL, f"No DMARC record for {domain}.", publish)
    dkim_domain = (identity.dkim_domain or "").lower()
    if not dkim_domain:
        return Finding("DMARC", Level.WARN, f"{found}, but no DKIM signature to align with.")
    strict = _tags(found).get("adkim", "r").lower() == "s"
    aligned = dkim_domain == domain.lower() or (
        not strict
        and (domain.lower().endswith("." + dkim_domain) or dkim_domain.endswith("." + domain))
    )
    if not aligned:
        return Finding(
            "DMARC",
            Level.FAIL,
            f"From is {domain} but DKIM signs as {dkim_domain}: not aligned.",
            f"Set DKIM_DOMAIN={domain} (and publish its key).",
        )
    return Finding("DMARC", Level.PASS, f"{found}; From aligned with DKIM d={dkim_domain}.")


def _mx(domain: str, lookup: Lookup) -> Finding:
    records = _records(lookup, domain, "MX")
    if records is None:
        return Finding(
            f"MX {domain}", Level.WARN, "The DNS did not answer.", "Run the check again."
        )
    if not records:
        return Finding(
            f"MX {domain}",
            Level.FAIL,
            f"No MX for {domain}: bounces have nowhere to go.",
            f"MX {domain} 10 <the host running `flask --app service bounces serve`>",
        )
    return Finding(f"MX {domain}", Level.PASS, ", ".join(records))


def _https(base_url: str) -> Finding:
    if base_url.lower().startswith("https://"):
        return Finding("HTTPS", Level.PASS, base_url)
    return Finding(
        "HTTPS",
        Level.FAIL,
        f"BASE_URL is {base_url}: one-click unsubscribe (RFC 8058) needs https.",
        "Serve the site over https and set BASE_URL=https://…",
    )


def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.replace('" "', "").split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def _public_keys(private_pem: bytes) -> tuple[str, list[str]]:
    """The key type and the p= values that publish the private key's public half: for RSA,
    SubjectPublicKeyInfo (what `openssl rsa -pubout` writes) or RSAPublicKey; for Ed25519
    the raw 32 bytes (RFC 8463 §4)."""
    key = serialization.load_pem_private_key(private_pem, password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return "ed25519", [base64.b64encode(raw).decode()]
    assert isinstance(key, rsa.RSAPrivateKey)
    public = key.public_key()
    return "rsa", [
        base64.b64encode(public.public_bytes(serialization.Encoding.DER, form)).decode()
        for form in (
            serialization.PublicFormat.SubjectPublicKeyInfo,
            serialization.PublicFormat.PKCS1,
        )
    ]
