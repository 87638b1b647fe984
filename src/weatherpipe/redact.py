"""The one password masker: URLs and connection strings in anything shown to a user."""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:PASSWORD@host — the password may hold an unescaped "@" (libpq takes the last
# one as the end of the user part), so it runs to the last "@" before a space or quote.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]*:)[^\s'\"]*@")
# password=... in a URL's query or a key=value connection string.
_PARAMETER = re.compile(r"(?i)(?P<head>\bpassword\s*=\s*)(?:'[^']*'|[^\s&'\"]+)")


def masked(text: str) -> str:
    """`text` with every password of a URL (postgresql://user:***@host/db) or a
    `password=` parameter replaced by ***; everything else unchanged."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _PARAMETER.sub(lambda m: f"{m['head']}{MASK}", text)
