"""Which URLs this client may talk to: the API key and signed links only travel over https.

Plain http is allowed for loopback hosts only, so local fakes and test servers work while a typo such as
http://api.magichour.ai can never send the key in clear.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1: traffic that never leaves the machine."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_base_url(url: str) -> str:
    """The Magic Hour base URL, normalised (no trailing slash); ValueError says what is wrong with it.

    Shared by AsyncClient and the settings, so a bad MAGIC_HOUR_BASE_URL fails at start-up, not later.
    """
    candidate = url.strip() if isinstance(url, str) else ""
    parts = urlsplit(candidate)
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValueError("MAGIC_HOUR_BASE_URL has an invalid port.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("MAGIC_HOUR_BASE_URL must be an absolute URL such as https://api.magichour.ai.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("MAGIC_HOUR_BASE_URL must not contain a user name or password.")
    if parts.query or parts.fragment:
        raise ValueError("MAGIC_HOUR_BASE_URL must not have a query string or fragment.")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ValueError(
            f"MAGIC_HOUR_BASE_URL must use https:// (the API key is sent with every request); "
            f"plain http:// is allowed only for loopback hosts such as 127.0.0.1, not {parts.hostname!r}."
        )
    return candidate.rstrip("/")
