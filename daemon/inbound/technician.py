"""Mail on an open ticket from a directory member or a vendor (issue 5): the shell side.

A member's mail, in this order:
1. authenticate (daemon/auth/sender_auth.py: signed address, our own DKIM check, a trusted
   Authentication-Results; the raw mail comes along for DKIM). Failed: no command runs,
   nothing is passed on (the mail stays on the ticket as an ordinary reply), a `security`
   event is recorded, and the member's own directory address gets `command_refused` saying
   why;
2. parse the tags of the new text (daemon/workflow/commands.py) and run each in order on the ticket
   as the previous one left it. A tag runs only if the grammar understood it, the member's
   own `commands:` list (teams.yaml) allows it, and the engine accepts it: the workflow's
   `commands:` teams, and a transition from the ticket's state. Every refusal is an event;
3. the rest of the text (tag lines removed) goes to the requester as `technician_update`,
   unless the mail holds #note, or a tag we did not understand (it may have meant #note),
   or the rest is only a greeting or a sign-off ("Regards, Jordan": daemon/mail/signoff.py);
4. one receipt per mail with commands: `command_receipt` when all were done, else
   `command_error`, listing each command's result, why a refusal happened and the syntax.

A vendor's mail is forwarded to the owning team (`vendor_reply`), never to the requester;
the vendor's tags are text, never commands.

Writes go through `Runtime.apply(..., mail=False)`: the caller renders the rows, and with
flush=False (ingest's fast path) nothing is flushed or queried here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from daemon.auth import policy as auth_policy
from daemon.auth.directory import Directory, Member, Vendor
from daemon.auth.sender_auth import AuthPolicy, Claim, Verdict, authenticate
from daemon.mail.message import InboundMessage
from daemon.mail.signoff import only_greeting_or_signoff
from daemon.outbound.attachments import ATTACH
from daemon.store import repository
from daemon.store.deferred import OutboxRow
from daemon.store.models import Ticket
from daemon.tickets.runtime import Runtime
from daemon.workflow.commands import Mistake, Parsed, Request, Vocabulary, closest, parse, syntax
from daemon.workflow.explain import may_use, usable_in
from daemon.workflow.facts import (
    CommandIssued,
    Decision,
    EventRecord,
    LinkFacts,
    MailOrder,
    TicketFacts,
    VendorReplied,
)
from daemon.workflow.mails import context
from daemon.workflow.model import Workflow
from daemon.workflow.tags import TagScan, find_tags


@dataclass(frozen=True)
class MemberSender:
    team: str
    member: Member

    @property
    def home(self) -> str:
        """The member's first directory address: their real one, and what tokens sign."""
        return self.member.addresses[0]


@dataclass(frozen=True)
class VendorSender:
    key: str
    vendor: Vendor


Sender = MemberSender | VendorSender


def identify(address: str, directory: Directory) -> Sender | None:
    """A directory member or a vendor writing from `address` (case-insensitive)."""
    found = directory.member_by_address(address)
    if found is not None:
        return MemberSender(*found)
    wanted = address.strip().lower()
    for key, vendor in directory.vendors.items():
        if vendor.address.lower() == wanted:
            return VendorSender(key, vendor)
    return None


def handle(session: Session, ticket: Ticket, msg: InboundMessage, sender: Sender,
           runtime: Runtime, now: datetime, *, flush: bool,
           raw: bytes = b"") -> tuple[str, list[OutboxRow]]:
    """The mail's effect on `ticket` (already stored); returns a detail line and the outbox
    rows to render. `raw` is the mail as received, for our own DKIM check."""
    desk = _Desk(session, ticket, msg, runtime, now, flush, raw)
    if isinstance(sender, VendorSender):
        return desk.vendor_reply(sender)
    return desk.member_mail(sender)


@dataclass(frozen=True)
class Result:
    """One command's outcome, for the receipt."""

    tag: str
    command: str
    done: bool
    detail: str
    syntax: str = ""

    def as_context(self) -> dict[str, Any]:
        return {"tag": self.tag, "command": self.command, "done": self.done,
                "detail": self.detail, "syntax": self.syntax}


@dataclass
class _Desk:
    session: Session
    ticket: Ticket
    msg: InboundMessage
    runtime: Runtime
    now: datetime
    flush: bool
    raw: bytes = b""

    # ------------------------------------------------------------ writing

    @property
    def facts(self) -> TicketFacts:
        return repository.facts(self.ticket)

    def apply(self, decision: Decision) -> list[OutboxRow]:
        return self.runtime.apply(self.session, self.ticket, decision, self.now, mail=False,
                                  flush=self.flush)

    def event(self, kind: str, reason: str, **data: Any) -> EventRecord:
        state = self.ticket.state
        return EventRecord(kind, self.msg.from_addr, state, state, reason,
                           {"message_id": self.msg.message_id, **data})

    def mail(self, template: str, to: str, event: str, **extra: Any) -> MailOrder:
        facts = self.facts
        base = context(facts, facts, event=event, actor=self.msg.from_addr,
                       reason=extra.pop("reason", ""), argument=extra.pop("argument", ""),
                       trigger=extra.pop("trigger", None))
        # The calendar (times in its zone) and whom the state waits on, as the engine's mail.
        workflow_facts = self.runtime.engine_for(self.ticket).mail_facts(facts)
        return MailOrder(template, to, {**base, **workflow_facts, **extra})

    @property
    def workflow(self) -> Workflow:
        workflows = self.runtime.config.workflows
        return workflows.get(self.ticket.workflow_name) or workflows[self.runtime.default_workflow]

    # ------------------------------------------------------------ a vendor

    def vendor_reply(self, sender: VendorSender) -> tuple[str, list[OutboxRow]]:
        """Forwarded to the owning team only; the vendor's tags are just text."""
        text = self.msg.new_text or self.msg.body_text
        record = self.event("vendor_reply", f"{sender.vendor.name} replied", vendor=sender.key)
        forward = self.mail("vendor_reply", "team", "vendor_replied", argument=text,
                            vendor=sender.key)
        before = self.ticket.state
        # The engine decides whether the answer hands the ticket back to its tier.
        moved = self.runtime.engine_for(self.ticket).handle(self.facts, VendorReplied(text),
                                                            self.now)
        rows = self.apply(replace(moved, events=(record, *moved.events),
                                  mails=(forward, *moved.mails)))
        back = f", {before} -> {self.ticket.state}" if self.ticket.state != before else ""
        return f"vendor {sender.key} replied; forwarded to {self.ticket.team}{back}", rows

    # ------------------------------------------------------------ a member

    def member_mail(self, sender: MemberSender) -> tuple[str, list[OutboxRow]]:
        verdict = authenticate(self._claim(sender), _policy(self.runtime, self.now))
        scan = find_tags(self.msg.new_text)
        if not verdict.ok:
            return self._refuse(sender, scan, verdict)
        parsed = parse(scan.commands, self._vocabulary())
        results, rows = self._run_all(sender, parsed)
        passed_on, update_rows = self._pass_on(scan, parsed)
        rows += update_rows
        if results:
            rows += self.apply(Decision(self.facts, mails=(self._receipt(results, passed_on),)))
        done = sum(r.done for r in results)
        return (f"{sender.home} ({verdict.how}): {done} done, {len(results) - done} refused"
                f"{'; text sent to the requester' if update_rows else ''}"), rows

    def _claim(self, sender: MemberSender) -> Claim:
        return auth_policy.claim(self.msg, self.raw, self.runtime.config.settings,
                                 self.ticket.ref, sender.home, self.now, self._resolved_at())

    def _resolved_at(self) -> datetime | None:
        """When the ticket stopped being worked on (a state whose clock is stopped), or None
        while it is open: signed addresses expire some days after (sender_auth)."""
        state = self.workflow.states.get(self.ticket.state)
        stopped = state is not None and (state.clock == "stopped" or state.final)
        return self.ticket.state_entered_at if stopped else None

    def _refuse(self, sender: MemberSender, scan: TagScan,
                verdict: Verdict) -> tuple[str, list[OutboxRow]]:
        """Nothing runs, nothing is passed on; the event and the member's real address say
        why. The notice names the tags only, never the (possibly forged) text."""
        tags = [f"#{c.name}" for c in scan.commands]
        # Not the member as actor: they did not act (an SLA must not count this as theirs).
        record = replace(self.event("security", f"mail in the name of {sender.member.name} "
                                    f"({self.msg.from_addr}) refused: {verdict.how}",
                                    commands=tags, claimed=self.msg.from_addr, internal=True,
                                    **({"token": verdict.token} if verdict.token else {})),
                         actor="security")
        listed = [Result(tag, tag, False, "").as_context() for tag in tags]
        notice = self.mail("command_refused", "member", "refused", reason=verdict.how,
                           member=sender.home, results=listed)
        rows = self.apply(Decision(self.facts, events=(record,), mails=(notice,)))
        return f"refused: not authenticated as {sender.home} ({verdict.how})", rows

    def _vocabulary(self) -> Vocabulary:
        wf = self.workflow
        return Vocabulary(tuple(wf.commands), tuple(wf.states), wf.priorities,
                          tuple(self.runtime.config.directory.vendors))

    # ------------------------------------------------------------ commands, in order

    def _run_all(self, sender: MemberSender,
                 parsed: Sequence[Parsed]) -> tuple[list[Result], list[OutboxRow]]:
        results: list[Result] = []
        rows: list[OutboxRow] = []
        for item in parsed:
            result, written = self._run(sender, item)
            results.append(result)
            rows += written
        return results, rows

    def _run(self, sender: MemberSender, item: Parsed) -> tuple[Result, list[OutboxRow]]:
        if isinstance(item, Mistake):
            return self._refused(item.written, item.name, item.reason, item.syntax)
        if not sender.member.may_use(item.name):
            allowed = ", ".join(f"#{c}" for c in sender.member.commands or ())
            why = (f"your entry in config/teams.yaml allows you {allowed or 'no commands'} "
                   f"only, not #{item.name}")
            return self._refused(item.written, item.name, why, syntax(item.name))
        return self._issue(sender, item)

    def _refused(self, written: str, name: str, why: str,
                 right: str) -> tuple[Result, list[OutboxRow]]:
        record = self.event("refused", why, command=written, internal=True)
        rows = self.apply(Decision(self.facts, events=(record,)))
        return Result(f"#{name}", written, False, why, right), rows

    def _issue(self, sender: MemberSender, item: Request) -> tuple[Result, list[OutboxRow]]:
        before = self.facts
        issued = self._command(sender, item)
        if isinstance(issued, str):
            return self._refused(item.written, item.name, issued, syntax(item.name))
        facts = replace(before, vendor=item.target) if item.name == "vendor" else before
        decision = self.runtime.engine_for(self.ticket).handle(facts, issued, self.now)
        if decision.refusal is not None:
            return self._refused(item.written, item.name, decision.refusal, syntax(item.name))
        if "attachments" in item.options:
            decision = _with_requester_files(decision)
        rows = self.apply(decision)
        detail = self._detail(sender, item.name, before, decision)
        return Result(f"#{item.name}", item.written, True, detail), rows

    def _command(self, sender: MemberSender, item: Request) -> CommandIssued | str:
        """The engine's event for a request, or why it cannot be made (unknown member)."""
        target, argument = item.target, item.argument
        directory = self.runtime.config.directory
        if item.name == "assign":
            address = _member_address(item.target or "", directory)
            if address is None:
                return _no_member(item.target or "", directory)
            target, argument = address, address
        if item.name == "vendor":
            target = None  # the vendor is a fact of the ticket, not a state
        command = self.workflow.commands.get(item.name)
        link = self._link_facts(target) if command and command.action == "link" else None
        return CommandIssued(item.name, self.msg.from_addr, sender.team, argument, target,
                             link=link)

    def _link_facts(self, ref: str | None) -> LinkFacts:
        """What the engine checks before `#link`: the incident's ticket (locked: its reports
        are written with it) and whether this ticket is an incident itself."""
        parent = repository.get_ticket(self.session, ref, for_update=True) if ref else None
        children = len(repository.children_of(self.session, self.ticket))
        if parent is None:
            return LinkFacts(None, children=children)
        return LinkFacts(repository.facts(parent), self.runtime.is_final(parent), children)

    def _detail(self, sender: MemberSender, name: str, before: TicketFacts,
                decision: Decision) -> str:
        after = decision.ticket
        if name == "help":
            return self._help(sender)
        if name == "status":
            return (f"{after.state}, priority {after.priority}, team {after.team or 'none'}, "
                    f"assigned to {after.assignee or 'nobody'}")
        if before.state != after.state:
            return f"moved {before.state} -> {after.state}"
        if name == "note":
            return "noted on the ticket (internal)"
        return decision.events[0].reason if decision.events else "done"

    def _help(self, sender: MemberSender) -> str:
        """The commands this member may use on this ticket now, with their syntax."""
        legal = set(self.runtime.engine_for(self.ticket).triggers_from(self.ticket.state))
        usable = [syntax(name) for name, command in self.workflow.commands.items()
                  if may_use(command, sender.team) and sender.member.may_use(name)
                  and usable_in(command, self.ticket.state)
                  and (command.trigger is None or command.trigger in legal)]
        return f"usable on {self.ticket.ref} in {self.ticket.state}:\n" + "\n".join(usable)

    # ------------------------------------------------------------ the text and the receipt

    def _pass_on(self, scan: TagScan, parsed: Sequence[Parsed]) -> tuple[str, list[OutboxRow]]:
        """The text without tag lines to the requester, unless it may be internal."""
        if not scan.text.strip():
            return "", []
        if any(p.name == "note" or (isinstance(p, Mistake) and p.suggestion == "note")
               for p in parsed):
            return ("Your text was NOT sent to the requester: the mail holds #note, so it "
                    "stays internal."), []
        if any(isinstance(p, Mistake) and p.name not in self.workflow.commands for p in parsed):
            return ("Your text was NOT sent to the requester, because the mail holds a tag we "
                    "did not understand; send it again with the tags corrected."), []
        if only_greeting_or_signoff(scan.text):
            # "#escalate ...\nRegards, Jordan" must not mail the requester "Regards, Jordan".
            return ("Your text was not sent to the requester: it was only a greeting or a "
                    "sign-off."), []
        # The reply's own files go along; the mail is stored by the time the row is rendered.
        update = self.mail("technician_update", "requester", "updated", argument=scan.text,
                           **{ATTACH: {"mail": [self.msg.message_id, self.msg.digest]}})
        record = self.event("public_update", "the technician's text was sent to the requester")
        answered = replace(self.facts, responded_at=self.facts.responded_at or self.now)
        rows = self.apply(Decision(answered, events=(record,), mails=(update,)))
        return f"Your text was sent to the requester ({self.ticket.requester}).", rows

    def _receipt(self, results: Sequence[Result], passed_on: str) -> MailOrder:
        ok = all(r.done for r in results)
        names = [r.tag.lstrip("#") for r in results if ok or not r.done]
        status = any(r.done and r.tag == "#status" for r in results)
        return self.mail("command_receipt" if ok else "command_error", "actor",
                         "status" if status else "commands", reason=passed_on,
                         trigger=", #".join(names), results=[r.as_context() for r in results])


def _with_requester_files(decision: Decision) -> Decision:
    """`#vendor NAME +attachments`: the mails to the vendor carry the requester's files
    (outbound/attachments.py reads `attach`); without it a vendor gets none."""
    mails = tuple(replace(m, context={**m.context, ATTACH: {"from": "requester"}})
                  if m.to == "vendor" else m for m in decision.mails)
    return replace(decision, mails=mails)


def _policy(runtime: Runtime, now: datetime) -> AuthPolicy:
    # sender_auth asks DKIM only after a signed address failed: DNS for no one else.
    return auth_policy.policy(runtime.config.settings, runtime.dkim, now)


def _member_address(who: str, directory: Directory) -> str | None:
    """A member's first address, by any of their addresses or their full name."""
    found = directory.member_by_address(who)
    if found is not None:
        return found[1].addresses[0]
    return next((m.addresses[0] for m in _members(directory)
                 if m.name.casefold() == who.strip().casefold()), None)


def _no_member(who: str, directory: Directory) -> str:
    guess = closest(who, [m.name for m in _members(directory)])
    hint = f"did you mean {guess}?" if guess else "write a name or address from config/teams.yaml"
    return f"there is no member {who!r}; {hint}"


def _members(directory: Directory) -> list[Member]:
    return [m for team in directory.teams.values() for m in team.members if m.addresses]
