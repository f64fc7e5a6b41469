"""A tiny DNS server on 127.0.0.1 for the DKIM tests: real UDP, real wire format, so the
daemon's dnspython path (timeouts, TTLs, NXDOMAIN with its SOA) runs as against a real one.
It answers TXT from a dict, counts queries, and can stay silent (a timeout) or SERVFAIL."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

NEGATIVE_TTL = 30  # the SOA minimum of our NXDOMAIN answers


@dataclass
class StubDns:
    # name: (records, ttl)
    txt: dict[str, tuple[tuple[bytes, ...], int]] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)  # never answered: the client times out
    servfail: set[str] = field(default_factory=set)
    queries: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def publish(self, name: str, *records: bytes, ttl: int = 3600) -> None:
        self.txt[name.lower()] = (records, ttl)

    def start(self) -> StubDns:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            reply = self._answer(dns.message.from_wire(data))
            if reply is not None:
                self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        self.queries[name] += 1
        if name in self.silent:
            return None
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA
        if name in self.servfail:
            reply.set_rcode(dns.rcode.SERVFAIL)
        elif name in self.txt and question.rdtype == dns.rdatatype.TXT:
            records, ttl = self.txt[name]
            reply.answer.append(dns.rrset.from_text_list(
                question.name, ttl, dns.rdataclass.IN, dns.rdatatype.TXT,
                [_quoted(r) for r in records]))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
            reply.authority.append(dns.rrset.from_text(
                "test.", 3600, dns.rdataclass.IN, dns.rdatatype.SOA,
                f"ns.test. admin.test. 1 3600 600 86400 {NEGATIVE_TTL}"))
        return reply


def _quoted(record: bytes) -> str:
    """A TXT record in zone-file form, split into strings of at most 255 bytes."""
    text = record.decode("ascii")
    return " ".join(f'"{text[i:i + 255]}"' for i in range(0, len(text), 255))
