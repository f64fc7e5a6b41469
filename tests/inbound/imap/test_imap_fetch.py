"""inbound/imap_fetch.py: the quick reading of a batch's FETCH responses gives what imapclient's
parser gives, both servers answer in the shape it reads, and any other shape goes to the
parser."""

from __future__ import annotations

import pytest

from daemon.inbound.imap_fetch import fetch_bodies, read_bodies
from tests.inbound.imap.servers import Account, ImapTestServer, append, client

EIGHT_BIT = ("From: ann@example.com\r\nSubject: Grüße\r\n\r\n".encode()
             + "naïve café ✓\r\n".encode() + b"latin-1: \xe9\xe8\r\n)\r\n* 9 FETCH (UID 1)\r\n")


def mails() -> list[bytes]:
    plain = [f"From: u{n}@example.com\r\nSubject: {n}\r\n\r\nBody {n}\r\n".encode()
             for n in range(3)]
    return [plain[0], EIGHT_BIT, plain[1], b"", plain[2]]


def test_both_servers_answer_in_the_quick_shape_and_agree_with_imapclient(
        imap_server: ImapTestServer, imap_account: Account) -> None:
    sent = [raw for raw in mails() if raw]
    for raw in sent:
        append(imap_server, imap_account, raw)
    with client(imap_server, imap_account) as imap:
        imap.select_folder("INBOX")
        uids = sorted(imap.search("ALL"))
        typ, data = imap._imap.uid("FETCH", ",".join(map(str, uids)), "(BODY.PEEK[])")
        assert typ == "OK"
        quick = read_bodies(data)
        assert quick is not None, f"{imap_server.kind} answered in another shape: {data[:2]!r}"
        theirs = imap.fetch(uids, ["BODY.PEEK[]"])
        assert quick == {uid: theirs[uid][b"BODY[]"] for uid in uids}
        assert [quick[uid] for uid in uids] == sent
        assert fetch_bodies(imap, [*uids, 9999]) == quick  # a UID gone is simply missing
        assert fetch_bodies(imap, []) == {}
        assert b"\\Seen" not in imap.get_flags(uids)[uids[0]]  # PEEK: still unseen


@pytest.mark.parametrize("data", [
    [(b"1 (BODY[] {3} ", b"abc"), b" UID 5)"],  # another order
    [(b"1 (UID 5 BODY[] {3}", b"abc"), b" FLAGS (\\Seen))"],  # more items
    [(b"1 (UID 5 BODY[] {3}", b"abc"), b")", b"2 (UID 6 FLAGS (\\Seen))"],  # unsolicited
    [(b"1 (UID 5 BODY[] {3}", b"abc")],  # no closing parenthesis
    [(b"1 (UID 5 BODY[] {3}", b"abc"), b"x)"],
    [b"1 (UID 5 BODY[] NIL)"],
])
def test_any_other_shape_is_left_to_the_parser(data: list[object]) -> None:
    assert read_bodies(data) is None


def test_the_expected_shape_is_read() -> None:
    data = [(b"1 (UID 5 BODY[] {3}", b"abc"), b")", (b"2 (UID 7 BODY[] {0}", b""), b")"]
    assert read_bodies(data) == {5: b"abc", 7: b""}
    assert read_bodies([None]) == {}
