"""Differential check: this checkout's parse_message against the base commit's, mail by mail.

    python bench/parse_check.py [--seeds 1,2,3] [--n 5000] [--mutants 20000]
                                [--recorded DIR] [--base REF]

Every input must give an InboundMessage equal in every field (headers, attachment bytes,
defects, the date's offset and the exact types included) or the same MailRejected reason on
both sides. Inputs:
- bench/mailgen.py mail, N per seed;
- the real-world corpus tests/mails/*.eml, and the truncated, garbled and edited variants of
  it that tests/mail/test_message.py feeds the parser, plus its odd inputs;
- header mutants: generated and corpus mail with one header value (From, To, Cc,
  Content-Type, Content-Disposition, Date, Message-ID ...) edited at random by inserting,
  deleting or repeating characters that matter to header syntax (quotes, commas,
  parentheses, angle brackets, semicolons, RFC 2231 stars, encoded words, folding, case);
- with --recorded DIR, every *.eml in DIR: the mails the test suite parses, as collected by
  bench/record_mails.py.
Prints counts per source, how often this checkout's quick paths answered (and how often they
handed over to the stdlib), and the first differences; exits 1 on any.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import random
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from mailgen import generate  # noqa: E402
from parse import base_ref, load_base  # noqa: E402

import daemon.mail.header_fields  # noqa: E402
import daemon.mail.header_text  # noqa: E402
import daemon.mail.message  # noqa: E402
from tests.mail.test_message import ODD_INPUTS, _variants  # noqa: E402

MAILS = ROOT / "tests" / "mails"


def canonical(value: object) -> object:
    """A structure equal for two results only when they are the same in every detail."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple((f.name, canonical(getattr(value, f.name)))
                      for f in dataclasses.fields(value)))
    if isinstance(value, MappingProxyType | dict):
        return ("map", tuple((canonical(k), canonical(v)) for k, v in value.items()))
    if isinstance(value, tuple | list):
        return (type(value).__name__, tuple(canonical(v) for v in value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat(), repr(value.tzinfo))
    return (type(value).__name__, value)


def outcome(parse: Callable[[bytes], object], raw: bytes) -> object:
    try:
        return canonical(parse(raw))
    except Exception as exc:  # MailRejected from either copy (two distinct classes)
        return ("rejected", type(exc).__name__, getattr(exc, "reason", repr(exc)))


# ------------------------------------------------------------------ header mutants

_TOKENS = ['"', '""', "\\", ",", ", ", ";", ";;", ":", "(", ")", "(c)", "<", ">", "<>", "@",
           "@@", "[", "]", " ", "  ", "\t", "\r\n ", "\r\n\t", "*", "*0*", "*=", "'", "''",
           "=", "==", "=?utf-8?q?x=C3=A9?=", "=?iso-8859-1?b?6Q==?=", "=?", "?=", ".", "..",
           "%", "%41", "\xe9", "\xc3\xa9", "\xa0", "\xc2\xa0", ".\xa0", "\xa0.", "\xa0@",
           "\xe2\x80\x83", "\x0b", "\x1c",
           "\x00", "\x7f", "group:", ";", "x@y", "a b",
           "filename=", "name=", "boundary=", "charset=", "format=flowed", "delsp=yes",
           "filename*=utf-8''%C3%A9.pdf", "name*0=a", "name*1=b", "+0100", "-0000", "GMT",
           "Mon,", "31", "Feb", "99", "24:00:61"]
_HEADER = re.compile(rb"(?im)^(from|to|cc|delivered-to|x-original-to|reply-to|sender|"
                     rb"content-type|content-disposition|content-transfer-encoding|"
                     rb"content-id|date|message-id|in-reply-to|references|subject|"
                     rb"auto-submitted|list-id|return-path)[ \t]*:([^\r\n]*)")


def mutants(raws: list[bytes], count: int, seed: int) -> Iterator[bytes]:
    """`count` copies of random `raws`, each with one header value edited."""
    rng = random.Random(seed)
    for _ in range(count):
        raw = rng.choice(raws)
        fields = list(_HEADER.finditer(raw))
        if not fields:
            continue
        field = rng.choice(fields)
        start, end = field.span(2)
        value = bytearray(raw[start:end])
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            at = rng.randint(0, len(value))
            if action < 0.6:
                value[at:at] = rng.choice(_TOKENS).encode("latin-1")
            elif action < 0.75 and value:
                del value[at:at + rng.randint(1, 4)]
            elif action < 0.85:
                value[:] = value.upper() if rng.random() < 0.5 else value.lower()
            elif action < 0.95:
                value[:] = value + b"; " + value  # duplicated parameters or addresses
            else:
                value[:] = bytes(value).replace(b"; ", b";\r\n\t")
        yield raw[:start] + bytes(value) + raw[end:]


# ------------------------------------------------------------------ quick path counts

QUICK: collections.Counter[str] = collections.Counter()


def count_quick_paths() -> None:
    """Wrap this checkout's quick paths to count how often each answered or handed over
    (None). Only where they exist: the script also runs against older checkouts."""
    message = daemon.mail.message
    for module, name in ((message, "split_tree"), (daemon.mail.header_text, "_rfc5322_date"),
                         (daemon.mail.header_fields, "simple_addresses"),
                         (daemon.mail.header_fields, "mime_params")):
        original = getattr(module, name, None)
        if original is None:
            continue

        def counted(*args: object, _original: Callable[..., object] = original,
                    _name: str = name) -> object:
            result = _original(*args)
            QUICK[f"{_name} {'quick' if result is not None else 'handed over'}"] += 1
            return result

        setattr(module, name, counted)


# ------------------------------------------------------------------ main

def sources(args: argparse.Namespace) -> Iterator[tuple[str, Iterable[bytes]]]:
    corpus = [path.read_bytes() for path in sorted(MAILS.glob("*.eml"))]
    generated: list[bytes] = []
    for seed in args.seeds:
        raws = [m.raw for m in generate(args.n, seed)]
        generated += raws[:2000]
        yield f"mailgen seed {seed}", raws
    yield "tests/mails corpus", corpus
    rng = random.Random(20260603)
    variants = [v for _ in range(3) for raw in corpus for v in _variants(raw, rng)]
    yield "corpus variants + odd inputs", ODD_INPUTS + variants
    yield "header mutants of generated mail", mutants(generated, args.mutants, 1)
    yield "header mutants of the corpus", mutants(corpus, args.mutants // 2, 2)
    if args.recorded:
        yield f"mails the tests parse ({args.recorded})", (
            path.read_bytes() for path in sorted(Path(args.recorded).glob("*.eml")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--mutants", type=int, default=20000)
    parser.add_argument("--recorded", help="folder of .eml written by bench/record_mails.py")
    parser.add_argument("--base", help="git ref to compare with (default: merge base with main)")
    args = parser.parse_args()

    ref = args.base or base_ref()
    new = daemon.mail.message.parse_message
    count_quick_paths()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        old = load_base(ref, Path(tmp)).parse_message
        print(f"base {ref[:12]} against {daemon.mail.message.__file__}")
        for label, raws in sources(args):
            checked = rejected = 0
            QUICK.clear()
            for raw in raws:
                expected, got = outcome(old, raw), outcome(new, raw)
                checked += 1
                rejected += expected[0] == "rejected"
                if expected != got:
                    failures += 1
                    if failures <= 10:
                        print(f"DIFFERENT ({label}): {raw[:300]!r}\n  base: "
                              f"{str(expected)[:1500]}\n  this: {str(got)[:1500]}")
            print(f"  {label}: {checked} mails, {rejected} rejected by both, "
                  f"{'all the same' if not failures else f'{failures} different so far'}")
            print("    " + ", ".join(f"{k} {v}" for k, v in sorted(QUICK.items())))
    print("RESULT:", "identical" if not failures else f"{failures} differences")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
