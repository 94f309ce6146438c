"""The exceptions aiohttp raises for real network faults, built the way aiohttp builds them.

Each Fault says what the client may conclude from it: whether the request can have reached Magic Hour
(`request_sent`) and whether it is a timeout. A local server cannot produce most of these: a DNS
failure, a TLS failure, a reset in the middle of an answer, a read timeout at an exact byte.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL


def _key(host: str) -> ConnectionKey:
    return ConnectionKey(host, 443, True, True, None, None, None)


def dns_failure(host: str = "api.magichour.ai") -> aiohttp.ClientConnectorDNSError:
    """The name did not resolve (aiohttp's connector wraps the resolver's gaierror)."""
    return aiohttp.ClientConnectorDNSError(_key(host), socket.gaierror(socket.EAI_NONAME, "Name or service not known"))


def connection_refused(host: str = "api.magichour.ai") -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(_key(host), ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))


def certificate_rejected(host: str = "api.magichour.ai") -> aiohttp.ClientConnectorCertificateError:
    """The TLS handshake failed: no byte of the request was written."""
    return aiohttp.ClientConnectorCertificateError(
        _key(host), ssl.SSLCertVerificationError(1, "certificate verify failed: unable to get local issuer")
    )


def connect_timeout() -> aiohttp.ConnectionTimeoutError:
    return aiohttp.ConnectionTimeoutError("Connection timeout to host https://api.magichour.ai")


def server_disconnected() -> aiohttp.ServerDisconnectedError:
    """The server closed the connection after the request was written, before any answer."""
    return aiohttp.ServerDisconnectedError()


def connection_reset() -> aiohttp.ClientOSError:
    return aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer")


def read_timeout() -> aiohttp.SocketTimeoutError:
    """ClientTimeout.sock_read: no byte for too long, after the request was written."""
    return aiohttp.SocketTimeoutError("Timeout on reading data from socket")


def total_timeout() -> TimeoutError:
    """ClientTimeout.total: aiohttp's timer raises a bare asyncio.TimeoutError (the builtin, since 3.11)."""
    return TimeoutError()


def malformed_answer() -> aiohttp.ClientResponseError:
    """aiohttp's HTTP parser refused the status line: the server did get the request."""
    url = URL("https://api.magichour.ai/")
    info = RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    return aiohttp.ClientResponseError(info, (), status=400, message="Invalid status line")


def payload_cut_short() -> aiohttp.ClientPayloadError:
    """The connection closed before Content-Length bytes arrived."""
    return aiohttp.ClientPayloadError(
        "Response payload is not completed: <ContentLengthError: 400, message='Not enough data to satisfy "
        "content length header.'>"
    )


@dataclass(frozen=True)
class Fault:
    name: str
    make: Callable[[], BaseException]
    request_sent: bool  # could the server have seen the request?
    timed_out: bool

    def __str__(self) -> str:
        return self.name


# Raised instead of an answer (the request never got a status line back).
NEVER_SENT = [
    Fault("dns-failure", dns_failure, request_sent=False, timed_out=False),
    Fault("connection-refused", connection_refused, request_sent=False, timed_out=False),
    Fault("tls-certificate-rejected", certificate_rejected, request_sent=False, timed_out=False),
    Fault("connect-timeout", connect_timeout, request_sent=False, timed_out=True),
]
SENT_THEN_LOST = [
    Fault("server-disconnected", server_disconnected, request_sent=True, timed_out=False),
    Fault("connection-reset", connection_reset, request_sent=True, timed_out=False),
    Fault("read-timeout", read_timeout, request_sent=True, timed_out=True),
    Fault("total-timeout", total_timeout, request_sent=True, timed_out=True),
    Fault("malformed-status-line", malformed_answer, request_sent=True, timed_out=False),
]
CONNECTION_FAULTS = NEVER_SENT + SENT_THEN_LOST

# Raised while the body of a 2xx answer is being read (the status line and headers arrived).
MID_BODY = [
    Fault("payload-cut-short", payload_cut_short, request_sent=True, timed_out=False),
    Fault("connection-reset-mid-body", connection_reset, request_sent=True, timed_out=False),
    Fault("read-timeout-mid-body", read_timeout, request_sent=True, timed_out=True),
    Fault("total-timeout-mid-body", total_timeout, request_sent=True, timed_out=True),
]
