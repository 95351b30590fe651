"""Typed shapes of the arguments and event payloads, so editors complete them.

Titanium passes one dict; Python users pass keywords. Both are described by the same
``TypedDict``: every key under its Titanium name and, where a Python user would reach for it,
its snake_case spelling (``requestHeaders`` / ``request_headers``). The runtime checks live in
``_validate`` and ``_arguments``; these classes only describe.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from ._configuration import SessionConfiguration
    from ._dispatch import EventQueue
    from ._storage import Blob

__all__ = [
    "BackgroundTransferEvent",
    "ConfigurationArgs",
    "Credential",
    "DataTaskArgs",
    "DownloadCompletedEvent",
    "DownloadProgressEvent",
    "DownloadTaskArgs",
    "SessionArgs",
    "SessionCompletedEvent",
    "SessionEventsCompletedEvent",
    "UploadProgressEvent",
    "UploadTaskArgs",
]


class Credential(TypedDict):
    user: str
    password: str


class DownloadTaskArgs(TypedDict, total=False):
    url: str
    requestHeaders: dict[str, str]
    request_headers: dict[str, str]
    taskDescription: str
    task_description: str
    priority: float
    earliestBeginDate: datetime.datetime | float
    earliest_begin_date: datetime.datetime | float
    credential: Credential
    maximumBytesPerSecond: int
    maximum_bytes_per_second: int
    resumeData: str  # downloadTask only
    resume_data: str


class DataTaskArgs(DownloadTaskArgs, total=False):
    method: str
    data: dict[str, Any] | list[Any] | str | bytes | Blob


class UploadTaskArgs(DownloadTaskArgs, total=False):
    method: str
    data: Blob | bytes | str | os.PathLike[str]


class SessionArgs(TypedDict, total=False):
    configuration: SessionConfiguration
    delegateQueue: asyncio.AbstractEventLoop | EventQueue | None
    delegate_queue: asyncio.AbstractEventLoop | EventQueue | None


class ConfigurationArgs(TypedDict, total=False):
    type: str
    identifier: str
    HTTPHeaderFields: dict[str, str]
    http_header_fields: dict[str, str]
    timeoutIntervalForRequest: float
    timeout_interval_for_request: float
    timeoutIntervalForResource: float
    timeout_interval_for_resource: float
    httpMaximumConnectionsPerHost: int
    http_maximum_connections_per_host: int
    httpShouldSetCookies: bool
    http_should_set_cookies: bool
    httpCookieAcceptPolicy: str
    http_cookie_accept_policy: str
    requestCachePolicy: str
    request_cache_policy: str
    isDiscretionary: bool
    is_discretionary: bool
    sessionSendsLaunchEvents: bool
    session_sends_launch_events: bool
    launchCommand: list[str]
    launch_command: list[str]
    tlsVerify: bool
    tls_verify: bool
    caBundle: str
    ca_bundle: str
    proxyURL: str
    proxy_url: str
    credential: Credential
    connectionProxyDictionary: dict[str, Any]
    connection_proxy_dictionary: dict[str, Any]
    clientCertificate: dict[str, str]
    client_certificate: dict[str, str]
    pinnedPublicKeys: dict[str, list[str]]
    pinned_public_keys: dict[str, list[str]]
    tlsMinimumSupportedProtocolVersion: str
    tls_minimum_supported_protocol_version: str
    waitsForConnectivity: bool
    waits_for_connectivity: bool
    retryPolicy: dict[str, Any]
    retry_policy: dict[str, Any]
    maximumBytesPerSecond: int
    maximum_bytes_per_second: int


# -- event payloads (what listeners read from the Event, by attribute or by key) ---------------------


class DownloadProgressEvent(TypedDict, total=False):
    taskIdentifier: str
    bytesWritten: int
    totalBytesWritten: int
    totalBytesExpectedToWrite: int
    sessionIdentifier: str


class UploadProgressEvent(TypedDict, total=False):
    taskIdentifier: str
    bytesSent: int
    totalBytesSent: int
    totalBytesExpectedToSend: int
    sessionIdentifier: str


class DownloadCompletedEvent(TypedDict, total=False):
    taskIdentifier: str
    data: Blob
    sessionIdentifier: str


class SessionCompletedEvent(TypedDict, total=False):
    taskIdentifier: str
    success: bool
    errorCode: int
    message: str
    statusCode: int
    responseText: str
    sessionIdentifier: str


class SessionEventsCompletedEvent(TypedDict):
    sessionIdentifier: str


class BackgroundTransferEvent(TypedDict):
    sessionIdentifier: str
    handlerId: str
