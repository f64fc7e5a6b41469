"""`explain`'s authentication section: for a member's mail, every way of proof sender_auth
knows, in its order, with what it found, so an admin sees which one counted and why the
others did not (issue 16). Built from the same policy and claim as ingest (policy.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.auth.policy import claim, dkim_verifier, policy
from daemon.auth.sender_auth import attempts

if TYPE_CHECKING:
    from daemon.auth.directory import Directory
    from daemon.auth.dkim_check import DkimVerifier
    from daemon.cli.explain import Explanation
    from daemon.config.settings import Settings


@dataclass(frozen=True)
class AuthReport:
    """Which proof of the sender counted for a member's mail, and why the others did not."""

    sender: str  # who the From is in the directory, or why nothing is judged
    ticket: str  # the ticket the tokens are checked for, and how it was found
    attempts: tuple[tuple[str, bool, str], ...] = ()  # (method, ok, why)

    @property
    def counted(self) -> str | None:
        return next((f"{name}: {why}" for name, ok, why in self.attempts if ok), None)

    def as_json(self) -> dict[str, Any]:
        return {"sender": self.sender, "ticket": self.ticket, "counted": self.counted,
                "attempts": [{"method": name, "ok": ok, "why": why}
                             for name, ok, why in self.attempts]}

    def as_text(self) -> str:
        lines = ["authentication (commands run only for a directory member whose mail is "
                 "proven theirs):", f"  sender:  {self.sender}", f"  ticket:  {self.ticket}"]
        lines += [f"  {n}. {name}: {'counts' if ok else 'no'}: {why}"
                  for n, (name, ok, why) in enumerate(self.attempts, 1)]
        if self.attempts:
            lines.append(f"  counted: {self.counted or 'nothing: its commands would be refused'}")
        return "\n".join(lines)


def judge(settings: Settings, config_dir: Path, now: datetime) -> Callable[
        [Explanation, bytes], AuthReport | None]:
    """The judge `explain_command` calls; the directory is read only if the site has one."""
    def run(result: Explanation, raw: bytes) -> AuthReport | None:
        directory = _directory(config_dir / "teams.yaml")
        if directory is None:
            return None
        return report(result, raw, settings, directory, dkim_verifier(settings), now)
    return run


def report(result: Explanation, raw: bytes, settings: Settings, directory: Directory,
           dkim: DkimVerifier | None, now: datetime) -> AuthReport:
    msg = result.message
    found = directory.member_by_address(msg.from_addr) if msg.from_addr else None
    if found is None:
        return AuthReport(f"{msg.from_addr or '(no From address)'} is not a directory member: "
                          "its tags are never run as commands", "-")
    team, member = found
    sender = f"{msg.from_addr}: {member.name} of team {team}"
    ref, how = _ticket(result)
    if ref is None:
        return AuthReport(sender, how)
    # The expiry after resolve needs the ticket's state: the daemon checks it, explain not.
    mail = claim(msg, raw, settings, ref, member.addresses[0], now)
    tried = tuple((name, verdict.ok, verdict.how)
                  for name, verdict in attempts(mail, policy(settings, dkim, now)))
    return AuthReport(sender, f"{ref} ({how})", tried)


def _ticket(result: Explanation) -> tuple[str | None, str]:
    keys = result.keys
    if keys.plus_refs:
        return keys.plus_refs[0].ref, "from the reply address"
    if keys.subject_refs:
        return keys.subject_refs[0], "from the subject; replied-to ids are looked up only by " \
                                     "the daemon"
    return None, "none found in the reply address or subject: a member's mail that names no " \
                 "ticket opens none and runs no commands"


def _directory(path: Path) -> Directory | None:
    if not path.is_file():
        return None
    from daemon.auth.directory import load_directory
    return load_directory(path)
