"""CPU per mail of `parse_message`, this checkout against a base commit, alternated.

    python bench/parse.py [N] [--seed 1] [--repeats 7] [--base REF]

N mails of bench/mailgen.py's realistic mix (the one bench/ingest.py feeds the daemon) are
parsed with this checkout's `daemon.mail.message.parse_message` and with the one of REF (default:
where this branch left main), loaded from git into a private package, round after round in
alternation so the load of a shared machine hits both sides alike. Prints process CPU time
per mail (best and median of the rounds) and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "bench"))

from mailgen import generate  # noqa: E402

import daemon.mail.message  # noqa: E402

# The modules parse_message runs; the base copy gets all of them, none from this checkout.
# Where parse_message lived: in rooms since issue 17, flat before.
MESSAGE_MODULES = ("daemon.mail.message", "daemon.message")


def base_ref() -> str:
    """The commit this branch started from: its merge base with main."""
    return subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def load_base(ref: str, into: Path) -> ModuleType:
    """The message module as of `ref`, from a copy of that commit's whole daemon/ renamed
    `daemon_base` (its daemon.* imports rewritten to point at the same copies), so that any
    layout, flat or in rooms, loads."""
    archive = subprocess.run(["git", "archive", ref, "daemon"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(into, filter="data")
    (into / "daemon").rename(into / "daemon_base")
    for path in (into / "daemon_base").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        source = re.sub(r"\bdaemon\.", "daemon_base.", source)
        path.write_text(source.replace("from daemon import", "from daemon_base import"),
                        encoding="utf-8")
    sys.path.insert(0, str(into))
    for name in MESSAGE_MODULES:
        try:
            return importlib.import_module(name.replace("daemon.", "daemon_base.", 1))
        except ModuleNotFoundError:
            continue
    raise SystemExit(f"no message module in {ref}")


def cpu_per_mail(parse: Callable[[bytes], object], raws: Sequence[bytes]) -> float:
    """Milliseconds of process CPU per mail for one pass."""
    start = time.process_time()
    for raw in raws:
        parse(raw)
    return (time.process_time() - start) * 1000 / len(raws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--base", help="git ref to compare with (default: merge base with main)")
    args = parser.parse_args()

    raws = [m.raw for m in generate(args.n, args.seed)]
    ref = args.base or base_ref()
    with tempfile.TemporaryDirectory() as tmp:
        base = load_base(ref, Path(tmp))
        sides = {"base": base.parse_message, "this": daemon.mail.message.parse_message}
        for parse in sides.values():  # warm caches (codecs, regexes) before timing
            cpu_per_mail(parse, raws[:500])
        times: dict[str, list[float]] = {name: [] for name in sides}
        for round_ in range(args.repeats):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for name in order:
                times[name].append(cpu_per_mail(sides[name], raws))
    print(f"{len(raws)} mails (seed {args.seed}), {args.repeats} rounds alternated; "
          f"base = {ref[:12]}, this = {daemon.mail.message.__file__}")
    for name, values in times.items():
        print(f"  {name:4}  best {min(values):.4f} ms/mail  median "
              f"{statistics.median(values):.4f} ms/mail  "
              f"({1000 / statistics.median(values):,.0f} mails/CPU-s)")
    ratio = statistics.median(times["this"]) / statistics.median(times["base"])
    print(f"  this/base median ratio {ratio:.3f} ({1 / ratio:.2f}x faster)")


if __name__ == "__main__":
    main()
