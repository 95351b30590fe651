"""What every command shares: exit codes, the output channels, logging, argument helpers."""

from __future__ import annotations

import argparse
import enum
import json
import logging
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from rich.console import Console

from .._storage import Blob
from ..exceptions import InvalidArgumentValueError
from ._display import Display, make_display, stderr_is_terminal

__all__ = [
    "ExitCode",
    "Output",
    "UsageError",
    "describe_os_error",
    "event_to_json",
    "parse_ca_file",
    "parse_header",
    "parse_identifier",
    "parse_port",
    "parse_seconds",
    "parse_size",
    "plain_transfer_error",
    "secure_props",
]


class ExitCode(enum.IntEnum):
    """The tool's exit status: which kind of thing failed (documented in ``docs/cli.md``)."""

    OK = 0
    TRANSFER_ERROR = 1  #: the transfer failed (``sessioncompleted`` with ``success`` false)
    USAGE = 2  #: bad command line or bad argument (URL, header, missing upload file)
    HTTP_ERROR = 3  #: with ``--fail``: the server answered with a status >= 400
    NO_BACKGROUND = 4  #: no transfer process runs (``cancel``), has that task, or can start
    LOCAL_FILE = 5  #: the output file could not be written
    INTERRUPTED = 130  #: Ctrl-C (SIGINT): the transfer was cancelled


class UsageError(Exception):
    """A command line that parses but makes no sense (exit code 2)."""


_EVENT_ATTRIBUTES = frozenset({"type", "source", "bubbles", "cancelBubble"})


def event_to_json(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as plain JSON: ``type`` first, then Titanium's fields; a Blob becomes a dict."""
    out: dict[str, Any] = {"type": event["type"]}
    for key in event:
        if key in _EVENT_ATTRIBUTES:
            continue
        value = event[key]
        if isinstance(value, Blob):
            value = {
                "nativePath": value.nativePath,
                "length": value.length,
                "mimeType": value.mimeType,
            }
        out[key] = value
    return out


class Output:
    """Where a command speaks: JSON lines on stdout, progress and messages on stderr.

    ``--json`` makes stdout one JSON object per line (and nothing else); ``--quiet`` silences
    progress and messages; errors always reach stderr.
    """

    def __init__(self, *, quiet: bool = False, json_mode: bool = False, verbose: int = 0) -> None:
        self.quiet = quiet
        self.json = json_mode
        self.stdout: TextIO = sys.stdout
        self.stderr: TextIO = sys.stderr
        # One console for the live bars and for log records, so logging never tears a bar.
        self.console = Console(stderr=True) if stderr_is_terminal() else None
        self.display: Display = make_display(quiet, json_mode, self.console)
        _setup_logging(verbose, self.console)

    def emit(self, obj: Mapping[str, Any]) -> None:
        """One JSON object on one line of stdout (``--json`` only)."""
        if self.json:
            self.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
            self.stdout.flush()

    def info(self, text: str) -> None:
        """A message for people: not with ``--quiet`` nor ``--json``."""
        if not self.quiet and not self.json:
            self.display.message(text)

    def error(self, text: str) -> None:
        """An error: always on stderr, whatever the mode."""
        if self.console is not None and not self.json:
            self.console.print(f"[red]error:[/] {text}", highlight=False)
        else:
            self.stderr.write(f"urlsession: error: {text}\n")
            self.stderr.flush()

    def close(self) -> None:
        self.display.close()


def _setup_logging(verbose: int, console: Console | None) -> None:
    """``-v``: the package's INFO records on stderr; ``-vv``: DEBUG too. Quiet otherwise."""
    if verbose <= 0:
        return
    logger = logging.getLogger("urlsession_module")
    for old in [h for h in logger.handlers if h.get_name() == "urlsession-cli"]:
        logger.removeHandler(old)  # main() run again in one process: one handler, not two
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    handler: logging.Handler
    if console is not None:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.set_name("urlsession-cli")
    logger.addHandler(handler)


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mib": 1 << 20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 1 << 30,
}


def parse_size(text: str) -> int:
    """``8MiB`` → 8388608 (an ``argparse`` type)."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 64MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` → ``('Name', 'value')`` (an ``argparse`` type, as curl's ``-H``)."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not a header: {text!r} (expected 'Name: value')")
    return name.strip(), value.strip()


def parse_seconds(text: str) -> float:
    """``--timeout``/``--max-time``: a positive, finite number of seconds (an ``argparse`` type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0 (got {text!r})")
    return value


def parse_port(text: str) -> int:
    """``serve --port``: 0 (any free port) to 65535 (an ``argparse`` type)."""
    if not re.fullmatch(r"\d{1,5}", text.strip()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535 (got {text!r})")
    return int(text)


def parse_identifier(text: str) -> str:
    """``--background ID``: a background session's identifier is a non-empty string."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a session identifier, e.g. com.example.cli")
    return text


def parse_ca_file(text: str) -> Path:
    """``--cacert FILE``: a readable file, checked before anything is sent."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a PEM file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(describe_os_error(exc)) from None
    return path


def describe_os_error(exc: OSError, *, with_path: bool = True) -> str:
    """An ``OSError`` in plain words: ``out.bin: Permission denied`` (no class names, no errno)."""
    reason = exc.strerror or str(exc) or "input/output error"
    if reason and reason[0].isupper() and not reason[:2].isupper():
        reason = reason[0].lower() + reason[1:]
    if not with_path or exc.filename is None:
        return reason
    where = os.fsdecode(exc.filename)
    return f"{where}: {reason}"


# What is worth keeping of a lower layer's detail: the words after an errno or an SSL reason, an
# IncompleteRead's counts; anything else that looks like Python (a repr, a tuple) is dropped.
_DETAIL_WORDS = (
    re.compile(r"\[Errno -?\d+\] ([^)\]'\"]+)"),
    re.compile(r"\[SSL(?:: \w+)?\] ([^(]+?)\s*(?:\(_ssl|$)"),
    re.compile(r"IncompleteRead\(([^)]*)\)"),
)
_PYTHONISH = re.compile(r"\w\(|=|'|\"|<|\[")


def plain_transfer_error(message: str, code: int, url: str, proxy: str | None = None) -> str:
    """A failed task's message for people: Foundation's words, where, why, and the code.

    ``Could not connect to the server. (_AbortableHTTPConnection(host=..., port=1): ... [Errno
    111] Connection refused)`` becomes ``Could not connect to the server: 127.0.0.1:1, connection
    refused (error -1004)``; the raw message stays in ``--json``'s ``sessioncompleted``.
    """
    base, detail = message, ""
    if message.endswith(")") and " (" in message:
        base, detail = message.split(" (", 1)
        detail = detail[:-1]
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = None
    where = f"{parts.hostname}:{port}" if parts.hostname and port is not None else ""
    if where and detail.startswith(f"{where}: "):
        # The transport's own format, plain already: "host:port: what happened".
        words = detail[len(where) + 2 :]
    else:  # an older transfer process's message: keep only what reads as words
        words = ""
        for pattern in _DETAIL_WORDS:
            found = pattern.findall(detail)
            if found:
                words = found[-1].strip()
                break
        else:
            if detail and not _PYTHONISH.search(detail):
                words = detail.strip()
    if words and words.lower() in base.lower():
        words = ""
    through = re.match(r"the proxy (\S+): (.*)", words)
    if through:  # the transport names the proxy that failed: the task's host was never reached
        where, words = f"the proxy {through[1]}", through[2]
    elif proxy and "proxy" in detail.lower():
        proxy_parts = urlsplit(proxy)
        where = f"the proxy {proxy_parts.hostname}:{proxy_parts.port or 80}"
    said = base.rstrip(".") or "the transfer failed"
    tail = ", ".join(x for x in (where, words[:1].lower() + words[1:]) if x)
    return f"{said}: {tail} (error {code})" if tail else f"{said} (error {code})"


# -- curl's proxy, certificate and pinning flags (issue 15) -----------------------------------------


def _no_proxy_for(host: str, patterns: str) -> bool:
    """curl's ``--noproxy``: comma-separated names, each matching the host or a domain under it
    (a leading dot optional); ``*`` alone matches every host."""
    host = host.lower().strip("[]").rstrip(".")
    for raw in patterns.split(","):
        name = raw.strip().lower().lstrip(".").rstrip(".")
        if name == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def secure_props(args: argparse.Namespace, props: Any) -> None:
    """Turn ``--proxy``, ``--noproxy``, ``--cert``, ``--key`` and ``--pinnedpubkey`` into the
    configuration properties the library checks (so the messages are the library's).

    The tool runs one URL, so ``--noproxy`` is decided here, as curl does: a URL whose host it
    names connects directly (``connectionProxyDictionary`` {} ignores the environment too).
    """
    host = urlsplit(getattr(args, "url", "") or "").hostname or ""
    noproxy = getattr(args, "noproxy", None)
    if noproxy is not None and _no_proxy_for(host, noproxy):
        props["connectionProxyDictionary"] = {}
    elif getattr(args, "proxy", None):
        props["proxyURL"] = args.proxy
    cert = getattr(args, "cert", None)
    key = getattr(args, "key", None)
    if cert or key:
        if not cert:
            raise InvalidArgumentValueError("key", "--key needs --cert (the certificate it is for)")
        path, _, password = cert.partition(":")
        if path.lower().endswith((".p12", ".pfx")):
            value = {"pkcs12File": path}
        else:
            value = {"certFile": path} | ({"keyFile": key} if key else {})
        if password:
            value["password"] = password
        props["clientCertificate"] = value
    pins = getattr(args, "pinnedpubkey", None)
    if pins:
        props["pinnedPublicKeys"] = {host: [p for p in pins.split(";") if p.strip()]}
