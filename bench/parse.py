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
import statistics
import subprocess
import sys
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
PARSE_MODULES = ("message", "mime_tree", "header_fields", "address_list", "reply", "html_text")


def base_ref() -> str:
    """The commit this branch started from: its merge base with main."""
    return subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def load_base(ref: str, into: Path) -> ModuleType:
    """daemon.mail.message as of `ref`, as the package `daemon_base` (its daemon.* imports
    rewritten to point at the same copies)."""
    package = into / "daemon_base"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in PARSE_MODULES:
        shown = subprocess.run(["git", "show", f"{ref}:daemon/{name}.py"], cwd=ROOT,
                               capture_output=True, text=True)
        if shown.returncode:  # a module younger than `ref`
            continue
        source = shown.stdout.replace("from daemon.", "from daemon_base.")
        source = source.replace("from daemon import", "from daemon_base import")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("daemon_base.message")


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
