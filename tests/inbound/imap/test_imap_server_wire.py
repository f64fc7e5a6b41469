"""The embedded server over a raw socket: the exact bytes of its responses."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import pytest

from daemon.demo.imap_server.server import Controller, StoreError

CAPS = b"IMAP4rev1 LITERAL+ SASL-IR IDLE UIDPLUS MOVE UNSELECT AUTH=PLAIN"


class Wire:
    """A line-level IMAP client that keeps every byte the server sent."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line + b"\r\n"

    def until(self, tag: bytes) -> bytes:
        """Everything up to and including the tagged response for tag."""
        out = b""
        while True:
            line = self.line()
            out += line
            if line.startswith(tag + b" "):
                return out

    def command(self, data: bytes, tag: bytes | None = None) -> bytes:
        """Send; read up to the tagged reply (tag: when data continues an earlier command)."""
        self.send(data)
        return self.until(tag or data.split(b" ", 1)[0])

    def ask(self, data: bytes) -> bytes:
        """Send and read one line: the continuation request before a literal."""
        self.send(data)
        return self.line()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[Controller]:
    with Controller({"ann": "pw"}) as controller:
        yield controller


@pytest.fixture
def wire(server: Controller) -> Iterator[Wire]:
    connection = Wire(server.port)
    yield connection
    connection.close()


def _login(wire: Wire) -> None:
    wire.line()
    assert wire.command(b"a LOGIN ann pw\r\n").startswith(b"a OK")


def test_greeting_login_and_capability(wire: Wire) -> None:
    assert wire.line() == b"* OK [CAPABILITY " + CAPS + b"] Tierdesk embedded IMAP server ready\r\n"
    assert wire.command(b"a1 CAPABILITY\r\n") == (
        b"* CAPABILITY " + CAPS + b"\r\na1 OK CAPABILITY completed\r\n")
    assert wire.command(b"a2 LOGIN ann wrong\r\n") == (
        b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    assert wire.command(b"a3 SELECT INBOX\r\n") == (
        b"a3 BAD SELECT is not allowed before LOGIN\r\n")
    assert wire.ask(b'a4 LOGIN "ann" {2}\r\n') == b"+ Ready for literal data\r\n"
    assert wire.command(b"pw\r\n", b"a4") == b"a4 OK [CAPABILITY " + CAPS + b"] Logged in\r\n"


def test_authenticate_plain_with_and_without_initial_response(server: Controller) -> None:
    token = base64.b64encode(b"\0ann\0pw")
    first, second = Wire(server.port), Wire(server.port)
    try:
        first.line()
        assert first.command(b"a AUTHENTICATE PLAIN " + token + b"\r\n").startswith(
            b"a OK [CAPABILITY")
        second.line()
        second.send(b"b AUTHENTICATE PLAIN\r\n")
        assert second.line() == b"+ \r\n"
        assert second.command(token + b"\r\n", b"b").startswith(b"b OK [CAPABILITY")
    finally:
        first.close()
        second.close()


def test_append_select_fetch_store_expunge(server: Controller, wire: Wire) -> None:
    _login(wire)
    assert wire.ask(b"a1 APPEND INBOX {5}\r\n") == b"+ Ready for literal data\r\n"
    validity = server.uidvalidity(user="ann")
    appended = wire.command(b"hello\r\n", b"a1")
    assert appended == b"a1 OK [APPENDUID %d 1] APPEND completed\r\n" % validity
    assert wire.command(b"a2 SELECT INBOX\r\n") == (
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
        b"Flags permitted.\r\n"
        b"* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UNSEEN 1] First unseen.\r\n"
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n* OK [UIDNEXT 2] Predicted next UID\r\n"
        b"a2 OK [READ-WRITE] Select completed\r\n" % validity)
    # LITERAL+: no continuation; the new mail is announced before the tagged reply.
    assert wire.command(b'a3 APPEND INBOX (\\Seen) "02-Mar-2026 09:00:00 +0100" {3+}\r\nabc\r\n') \
        == b"* 2 EXISTS\r\na3 OK [APPENDUID %d 2] APPEND completed\r\n" % validity
    assert wire.command(b"a4 UID FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[])\r\n").endswith(
        b'* 2 FETCH (UID 2 FLAGS (\\Seen) INTERNALDATE "02-Mar-2026 09:00:00 +0100" '
        b"BODY[] {3}\r\nabc)\r\na4 OK FETCH completed\r\n")
    assert wire.command(b"a5 FETCH 1 (BODY[])\r\n") == (
        b"* 1 FETCH (BODY[] {5}\r\nhello FLAGS (\\Seen))\r\na5 OK FETCH completed\r\n")
    assert wire.command(b"a6 UID STORE 1 +FLAGS (\\Deleted)\r\n") == (
        b"* 1 FETCH (FLAGS (\\Deleted \\Seen) UID 1)\r\na6 OK STORE completed\r\n")
    assert wire.command(b"a7 UID SEARCH DELETED\r\n") == b"* SEARCH 1\r\na7 OK SEARCH completed\r\n"
    assert wire.command(b"a8 UID EXPUNGE 1:2\r\n") == (
        b"* 1 EXPUNGE\r\na8 OK EXPUNGE completed\r\n")
    assert wire.command(b"a9 SEARCH ALL\r\n") == b"* SEARCH 1\r\na9 OK SEARCH completed\r\n"


def test_bad_commands(wire: Wire) -> None:
    _login(wire)
    assert wire.command(b"a1 FROB\r\n") == b"a1 BAD unknown command FROB\r\n"
    assert wire.command(b"a2 UID LIST\r\n") == b"a2 BAD unknown command UID LIST\r\n"
    assert wire.command(b"a3 FETCH 1 FLAGS\r\n") == (
        b"a3 BAD FETCH is not allowed without a selected folder\r\n")
    assert wire.command(b'a4 SELECT "INBOX\r\n') == b"a4 BAD unterminated quoted string\r\n"
    assert wire.command(b"a5 SELECT Nowhere\r\n") == b"a5 NO [TRYCREATE] no folder 'Nowhere'\r\n"
    assert wire.command(b"a6 STARTTLS\r\n") == b"a6 BAD STARTTLS is not allowed after LOGIN\r\n"
    wire.send(b"\r\n")  # empty lines are ignored
    assert wire.command(b"a7 NOOP\r\n") == b"a7 OK NOOP completed\r\n"


def test_list_create_status_and_move(server: Controller, wire: Wire) -> None:
    _login(wire)
    server.deliver(b"Subject: one\r\n\r\n1\r\n")
    assert wire.command(b"a1 CREATE Done/2026\r\n") == b"a1 OK CREATE completed\r\n"
    assert wire.command(b'a2 LIST "" "*"\r\n') == (
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
        b'* LIST (\\HasNoChildren) "/" "Done/2026"\r\na2 OK LIST completed\r\n')
    assert wire.command(b'a3 LIST "" ""\r\n') == (
        b'* LIST (\\Noselect) "/" ""\r\na3 OK LIST completed\r\n')
    wire.command(b"a4 SELECT INBOX\r\n")
    moved = wire.command(b"a5 UID MOVE 1 Done/2026\r\n")
    target = server.uidvalidity("Done/2026", user="ann")
    assert moved == (b"* OK [COPYUID %d 1 1] Moved\r\n* 1 EXPUNGE\r\na5 OK MOVE completed\r\n"
                     % target)
    assert wire.command(b"a6 STATUS Done/2026 (MESSAGES UNSEEN UIDNEXT)\r\n") == (
        b'* STATUS "Done/2026" (MESSAGES 1 UNSEEN 1 UIDNEXT 2)\r\na6 OK STATUS completed\r\n')


def test_idle_pushes_exists_and_ends_on_done(server: Controller, wire: Wire) -> None:
    _login(wire)
    wire.command(b"a1 SELECT INBOX\r\n")
    wire.send(b"a2 IDLE\r\n")
    assert wire.line() == b"+ idling\r\n"
    server.deliver(b"Subject: new\r\n\r\nx\r\n")
    assert wire.line() == b"* 1 EXISTS\r\n"
    assert wire.command(b"DONE\r\n", b"a2") == b"a2 OK IDLE terminated\r\n"


def test_other_sessions_learn_of_expunges_and_flags(server: Controller) -> None:
    server.deliver(b"Subject: a\r\n\r\na\r\n")
    server.deliver(b"Subject: b\r\n\r\nb\r\n")
    first, second = Wire(server.port), Wire(server.port)
    try:
        for wire in (first, second):
            _login(wire)
            wire.command(b"s SELECT INBOX\r\n")
        first.command(b"b1 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
        first.command(b"b2 EXPUNGE\r\n")
        second.command(b"c0 STORE 2 +FLAGS.SILENT (\\Flagged)\r\n")
        # Not during FETCH: the EXPUNGE would shift sequence numbers under the client.
        assert b"EXPUNGE" not in second.command(b"c1 FETCH 1:* (UID)\r\n")
        assert second.command(b"c2 NOOP\r\n") == b"* 1 EXPUNGE\r\nc2 OK NOOP completed\r\n"
        assert first.command(b"b3 NOOP\r\n") == (
            b"* 1 FETCH (FLAGS (\\Flagged))\r\nb3 OK NOOP completed\r\n")
    finally:
        first.close()
        second.close()


def test_too_big_literal_is_refused() -> None:
    with Controller({"ann": "pw"}, max_literal=10) as server:
        wire = Wire(server.port)
        try:
            _login(wire)
            assert wire.command(b"a1 APPEND INBOX {11}\r\n") == (
                b"a1 NO [TOOBIG] literal larger than 10\r\n")
            assert wire.command(b"a2 NOOP\r\n") == b"a2 OK NOOP completed\r\n"
        finally:
            wire.close()


def test_logout(wire: Wire) -> None:
    _login(wire)
    assert wire.command(b"z LOGOUT\r\n") == b"* BYE logging out\r\nz OK LOGOUT completed\r\n"
    assert wire.sock.recv(10) == b""


def test_python_side_helpers(server: Controller) -> None:
    uid = server.deliver(b"Subject: a\r\n\r\na\r\n", flags=["\\Seen"])
    assert [(m.uid, m.flags) for m in server.messages()] == [(uid, frozenset({"\\Seen"}))]
    assert server.folders() == ["INBOX"]
    with pytest.raises(StoreError, match="no user"):
        server.deliver(b"x", user="nobody")
    server.add_user("bea", "pw2")
    with pytest.raises(StoreError, match="exactly one"):
        server.messages()
    server.set_uidvalidity(5, user="ann")
    assert server.uidvalidity(user="ann") == 5
    assert [m.uid for m in server.messages(user="ann")] == [1]
