"""Config validation on daemon/records.py, pydantic v2 or msgspec: cost and what each reports
(issue 17).

    python bench/records.py [--base REV] [--rounds 5] [--mails 300] [--no-daemon]

Two source trees and one probe, every figure from fresh processes, rounds alternated so drift in
the machine's load hits all alike, medians printed:

- records.py: REV exported by `git archive` into a temp folder (default: the parent of the
  commit that deleted daemon/records.py), the stdlib-only stand-in for pydantic;
- pydantic: this checkout, whose models are pydantic v2 (daemon/config/frozen.py);
- msgspec: no port exists; a probe ports a slice of the settings (imap and auth sections) to
  msgspec.Struct(frozen, forbid_unknown_fields) and converts with strict=False, the lax mode.

Per candidate: (a) import time of the library alone in a bare interpreter, and of
`daemon.site.config` (model classes built) plus `load_config(tree, {})` on the shipped site;
(b) RSS of the library alone over a bare interpreter, VmRSS and VmHWM after load_config, and
the peak RSS (VmHWM polled from /proc, bench/ingest.py's way) of the running daemon:
`run.py run --once` against a Dovecot mailbox, empty and with --mails generated mails;
(c) a site with errors planted in settings.yaml, teams.yaml, the workflow and one TIERDESK_
variable: how many are reported at once, and whether each names file:line (or the variable);
(d) TIERDESK_ strings a site sets: "993" as a port, "yes" as a boolean, "10m" as a duration,
"192.0.2.53, 127.0.0.1:5353" as a list.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A bare interpreter's figures, then the library imported: what the library alone costs.
LIBRARY = r"""
import sys, time
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
before = status("VmRSS:")
started = time.perf_counter()
exec(sys.argv[1])
took = time.perf_counter() - started
print({"import_ms": took * 1000, "rss_mb": status("VmRSS:") - before})
"""
IMPORTS = {
    "records.py": "import daemon.records",
    # pydantic's package imports lazily: the names the port uses are what cost.
    "pydantic": "from pydantic import BaseModel, BeforeValidator, AfterValidator, Field, "
                "ConfigDict, SecretStr, ValidationError, ValidationInfo, InstanceOf, "
                "field_validator, model_validator",
    "msgspec": "import msgspec",
}

# The daemon's start: import the config modules (the model classes), load the site.
CONFIG = r"""
import sys, time
from pathlib import Path
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
started = time.perf_counter()
from daemon.site.config import load_config
imported = time.perf_counter()
load_config(Path(sys.argv[1]), {})
loaded = time.perf_counter()
print({"import_ms": (imported - started) * 1000, "load_ms": (loaded - imported) * 1000,
       "rss_mb": status("VmRSS:"), "hwm_mb": status("VmHWM:")})
"""

# (c): (file, text, planted mistake); plus one bad variable.
PLANTED = [
    ("config/settings.yaml", "  port: 993\n", "  port: high\n"),
    ("config/settings.yaml", "dkim: true", "dkim: maybe"),
    ("config/teams.yaml", "address: helpdesk@example.com", "address: not-an-address"),
    ("config/teams.yaml", "addresses: [sam.rivera@example.com]",
     "adresses: [sam.rivera@example.com]"),
    ("workflows/it-support.yaml", "version: 2", "version: 0"),
    ("workflows/it-support.yaml", "take: {action: take, teams: all}",
     "take: {action: grab, teams: all}"),
]
PLANTED_ENV = {"TIERDESK_SMTP_PORT": "smtp"}
ERRORS = r"""
import json, sys
from pathlib import Path
from daemon.site.config import load_config
from daemon.config.problems import ConfigError
try:
    load_config(Path(sys.argv[1]), json.loads(sys.argv[2]))
    found = []
except ConfigError as exc:
    found = [(p.file, p.line, p.message) for p in exc.problems]
print({"found": found})
"""

# (d): the variables, and what each must become.
LAX_ENV = {"TIERDESK_IMAP_PORT": "993", "TIERDESK_AUTH_DKIM": "yes",
           "TIERDESK_IMAP_TIMEOUT": "10m",
           "TIERDESK_AUTH_DNS_SERVERS": "192.0.2.53, 127.0.0.1:5353"}
LAX = r"""
import json, sys
from datetime import timedelta
from pathlib import Path
from daemon.config.settings import load_settings
took = []
for variable, value in json.loads(sys.argv[2]).items():
    try:
        s = load_settings(Path(sys.argv[1]) / "config", {variable: value})
    except Exception:
        continue
    got = {"TIERDESK_IMAP_PORT": s.imap.port, "TIERDESK_AUTH_DKIM": s.auth.dkim,
           "TIERDESK_IMAP_TIMEOUT": s.imap.timeout,
           "TIERDESK_AUTH_DNS_SERVERS": s.auth.dns_servers}[variable]
    want = {"TIERDESK_IMAP_PORT": 993, "TIERDESK_AUTH_DKIM": True,
            "TIERDESK_IMAP_TIMEOUT": timedelta(minutes=10),
            "TIERDESK_AUTH_DNS_SERVERS": ("192.0.2.53", "127.0.0.1:5353")}[variable]
    if got == want:
        took.append(variable)
print({"took": took})
"""

# msgspec: the slice of the settings, the planted mistakes that fall in it, the same strings.
MSGSPEC = r"""
import sys
from datetime import timedelta
from typing import Annotated, Literal
import msgspec

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
class Imap(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "localhost"
    port: Port = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    # msgspec reads ISO 8601 ("PT10M"); "10m" would need a custom type and dec_hook.
    timeout: timedelta = timedelta(seconds=30)
class Auth(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    dkim: bool = True
    trusted_headers: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1
    dns_servers: tuple[str, ...] = ()
class Smtp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    port: Port = 465
class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    imap: Imap = Imap()
    auth: Auth = Auth()
    smtp: Smtp = Smtp()

bad = {"imap": {"port": "high", "colour": "red"}, "auth": {"dkim": "maybe"},
       "smtp": {"port": "smtp"}}
try:
    msgspec.convert(bad, Settings, strict=False)
    reported = []
except msgspec.ValidationError as exc:
    reported = [str(exc)]
cases = {"TIERDESK_IMAP_PORT": ({"imap": {"port": "993"}}, lambda s: s.imap.port == 993),
         "TIERDESK_AUTH_DKIM": ({"auth": {"dkim": "yes"}}, lambda s: s.auth.dkim is True),
         "TIERDESK_IMAP_TIMEOUT": ({"imap": {"timeout": "10m"}},
                                   lambda s: s.imap.timeout == timedelta(minutes=10)),
         "TIERDESK_AUTH_DNS_SERVERS": ({"auth": {"dns_servers": "192.0.2.53, 127.0.0.1:5353"}},
                                       lambda s: len(s.auth.dns_servers) == 2)}
took = []
for variable, (data, ok) in cases.items():
    try:
        if ok(msgspec.convert(data, Settings, strict=False)):
            took.append(variable)
    except msgspec.ValidationError:
        pass
print({"reported": reported, "planted": len(bad["imap"]) + 2, "took": took})
"""


def child(code: str, *args: str, cwd: Path = ROOT) -> dict:
    """Run `code` in a fresh interpreter whose sys.path starts with `cwd` (the tree)."""
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, check=True,
                         capture_output=True, text=True).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


def has_msgspec() -> bool:
    try:
        child("import msgspec; print({})")
    except subprocess.CalledProcessError:
        return False
    return True


@contextmanager
def exported(rev: str) -> Iterator[Path]:
    """REV's files in a temp folder (git archive: no worktree is added)."""
    with tempfile.TemporaryDirectory(prefix="tierdesk-records-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        yield Path(tmp)


def default_base() -> str:
    deleted = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H", "--diff-filter=D", "--",
         "daemon/records.py"], check=True, capture_output=True, text=True).stdout.strip()
    if not deleted:
        sys.exit("daemon/records.py was never deleted here: give --base REV")
    return f"{deleted}^"


def median(rows: list[dict], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def rounds(names: list[str], count: int, measure: Callable[[str], dict]) -> dict[str, list]:
    """`measure` per name, `count` times, the order reversed every other round."""
    found: dict[str, list] = {name: [] for name in names}
    for r in range(count):
        for name in names if r % 2 == 0 else names[::-1]:
            found[name].append(measure(name))
    return found


def planted_site(tree: Path, folder: Path) -> Path:
    site = folder / "planted"
    for name in ("config", "workflows", "mail_templates"):
        shutil.copytree(tree / name, site / name)
    for rel, old, new in PLANTED:
        path = site / rel
        text = path.read_text()
        assert text.count(old) == 1, (rel, old)
        path.write_text(text.replace(old, new))
    return site


def errors_figure(tree: Path, folder: Path) -> str:
    site = planted_site(tree, folder)
    found = child(ERRORS, str(site), json.dumps(PLANTED_ENV), cwd=tree)["found"]
    planted = len(PLANTED) + len(PLANTED_ENV)
    located = sum(1 for file, line, _ in found if line > 0 or file.startswith("TIERDESK_"))
    return f"{len(found)}/{planted} at once, {located} with file:line or variable"


def daemon_figures(trees: dict[str, Path], mails: int, count: int) -> dict[str, list]:
    """Peak RSS of `run --once` per tree: an empty mailbox, then one with `mails` mails."""
    sys.path.insert(0, str(ROOT / "bench"))
    import ingest
    from mailgen import generate

    found: dict[str, list] = {name: [] for name in trees}
    with ingest.dovecot() as server, tempfile.TemporaryDirectory(prefix="tierdesk-rss-") as tmp:
        folder = Path(tmp)
        site = ingest.make_site(folder, server)
        empty, full = server.new_account(), ingest.load(server, generate(mails, 1)).account
        for r in range(count):
            for name in list(trees) if r % 2 == 0 else list(trees)[::-1]:
                ingest.ROOT = trees[name]  # run_once starts this tree's run.py
                runs = [ingest.run_once(site, site.env(account, folder / f"{r}{name}{n}.db"),
                                        folder / f"{r}{name}{n}.err").rss_mb
                        for n, account in enumerate((empty, full))]
                found[name].append({"empty": runs[0], "full": runs[1]})
                print(f"  daemon round {r + 1} {name}: peak {runs[0]:.1f} MB empty, "
                      f"{runs[1]:.1f} MB with {mails} mails", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", help="the tree on daemon/records.py (default: the parent of "
                        "the commit that deleted it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--no-daemon", action="store_true", help="skip the run --once figures")
    args = parser.parse_args()
    base = args.base or default_base()
    with exported(base) as old, tempfile.TemporaryDirectory() as tmp:
        trees = {"records.py": old, "pydantic": ROOT}
        names = [*trees, *(["msgspec"] if has_msgspec() else [])]
        print(f"records.py: {base}; pydantic: this checkout; msgspec: "
              f"{'a probe' if 'msgspec' in names else 'not installed'}; "
              f"{args.rounds} rounds", flush=True)
        library = rounds(names, args.rounds, lambda name: child(
            LIBRARY, IMPORTS[name], cwd=trees.get(name, ROOT)))
        config = rounds(list(trees), args.rounds,
                        lambda name: child(CONFIG, str(ROOT), cwd=trees[name]))
        errors = {name: errors_figure(tree, Path(tmp) / name) for name, tree in trees.items()}
        lax = {name: child(LAX, str(ROOT), json.dumps(LAX_ENV), cwd=tree)["took"]
               for name, tree in trees.items()}
        probe = child(MSGSPEC) if "msgspec" in names else None
        daemon = {} if args.no_daemon else daemon_figures(trees, args.mails, args.rounds)
    print(f"\n{'':<11}{'library alone':>22}{'import config + load':>24}"
          f"{'RSS after load / peak':>24}{'run --once peak RSS':>26}")
    for name in names:
        lib = (f"{median(library[name], 'import_ms'):5.0f} ms "
               f"{median(library[name], 'rss_mb'):+6.1f} MB")
        if name in trees:
            cfg = (f"{median(config[name], 'import_ms'):6.0f} + "
                   f"{median(config[name], 'load_ms'):4.0f} ms")
            rss = (f"{median(config[name], 'rss_mb'):6.1f} / "
                   f"{median(config[name], 'hwm_mb'):5.1f} MB")
            run = (f"{median(daemon[name], 'empty'):5.1f} / {median(daemon[name], 'full'):5.1f}"
                   f" MB" if daemon else "skipped")
        else:
            cfg = rss = run = "(no port)"
        print(f"{name:<11}{lib:>22}{cfg:>24}{rss:>24}{run:>26}")
    if daemon:
        print(f"(run --once: empty mailbox / {args.mails} mails; median of {args.rounds})")
    print("\nall problems at once (planted: 2 in settings.yaml, 2 in teams.yaml, 2 in the "
          "workflow, 1 variable):")
    for name in trees:
        print(f"  {name:<11}{errors[name]}")
    if probe:
        print(f"  {'msgspec':<11}{len(probe['reported'])}/{probe['planted']} at once (the "
              f"settings slice): {probe['reported'][0]!r}")
    shown = ", ".join(repr(v) for v in LAX_ENV.values())
    print(f"\nlax coercion of TIERDESK_ strings ({shown}):")
    for name in trees:
        print(f"  {name:<11}{len(lax[name])}/{len(LAX_ENV)} taken")
    if probe:
        missed = [LAX_ENV[v] for v in LAX_ENV if v not in probe["took"]]
        print(f"  {'msgspec':<11}{len(probe['took'])}/{len(LAX_ENV)} taken (strict=False); "
              f"refused: {', '.join(repr(m) for m in missed)}")


if __name__ == "__main__":
    main()
