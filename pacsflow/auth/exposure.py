"""Safe defaults: a process without authentication listens on loopback only.

Anyone who reaches the port of a process without ``PACSFLOW_AUTH_ISSUER`` may read, write and
delete everything; such a process refuses a listen address other than loopback unless told
so explicitly (``--insecure`` or ``PACSFLOW_INSECURE=true``), e.g. behind a gateway that
authenticates (docs/security.md).
"""

from __future__ import annotations

from pacsflow.auth.settings import AuthSettings, is_loopback

__all__ = ["exposure_problem"]


def exposure_problem(host: str, auth: AuthSettings, insecure: bool) -> str | None:
    """Why listening on ``host`` is refused, or None when it is allowed."""
    if auth.enabled or insecure or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without authentication: set PACSFLOW_AUTH_ISSUER and"
        " PACSFLOW_AUTH_AUDIENCE (docs/security.md), or pass --insecure"
        " (PACSFLOW_INSECURE=true) to serve everyone who reaches the port"
    )
