"""Request guards: bearer-token authentication, loopback Host and Origin checks, JSON errors.

Without a token the server only listens on loopback, and then
- the Host header must name a loopback host (a page on another domain that DNS-rebinds to
  127.0.0.1 is refused, for reads too),
- requests that change state (anything but GET/HEAD/OPTIONS, and WebSocket handshakes) are
  refused when the browser says they come from another site: `Sec-Fetch-Site: cross-site`, an
  `Origin` of `null`, or an `Origin` whose host and port differ from the Host header.
With a token every request must carry it (`Authorization: Bearer ...`, or `?token=` on GET
requests, which a WebSocket handshake and an `<img>` tag cannot avoid); a page on another site
cannot know it, so the origin checks are not needed and reverse proxies keep working.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def error_response(status: int, error_type: str, message: str, **extra: object) -> web.Response:
    """A JSON error body in the shape of ComfyUI's prompt errors: `{"error": {type, message, ...}}`."""
    body = {"error": {"type": error_type, "message": message, "details": "", "extra_info": {}}, **extra}
    return web.json_response(body, status=status)


def is_loopback(host: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1 (with or without brackets)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(authority: str) -> str:
    """The host part of a Host header value (`[::1]:8188` → `::1`)."""
    return urlsplit(f"//{authority}").hostname or ""


def _authority(origin: str) -> str | None:
    """`host:port` of an Origin (default ports filled in), or None if it is not a URL."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def _request_authority(request: web.Request) -> str:
    host = request.host
    if ":" not in host.rsplit("]", 1)[-1]:
        host = f"{host}:{443 if request.secure else 80}"
    return host.lower()


def cross_site_reason(request: web.Request) -> str | None:
    """Why a state-changing request looks like it comes from another site (None if it does not)."""
    if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
        return "the browser marked it cross-site (Sec-Fetch-Site)"
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return None
    if origin.strip().lower() == "null":
        return "its Origin is null"
    authority = _authority(origin.strip())
    if authority is None or authority.lower() != _request_authority(request):
        return f"its Origin {origin!r} is not this server ({request.host})"
    return None


def _changes_state(request: web.Request) -> bool:
    upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
    return upgrade or request.method not in SAFE_METHODS


def _presented_token(request: web.Request) -> str | None:
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.method in SAFE_METHODS:
        return request.query.get("token")
    return None


def public_asset(handler: Handler) -> Handler:
    """Mark a GET handler that serves the editor's own static files: they hold no user data, and
    the browser fetches them (module imports, stylesheets) without the access token, so the token
    guard lets GET requests for them through. The page then sends the token on its API calls."""
    handler.sdflow_public_asset = True  # type: ignore[attr-defined]
    return handler


def _is_public_asset(request: web.Request) -> bool:
    return request.method == "GET" and getattr(request.match_info.handler, "sdflow_public_asset", False)


def guard_middleware(auth_token: str | None) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The token check (when a token is set) or the loopback Host/Origin checks (when not)."""
    expected = auth_token.encode() if auth_token else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None and not _is_public_asset(request):
            presented = _presented_token(request)
            if presented is None or not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected):
                response = error_response(401, "unauthorized", "this server needs its access token: send 'Authorization: Bearer <token>'")
                response.headers[hdrs.WWW_AUTHENTICATE] = "Bearer"
                return response
            return await handler(request)
        if expected is not None:  # a public asset of a token-guarded server
            return await handler(request)
        if not is_loopback(_host_of(request.host)):
            return error_response(403, "forbidden_host", f"Host {request.host!r} is not a loopback name; this server answers only local requests")
        if _changes_state(request):
            reason = cross_site_reason(request)
            if reason is not None:
                log.warning("refused %s %s: %s", request.method, request.path, reason)
                return error_response(403, "cross_site_request", f"refused a request from another site: {reason}")
        return await handler(request)

    return guard


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answers with a JSON body; an unexpected exception is logged and becomes a 500."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), message)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, "server_error", "sdflow failed handling this request; the server log has the details")
