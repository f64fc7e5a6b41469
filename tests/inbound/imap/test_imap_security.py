"""Security modes against Dovecot (TLS, STARTTLS with a self-signed cert), never a quiet
downgrade; and the adapter's fallbacks against an embedded server with fewer capabilities."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from daemon.demo.imap_server.server import Controller
from daemon.inbound.imap import Mailbox
from daemon.inbound.imap_session import ImapConnectError, ImapTlsError
from tests.inbound.imap.servers import (
    Account,
    DovecotServer,
    EmbeddedServer,
    append,
    settings,
    unavailable,
)


def _tls(dovecot: DovecotServer) -> DovecotServer:
    if dovecot.tls_port is None:
        unavailable("openssl is missing, so the private Dovecot has no certificate")
    return dovecot


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_encrypted_connection(dovecot: DovecotServer, security: str) -> None:
    server = _tls(dovecot)
    account = server.new_account()
    append(server, account, b"Subject: x\r\n\r\nsecret\r\n")
    with Mailbox(settings(server, account, security), server.ssl_context) as box:
        box.select()
        tls_socket = box._session().socket()
        assert tls_socket.version() is not None  # an SSLSocket, handshake done
        assert tls_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # set before TLS
        assert [m.raw for b in box.fetch(box.uids_after(0)) for m in b] == [
            b"Subject: x\r\n\r\nsecret\r\n"]


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_untrusted_certificate_is_a_tls_error(dovecot: DovecotServer, security: str) -> None:
    server = _tls(dovecot)
    account = server.new_account()
    box = Mailbox(settings(server, account, security))  # the system CAs do not know our cert
    with pytest.raises(ImapTlsError, match="certificate verify failed"):
        box.connect()
    assert not box.connected


def test_tls_to_a_plain_port_is_a_tls_error(dovecot: DovecotServer) -> None:
    account = dovecot.new_account()
    plain_port_with_tls = settings(dovecot, account, "tls", port=dovecot.port)
    with pytest.raises(ImapTlsError):
        Mailbox(plain_port_with_tls, ssl.create_default_context()).connect()


def test_plain_to_a_tls_port_times_out_as_a_connect_error(dovecot: DovecotServer) -> None:
    server = _tls(dovecot)
    account = server.new_account()
    wrong = settings(server, account, "none", port=server.tls_port, timeout=timedelta(seconds=1))
    with pytest.raises(ImapConnectError, match="security: tls"):
        Mailbox(wrong).connect()


# ---------------------------------------------------------------- fewer capabilities

@pytest.fixture
def plain_server() -> Iterator[EmbeddedServer]:
    """An embedded server without IDLE, MOVE or UIDPLUS."""
    with Controller(capabilities=("IMAP4rev1", "AUTH=PLAIN")) as controller:
        yield EmbeddedServer(controller)


def test_starttls_required_but_not_offered(embedded_imap: EmbeddedServer) -> None:
    account = embedded_imap.new_account()
    box = Mailbox(settings(embedded_imap, account, "starttls"))
    with pytest.raises(ImapTlsError, match="does not offer STARTTLS; refusing"):
        box.connect()
    assert not box.connected


def test_starttls_refused_by_a_server_that_advertises_it() -> None:
    # A server (or a man in the middle) that lists STARTTLS, then refuses it: still an error.
    with Controller({"u": "p"}, capabilities=("IMAP4rev1", "STARTTLS")) as controller:
        server = EmbeddedServer(controller)
        box = Mailbox(settings(server, Account("u", "p"), "starttls"))
        with pytest.raises(ImapTlsError, match="STARTTLS"):
            box.connect()


def test_move_without_move_or_uidplus(plain_server: EmbeddedServer) -> None:
    account = plain_server.new_account()
    for n in range(2):
        plain_server.controller.deliver(b"Subject: %d\r\n\r\n.\r\n" % n, user=account.username)
    with Mailbox(settings(plain_server, account, processed_folder="Done")) as box:
        box.select()
        box.mark_processed(box.uids_after(0))
        # Copied with \Seen; the originals stay, flagged \Deleted: no EXPUNGE of others' mail.
        done = plain_server.controller.messages("Done", user=account.username)
        assert [m.flags for m in done] == [frozenset({"\\Seen"})] * 2
        inbox = plain_server.controller.messages("INBOX", user=account.username)
        assert [m.flags for m in inbox] == [frozenset({"\\Seen", "\\Deleted"})] * 2


def test_copy_and_uid_expunge_without_move() -> None:
    capabilities = ("IMAP4rev1", "UIDPLUS", "IDLE", "AUTH=PLAIN")
    with Controller({"u": "p"}, capabilities=capabilities) as controller:
        server = EmbeddedServer(controller)
        controller.deliver(b"Subject: keep\r\n\r\n.\r\n")
        controller.deliver(b"Subject: go\r\n\r\n.\r\n")
        with Mailbox(settings(server, Account("u", "p"), processed_folder="Done")) as box:
            box.select()
            box.mark_processed([2])
        assert [m.raw for m in controller.messages("INBOX")] == [b"Subject: keep\r\n\r\n.\r\n"]
        assert [m.raw for m in controller.messages("Done")] == [b"Subject: go\r\n\r\n.\r\n"]


def test_polling_when_the_server_has_no_idle(plain_server: EmbeddedServer) -> None:
    account = plain_server.new_account()
    options = settings(plain_server, account, poll_interval=timedelta(seconds=0.2))
    with Mailbox(options) as box:
        box.select()
        assert not box.supports_idle
        timer = threading.Timer(0.05, plain_server.controller.deliver, [b"S: 1\r\n\r\n.\r\n"],
                                {"user": account.username})
        timer.start()
        started = time.monotonic()
        assert box.wait(5) is True
        assert 0.1 < time.monotonic() - started < 1
        timer.join()
        assert len(box.uids_after(0)) == 1


def test_connection_dropped_by_the_server(embedded_imap: EmbeddedServer) -> None:
    account = embedded_imap.new_account()
    with Mailbox(settings(embedded_imap, account)) as box:
        box.select()
        embedded_imap.controller.drop_connections()
        with pytest.raises(Exception) as info:
            box.uids_after(0)
        assert type(info.value).__name__ == "ImapConnectionLost"
        box.connect()
        assert box.select() > 0


def test_unknown_host_is_a_connect_error() -> None:
    try:
        socket.getaddrinfo("no-such-host.invalid", 143)
    except socket.gaierror:
        pass
    else:  # pragma: no cover - a resolver that answers for .invalid
        pytest.skip("this resolver resolves .invalid names")
    box = Mailbox(settings(EmbeddedServerStub(), Account("u", "p"), host="no-such-host.invalid"))
    with pytest.raises(ImapConnectError, match="cannot connect"):
        box.connect()


class EmbeddedServerStub:
    """Only what settings() reads; nothing listens."""

    kind = "stub"
    host = "127.0.0.1"
    port = 1
    tls_port: int | None = None
    ssl_context: ssl.SSLContext | None = None

    def new_account(self) -> Account:
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    def change_uidvalidity(self, account: Account, folder: str = "INBOX") -> None:
        raise NotImplementedError
