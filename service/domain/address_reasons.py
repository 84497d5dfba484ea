"""Why an address is refused, in our own words: email-validator's reasons (English text,
RFC 5321/5322/6531 and IDNA rules) mapped to translatable messages, so that a page, the desk's
import report and the API say it in one language.

email-validator gives no codes, only sentences (email_validator/syntax.py, deliverability.py,
validate_email.py, version 2.x): they are recognized here by their fixed words. A sentence
not recognized falls back to the plain "That is not a valid email address."
"""

from __future__ import annotations

from email_validator import EmailNotValidError, EmailUndeliverableError

from service.domain.errors import N_, InvalidAddress

ONE_PLAIN_ADDRESS = N_("Enter one plain email address, like name@example.com.")
INVISIBLE_INSIDE = N_(
    "The email address holds a space or an invisible character. Type it again, or paste "
    "only the address."
)
TAKES_NO_EMAIL = N_("The domain of the email address (after the @) takes no email.")
LOCAL_PART_TOO_LONG = N_("The email address has more than %(count)s characters before the @.")

# (words in email-validator's sentence, our message), the first match wins: most specific
# first. Matched on the lower-cased sentence.
_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("must have an @-sign",), N_("An email address needs an @, as in name@example.com.")),
    (("something before the @-sign",), N_("The email address lacks the part before the @.")),
    (("something after the @-sign",), N_("The email address lacks the part after the @.")),
    (
        ("display name", "angle bracket", "anything after the email address"),
        ONE_PLAIN_ADDRESS,
    ),
    (
        ("quoting the part before",),
        N_("The email address cannot have quotation marks before the @ here."),
    ),
    (
        ("bracketed ip address", "address literal", "in brackets"),
        N_(
            "The email address must have a domain name such as example.com after the @, "
            "not an IP address."
        ),
    ),
    (("too long before the @-sign",), N_("The email address is too long before the @.")),
    (
        ("too long after the @-sign", "so many characters"),
        N_("The email address is too long after the @."),
    ),
    (("too long",), N_("The email address is too long.")),
    (
        ("special-use or reserved name",),
        N_(
            "The email address ends in a name kept for special uses (such as .test, .local "
            "or .localhost), which cannot receive email."
        ),
    ),
    (("does not exist",), N_("The domain of the email address (after the @) does not exist.")),
    (
        ("does not accept email", "does not send email"),
        TAKES_NO_EMAIL,
    ),
    (
        ("error while checking",),
        N_("We could not check the domain of the email address. Try again in a little while."),
    ),
    (
        ("should have a period", "valid top-level domain"),
        N_("The email address must have a domain name such as example.com after the @."),
    ),
    (
        ("period", "hyphen", "two letters followed by two dashes"),
        N_(
            "The email address has a period or hyphen in the wrong place: at the start or "
            "end of a part, next to another, or two in a row."
        ),
    ),
    (
        ("before the @-sign", "unsafe character", "not valid ascii", "invalid character."),
        N_("The part before the @ holds characters that an email address cannot have."),
    ),
    (
        ("after the @-sign", "idna"),
        N_("The email address has characters after the @ that a domain name cannot have."),
    ),
)


def refusal(error: EmailNotValidError) -> InvalidAddress:
    """The InvalidAddress to raise for email-validator's `error`: one of our messages."""
    text = str(error).lower()
    for words, message in _REASONS:
        if any(word in text for word in words):
            return InvalidAddress(message)
    if isinstance(error, EmailUndeliverableError):
        return InvalidAddress(TAKES_NO_EMAIL)
    return InvalidAddress()
