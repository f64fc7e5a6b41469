"""The `tierdesk` command line (also `python run.py`): check, graph, tickets, show, run.

Every mistake a user can make (bad config, bad arguments, no database, unknown ticket)
ends as one readable line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from daemon.cli.common import (
    PROG,
    UserError,
    declared_states,
    load_root,
    load_settings_only,
    require_site,
    user_message,
)
from daemon.clock.now import utc_now
from daemon.config.problems import ConfigError

if TYPE_CHECKING:
    from daemon.site.config import Config
    from daemon.workflow.model import Workflow


# ------------------------------------------------------------------ check

def cmd_check(args: argparse.Namespace) -> int:
    from daemon.config.settings import auth_warnings

    try:
        config = load_root(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        files = len({p.file for p in exc.problems})
        print(f"{_plural(len(exc.problems), 'problem')} in {_plural(files, 'file')}")
        return 1
    warnings = auth_warnings(config.settings, args.config / "config", os.environ)
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"ok: {_plural(len(config.workflows), 'workflow')}, "
          f"{_plural(len(config.directory.teams), 'team')}, "
          f"{_plural(len(config.templates), 'template')}"
          + (f" ({_plural(len(warnings), 'warning')})" if warnings else ""))
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ------------------------------------------------------------------ graph

def cmd_graph(args: argparse.Namespace) -> int:
    from daemon.workflow.graph import render

    config = load_root(args.config)
    workflow = _pick_workflow(config, args.workflow)
    data = render(workflow, args.format)
    if args.output:
        args.output.write_bytes(data)
        print(f"wrote {args.output} ({args.format}, {workflow.name} v{workflow.version})",
              file=sys.stderr)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0


def _pick_workflow(config: Config, name: str | None) -> Workflow:
    names = ", ".join(sorted(config.workflows))
    if name is None:
        if len(config.workflows) == 1:
            return next(iter(config.workflows.values()))
        raise UserError(f"there are several workflows ({names}); pick one with --workflow")
    if name not in config.workflows:
        raise UserError(f"no workflow named {name!r}; known: {names}")
    return config.workflows[name]


# ------------------------------------------------------------------ run

def cmd_run(args: argparse.Namespace) -> int:
    if not args.once:
        return _run_service(args)
    from daemon.service.app import Parts, run_once
    from daemon.service.gc_tuning import settle_after_startup
    from daemon.store.database import open_and_migrate

    # --once reports each part in one line of its own; the loops' logs would say it twice.
    logging.basicConfig(level=logging.ERROR, format=f"{PROG}: %(name)s: %(message)s")

    config = load_root(args.config)
    database = open_and_migrate(config.settings.database.url)
    try:
        workflows = ", ".join(f"{wf.name} v{wf.version}" for wf in config.workflows.values())
        print(f"tierdesk: database {database.safe_url}, workflow {workflows}", flush=True)
        parts = Parts.build(config, database)
        settle_after_startup()
        return 0 if run_once(parts) else 1
    finally:
        database.close()


def _run_service(args: argparse.Namespace) -> int:
    """The daemon: logs on stderr, until SIGTERM or SIGINT (daemon/service/daemon.py)."""
    from daemon.service.daemon import run_service
    from daemon.service.logs import setup_logging
    from daemon.service.reload import snapshot
    from daemon.store.database import open_and_migrate

    setup_logging(args.log_format)
    files = snapshot(args.config)  # before loading: an edit made meanwhile still reloads
    config = load_root(args.config)
    database = open_and_migrate(config.settings.database.url)
    try:
        return run_service(args.config, config, database, files)
    finally:
        database.close()


# ------------------------------------------------------------------ demo

def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo.run import run_demo

    require_site(args.config)  # the same one line as every command for a folder with none
    return run_demo(args.config, keep=args.keep)


def shipped_site() -> Path:
    from daemon.site.shipped import shipped_root

    return shipped_root()


# ------------------------------------------------------------------ init

def cmd_init(args: argparse.Namespace) -> int:
    from daemon.cli.init import init_command

    return init_command(args.dir)


# ------------------------------------------------------------------ simulate

def cmd_simulate(args: argparse.Namespace) -> int:
    from daemon.clock.business_hours import calendar_clock
    from daemon.clock.simulate import forecast, render
    from daemon.workflow.engine import Engine
    from daemon.workflow.facts import NewTicket

    config = load_root(args.config)
    workflow = _pick_workflow(config, args.workflow)
    if args.priority is not None and args.priority not in workflow.priorities:
        raise UserError(f"unknown priority {args.priority!r}; use one of "
                        f"{', '.join(workflow.priorities)}")
    zone = config.settings.calendars["default"].timezone
    at = _local_time(args.at, zone, args.clock)
    engine = Engine(workflow, calendar_clock(config.settings.calendars))
    report = NewTicket("TD-0", args.sender, args.subject, args.body)
    print(f"{workflow.name} v{workflow.version}, a new ticket at {at:%a %Y-%m-%d %H:%M %Z}, "
          "if nobody acts:")
    print(render(forecast(engine, workflow, report, at, args.priority), zone))
    return 0


def _local_time(text: str | None, zone: tzinfo, clock: Callable[[], datetime]) -> datetime:
    if text is None:
        return clock().astimezone(zone)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--at {text!r} is not a time; write e.g. \"2026-12-24 16:30\"") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


# ------------------------------------------------------------------ tickets, show

def cmd_tickets(args: argparse.Namespace) -> int:
    from daemon.cli.store import list_command

    return list_command(load_settings_only(args.config), state=args.state, as_json=args.json,
                        now=args.clock(), known_states=declared_states(args.config))


def cmd_show(args: argparse.Namespace) -> int:
    from daemon.cli.store import show_command

    try:
        config = load_root(args.config)  # for the SLA section; the timeline needs none of it
    except ConfigError:
        config = None
    return show_command(load_settings_only(args.config), args.ref, config, now=args.clock())


def cmd_outbox(args: argparse.Namespace) -> int:
    from daemon.cli.outbox import outbox_main

    return outbox_main(load_settings_only(args.config), args.action, args.id, args.json,
                       now=args.clock())


def cmd_quarantine(args: argparse.Namespace) -> int:
    from daemon.cli.quarantine import quarantine_main

    return quarantine_main(args.config, os.environ, args.action, args.id, as_json=args.json,
                           include_retried=args.all, now=args.clock())


def cmd_release(args: argparse.Namespace) -> int:
    from daemon.cli.release import release_command

    return release_command(load_settings_only(args.config), args.address, now=args.clock())


def cmd_similar(args: argparse.Namespace) -> int:
    from daemon.cli.similar import similar_command

    try:
        directory = load_root(args.config).directory  # the fixers' names
    except ConfigError:
        directory = None  # a typo in a template must not hide the knowledge: addresses
    return similar_command(load_settings_only(args.config), directory, args.ref,
                           as_json=args.json, limit=args.limit, now=args.clock())


# ------------------------------------------------------------------ status

def cmd_status(args: argparse.Namespace) -> int:
    from daemon.cli.status import status_command

    return status_command(args.config, as_json=args.json, health_only=args.health,
                          now=args.clock())


# ------------------------------------------------------------------ explain

def cmd_explain(args: argparse.Namespace) -> int:
    from daemon.cli.explain import explain_command
    from daemon.cli.explain_auth import judge

    settings = load_settings_only(args.config)
    auth = judge(settings, args.config / "config", args.clock())
    if not args.store:
        return explain_command(settings, args.file, as_json=args.json, judge=auth)
    from daemon.cli.store import reading
    from daemon.store.messages import stored_copies

    with reading(settings) as session:
        return explain_command(settings, args.file, as_json=args.json, judge=auth,
                               lookup=lambda mid: stored_copies(session, "in", mid))


# ------------------------------------------------------------------ parsing and errors

class _Parser(argparse.ArgumentParser):
    """Bad arguments give one line (plus the hint to use --help), not the whole usage."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


CONFIG_HELP = ("folder holding config/, workflows/ and mail_templates/ "
               "(default: the current directory; for demo, the shipped site)")


def version() -> str:
    """The installed package's version; a bare checkout (`python run.py`) has no metadata."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("tierdesk")
    except PackageNotFoundError:
        from daemon import __version__

        return __version__


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 50:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 1 to 50")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Email-integrated IT support escalation daemon.")
    parser.add_argument("--version", action="version", version=f"{PROG} {version()}",
                        help="print the version and exit")
    # --config is accepted before the command as well as after it. The subcommands' copy
    # has no default (SUPPRESS): argparse would otherwise overwrite a value given before the
    # command with the subcommand's default.
    # default None: each command says where its site is without one (default_site below).
    parser.add_argument("--config", type=Path, default=None, metavar="DIR",
                        help=CONFIG_HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="DIR",
                        help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> _Parser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler, default_site=Path)  # Path() is the current folder
        return sub  # type: ignore[return-value]

    add("check", cmd_check, "validate config, workflows and templates")
    graph = add("graph", cmd_graph, "draw a workflow")
    graph.add_argument("--format", choices=("mermaid", "dot", "svg"), default="mermaid",
                       help="mermaid or dot text, or an SVG image (default: %(default)s)")
    graph.add_argument("--workflow", metavar="NAME", help="which workflow (if several)")
    graph.add_argument("-o", "--output", type=Path, metavar="FILE",
                       help="write here instead of standard output")
    tickets = add("tickets", cmd_tickets, "list tickets")
    tickets.add_argument("--state", metavar="S", help="only tickets in this state")
    tickets.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    show = add("show", cmd_show, "one ticket and its whole timeline")
    show.add_argument("ref", metavar="REF", help="a ticket reference such as TD-1234")
    outbox = add("outbox", cmd_outbox, "pending, parked and recently sent mail; "
                 "`outbox retry ID` requeues a parked one")
    outbox.add_argument("action", nargs="?", choices=("retry",), help="requeue a parked mail")
    outbox.add_argument("id", nargs="?", type=int, metavar="ID", help="the outbox row to retry")
    outbox.add_argument("--json", action="store_true", help="JSON instead of tables")
    demo = add("demo", cmd_demo, "the whole product offline: embedded IMAP and SMTP servers, "
                                 "a temporary store and a scripted story")
    demo.add_argument("--keep", action="store_true",
                      help="leave the servers running and say how to connect a mail client")
    # The shipped site unless --config names one: the demo works from any folder.
    demo.set_defaults(default_site=shipped_site)
    init = add("init", cmd_init, "write a new site (config/, workflows/, mail_templates/) "
                                 "from the shipped one into DIR, to edit")
    init.add_argument("dir", type=Path, metavar="DIR",
                      help="where to write it; a new or existing folder (nothing is overwritten)")
    quarantine = add("quarantine", cmd_quarantine, "mail that could not be processed; "
                     "`quarantine show ID` prints one's headers, `quarantine retry ID` "
                     "processes it again")
    quarantine.add_argument("action", nargs="?", choices=("show", "retry"),
                            help="show one mail's headers, or process it again "
                                 "(default: list them all)")
    quarantine.add_argument("id", nargs="?", type=int, metavar="ID",
                            help="a quarantined mail's ID")
    quarantine.add_argument("--json", action="store_true", help="JSON instead of a table")
    quarantine.add_argument("--all", action="store_true",
                            help="also list mail already processed on retry")
    release = add("release", cmd_release, "let an address held at "
                  "mail.max_new_tickets_per_hour open tickets again")
    release.add_argument("address", metavar="ADDRESS", help="the held address, e.g. as "
                         "`status` lists it")
    similar = add("similar", cmd_similar, "the tickets like one ticket: look-alikes opened "
                  "shortly before it, and resolved ones with how they were fixed")
    similar.add_argument("ref", metavar="REF", help="a ticket reference such as TD-1234")
    similar.add_argument("--json", action="store_true", help="one JSON object instead of text")
    similar.add_argument("--limit", type=_count, metavar="N",
                         help="list up to N of each (default: duplicates.max look-alikes and "
                              "duplicates.past_fixes past fixes)")
    simulate = add("simulate", cmd_simulate,
                   "when a new ticket's reminders, warnings and escalations would fire")
    simulate.add_argument("--priority", metavar="P", help="force this priority (default: triage)")
    simulate.add_argument("--at", metavar="TIME",
                          help='when the mail arrives, e.g. "2026-12-24 16:30" in the default '
                               "calendar's time zone (default: now)")
    simulate.add_argument("--subject", default="Something is broken", metavar="TEXT",
                          help="the mail's subject, which triage rules read "
                               "(default: %(default)s)")
    simulate.add_argument("--body", default="", metavar="TEXT",
                          help="the mail's body, which triage rules read (default: empty)")
    simulate.add_argument("--sender", default="someone@example.com", metavar="ADDRESS",
                          help="who writes the mail (default: %(default)s)")
    simulate.add_argument("--workflow", metavar="NAME", help="which workflow (if several)")
    explain = add("explain", cmd_explain,
                  "what Tierdesk makes of one raw mail (no store, no server)")
    explain.add_argument("file", type=Path, metavar="FILE", help="a raw mail, e.g. a .eml file")
    explain.add_argument("--json", action="store_true", help="one JSON object instead of text")
    explain.add_argument("--store", action="store_true",
                         help="also read the store: was this mail processed already, or does "
                              "it reuse the Message-ID of another mail?")
    status = add("status", cmd_status, "daemons, loops, mailbox, outbox, quarantine and "
                 "tickets at a glance; exit 1 when something needs attention, 2 when unknown")
    status.add_argument("--json", action="store_true", help="one JSON object instead of text")
    status.add_argument("--health", action="store_true",
                        help="exit 1 only for a sick service, not for parked or quarantined "
                             "mail or overdue tickets (for systemd, Docker, Nagios)")
    run = add("run", cmd_run, "run the daemon")
    run.add_argument("--once", action="store_true",
                     help="process all pending work, then exit")
    run.add_argument("--log-format", choices=("human", "json"), default="human",
                     help="log lines for a person (default) or one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None, *,
         clock: Callable[[], datetime] = utc_now) -> int:
    """`clock` is the seam the commands read "now" from (tests pass their own)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a bad argument already reported
        return exc.code if isinstance(exc.code, int) else 2
    args.clock = clock
    if args.config is None:
        args.config = args.default_site()
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{PROG}: the configuration has {_plural(len(exc.problems), 'problem')} "
              f"(run `{PROG} check` for the list)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = user_message(exc)
        if message is None:
            raise
        print(f"{PROG}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
