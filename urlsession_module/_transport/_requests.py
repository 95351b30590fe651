"""Requests as the wire sees them: building one, its origin, and Foundation's redirect rules."""

from __future__ import annotations

import os
from urllib.parse import urljoin, urlsplit

from .._state import Request
from .._stores import userinfo_of, without_userinfo
from .._urls import CREDENTIAL_HEADERS, origin
from ..exceptions import ErrorCode, TransferError

USER_AGENT = "urlsession_module/0.1 (com.appcelerator.urlSession)"


MAX_REDIRECTS = 20
REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
BODY_HEADERS = ("content-type", "content-length", "transfer-encoding", "content-encoding")


def build_request(
    method: str,
    url: str,
    config_headers: dict[str, str],
    request_headers: dict[str, str],
    *,
    body: bytes | None = None,
    body_path: str | None = None,
    content_type: str | None = None,
    accept_encoding: bool = True,
    credential: tuple[str, str] | None = None,
) -> Request:
    """Merge headers the Foundation way and describe the body; the call's headers win.

    A ``requestHeaders`` entry replaces a configuration header of the same name whatever its
    case, so each header goes out once. A bodiless request gets no default Content-Type.
    A ``credential`` travels beside the request (to the transfer process too), never in its
    URL: it answers a 401 from that origin only, and never goes on the wire by itself. User info
    the caller wrote in ``url`` is taken out of it and becomes that credential (``credential``,
    when given too, wins).
    """
    credential = credential or userinfo_of(url)
    url = without_userinfo(url)
    merged: dict[str, tuple[str, str]] = {}
    defaults = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if accept_encoding:
        defaults["Accept-Encoding"] = "gzip, deflate"
    for source in (defaults, config_headers, request_headers):
        for name, value in source.items():
            merged[name.lower()] = (name, value)
    length = 0
    if body is not None:
        length = len(body)
    elif body_path is not None:
        length = os.path.getsize(body_path)
    has_body = body is not None or body_path is not None
    if has_body:
        merged.pop("transfer-encoding", None)
        merged["content-length"] = ("Content-Length", str(length))
        if "content-type" not in merged and content_type:
            merged["content-type"] = ("Content-Type", content_type)
    else:
        merged.pop("content-length", None)
    return Request(
        method=method,
        url=url,
        headers=tuple(merged.values()),
        body=body,
        body_path=body_path,
        body_length=length,
        credential=credential,
    )


def redirect_request(request: Request, status: int, location: str) -> Request:
    """The request Foundation makes for a redirect (its rules, not urllib3's).

    301/302 turn POST into GET; 303 turns any method but HEAD into GET; both drop the body.
    307/308 keep method and body. Credentials never go to another origin, and user info in
    ``location`` is dropped, as Foundation does: a server must not choose the credential a task
    answers the next origin's 401 with (nor have it saved in the credential store for it).
    """
    target = urljoin(request.url, without_userinfo(location.strip()))
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(target).hostname:
        raise TransferError(ErrorCode.UNSUPPORTED_URL, f"a redirect to {target}")
    method = request.method
    keep_body = request.has_body
    if (status in (301, 302) and method == "POST") or (status == 303 and method != "HEAD"):
        method, keep_body = "GET", False
    drop = set() if keep_body else set(BODY_HEADERS)
    if origin(target) != origin(request.url):
        drop.update(CREDENTIAL_HEADERS)
    headers = tuple((k, v) for k, v in request.headers if k.lower() not in drop)
    credential = request.credential if origin(target) == origin(request.url) else None
    if keep_body:
        return Request(
            method,
            target,
            headers,
            request.body,
            request.body_path,
            request.body_length,
            credential=credential,
        )
    return Request(method, target, headers, credential=credential)
