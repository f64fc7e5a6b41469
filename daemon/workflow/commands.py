"""The grammar of technician command tags (issue 5). Pure: the tags `daemon.workflow.tags.find_tags`
found in a reply's new text, and the names the workflow and directory know, in; one parsed
request or one mistake (with the right syntax and a "did you mean") per tag out, in order.

    #take                            #assign <member>
    #route <tier> [reason]
    #escalate [to <tier>] [reason]   #deescalate [to <tier>] [reason]
    #priority P1..P4 [reason]        #vendor <name> [+attachments] [what to ask]
    #wait [reason]                   #resolve <summary>
    #reopen                          #note <text>
    #status                          #help
    #link <ticket>                   #unlink

Tag names are case-insensitive (find_tags lower-cases them), so are tiers, priorities and
vendor names. `to <tier>` is a target only when it names a state; `#escalate to save time`
is a reason, while a near miss (`to tier4`) is a mistake rather than a silent default.
Which tags exist, and which trigger or action each runs, is the workflow's `commands:` map;
a tag the workflow adds beyond these reads `[to <state>] [text]`.

Options are words of the form `+word` a tag accepts (OPTIONS), anywhere among its arguments:
they end up in `Request.options`, never in the argument (`#vendor vpnco +attachments is it
patched?` asks the vendor "is it patched?"). `+1` or `+49 30 ...` are text, not options.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from daemon.workflow.tags import Command

CUTOFF = 0.6  # difflib similarity for "did you mean"
NEAR_MISS = 0.75  # `to tier4`: so close to a state that it is a typo, not a reason
# Options each tag accepts (`+attachments`: the vendor handoff carries the requester's files).
OPTIONS: dict[str, tuple[str, ...]] = {"vendor": ("attachments",)}
_OPTION = re.compile(r"\+([A-Za-z][A-Za-z_-]*)[:,.]?")


@dataclass(frozen=True)
class Vocabulary:
    """Names the grammar checks against: the workflow's commands, states and priorities, and
    the directory's vendors (keys)."""

    commands: tuple[str, ...]
    states: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    vendors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Request:
    """A well-formed command; `target` is the tier, member, vendor or priority it names."""

    name: str
    argument: str
    target: str | None
    written: str
    line_no: int
    options: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Mistake:
    """A tag that cannot run as written: why, the right syntax, and maybe a better name."""

    name: str
    written: str
    line_no: int
    reason: str
    syntax: str = ""
    suggestion: str | None = None


Parsed = Request | Mistake
_Parse = Callable[[Command, Vocabulary], Parsed]


def written(tag: Command) -> str:
    return f"#{tag.name} {tag.argument_text}".rstrip()


def parse(tags: Sequence[Command], vocabulary: Vocabulary) -> tuple[Parsed, ...]:
    return tuple(parse_one(tag, vocabulary) for tag in tags)


def parse_one(tag: Command, vocabulary: Vocabulary) -> Parsed:
    if tag.name not in vocabulary.commands:
        return _unknown(tag, vocabulary)
    _, parser = GRAMMAR.get(tag.name, (None, _free))
    accepted = OPTIONS.get(tag.name, ())
    if not accepted:  # a tag without options reads `+word` as text, as it always did
        return parser(tag, vocabulary)
    text, options, problem = _options(tag.argument_text, accepted)
    if problem is not None:
        return _mistake(tag, problem, _option_guess(problem, accepted))
    parsed = parser(Command(tag.name, text, tag.line_no), vocabulary)
    if isinstance(parsed, Mistake):  # as the mail wrote it, options and all
        return replace(parsed, written=written(tag))
    return replace(parsed, written=written(tag), options=options)


def _options(text: str, accepted: tuple[str, ...]) -> tuple[str, frozenset[str], str | None]:
    """The argument text without its `+word` options, the options, and why not when the
    tag does not take one of them."""
    words = text.split(" ")
    found = [_OPTION.fullmatch(word) for word in words]
    if not any(found):
        return text, frozenset(), None
    options = {match[1].lower() for match in found if match is not None}
    for option in sorted(options - set(accepted)):
        known = ", ".join(f"+{o}" for o in accepted)
        return text, frozenset(), f"+{option} is not an option of this command; known: {known}"
    kept = " ".join(word for word, match in zip(words, found, strict=True) if match is None)
    return kept.strip(), frozenset(options), None


def _option_guess(problem: str, accepted: tuple[str, ...]) -> str | None:
    guess = closest(problem.split(" ", 1)[0].lstrip("+"), accepted)
    return f"+{guess}" if guess else None


def syntax(name: str) -> str:
    """How to write the tag, e.g. `#escalate [to <tier>] [reason]`."""
    spelled, _ = GRAMMAR.get(name, (f"#{name} [to <state>] [text]", _free))
    return spelled


def closest(word: str, choices: Sequence[str], cutoff: float = CUTOFF) -> str | None:
    found = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], 1, cutoff)
    return next((c for c in choices if found and c.lower() == found[0]), None)


def _unknown(tag: Command, vocabulary: Vocabulary) -> Mistake:
    guess = closest(tag.name, vocabulary.commands)
    if guess is not None:
        why = f"#{tag.name} is not a command; did you mean #{guess}?"
        return Mistake(tag.name, written(tag), tag.line_no, why, syntax(guess), guess)
    known = ", ".join(f"#{name}" for name in vocabulary.commands)
    return Mistake(tag.name, written(tag), tag.line_no,
                   f"#{tag.name} is not a command; known commands: {known}")


def _mistake(tag: Command, why: str, suggestion: str | None = None) -> Mistake:
    return Mistake(tag.name, written(tag), tag.line_no, why, syntax(tag.name), suggestion)


def _request(tag: Command, argument: str, target: str | None = None) -> Request:
    return Request(tag.name, argument.strip(), target, written(tag), tag.line_no)


# ------------------------------------------------------------------ one parser per shape

def _plain(tag: Command, vocabulary: Vocabulary) -> Parsed:
    """No argument needed; anything written is kept as the reason."""
    return _request(tag, tag.argument_text)


def _needs(what: str) -> _Parse:
    def parse_text(tag: Command, vocabulary: Vocabulary) -> Parsed:
        if not tag.argument_text.strip():
            return _mistake(tag, f"#{tag.name} needs {what}")
        return _request(tag, tag.argument_text)
    return parse_text


def _free(tag: Command, vocabulary: Vocabulary) -> Parsed:
    """`[to <state>] [text]`."""
    words = tag.argument_text.split(None, 2)
    if len(words) < 2 or words[0].lower() != "to":
        return _request(tag, tag.argument_text)
    state = next((s for s in vocabulary.states if s.lower() == words[1].lower()), None)
    if state is not None:
        return _request(tag, words[2] if len(words) > 2 else "", state)
    near = closest(words[1], vocabulary.states, NEAR_MISS)
    if near is not None:
        return _mistake(tag, f"there is no tier {words[1]!r}; did you mean {near}?")
    return _request(tag, tag.argument_text)  # "to save time": part of the reason


def _target_words(tag: Command) -> list[str]:
    """`[to] <target> [rest]` as [target, rest], [target] or []: "to" is optional."""
    words = tag.argument_text.split(None, 1)
    if words and words[0].lower() == "to":
        words = words[1].split(None, 1) if len(words) > 1 else []
    return words


def _named(said: str, choices: Sequence[str]) -> str | None:
    """The choice `said` names, whatever its case, spelt as the configuration spells it."""
    return next((choice for choice in choices if choice.lower() == said.lower()), None)


def _tier(tag: Command, vocabulary: Vocabulary) -> Parsed:
    """`[to] <tier> [reason]`: the front line says where a ticket goes, so the tier is
    required (without it the first destination would be a silent guess)."""
    words = _target_words(tag)
    if not words:
        return _mistake(tag, f"#{tag.name} needs the tier to send the ticket to, "
                             f"e.g. #{tag.name} tier1")
    said = words[0].rstrip(":,")
    state = _named(said, vocabulary.states)
    if state is None:
        guess = closest(said, vocabulary.states)
        hint = f"did you mean {guess}?" if guess else f"known: {', '.join(vocabulary.states)}"
        return _mistake(tag, f"there is no tier {said!r}; {hint}")
    return _request(tag, words[1] if len(words) > 1 else "", state)


def _member(tag: Command, vocabulary: Vocabulary) -> Parsed:
    who = tag.argument_text.strip()
    who = who[3:].strip() if who.lower().startswith("to ") else who
    if not who:
        return _mistake(tag, "#assign needs a member: a name or address from the directory")
    return _request(tag, "", who)


def _priority(tag: Command, vocabulary: Vocabulary) -> Parsed:
    words = tag.argument_text.split(None, 1)
    wanted = _named(words[0], vocabulary.priorities) if words else None
    if wanted is None:
        choices = ", ".join(vocabulary.priorities)
        return _mistake(tag, f"#priority needs one of {choices}")
    return _request(tag, words[1] if len(words) > 1 else "", wanted)


def _vendor(tag: Command, vocabulary: Vocabulary) -> Parsed:
    words = tag.argument_text.split(None, 1)
    known = ", ".join(vocabulary.vendors) or "none in config/teams.yaml"
    if not words:
        return _mistake(tag, f"#vendor needs a vendor; known vendors: {known}")
    said = words[0].rstrip(":,")  # "#vendor acme: is it patched?"
    name = _named(said, vocabulary.vendors)
    if name is None:
        guess = closest(said, vocabulary.vendors)
        hint = f"did you mean {guess}?" if guess else f"known vendors: {known}"
        return _mistake(tag, f"there is no vendor {said!r}; {hint}")
    return _request(tag, words[1] if len(words) > 1 else "", name)


TICKET_REF = re.compile(r"^\[?(?:td-)?(\d+)\]?[:,.]?$", re.IGNORECASE)


def ticket_ref(text: str) -> str | None:
    """TD-12, td-12, [TD-12] or 12 as the ref TD-12; None for anything else."""
    found = TICKET_REF.match(text.strip())
    return f"TD-{int(found.group(1))}" if found else None


def _ticket(tag: Command, vocabulary: Vocabulary) -> Parsed:
    """`[to] <ticket> [reason]`: the incident a report belongs to."""
    words = _target_words(tag)
    if not words:
        return _mistake(tag, f"#{tag.name} needs the ticket of the incident, "
                             f"e.g. #{tag.name} TD-12")
    ref = ticket_ref(words[0])
    if ref is None:
        return _mistake(tag, f"{words[0]!r} is not a ticket; write its ref, e.g. #{tag.name} TD-12")
    return _request(tag, words[1] if len(words) > 1 else "", ref)


GRAMMAR: dict[str, tuple[str, _Parse]] = {
    "take": ("#take", _plain),
    "assign": ("#assign <member>", _member),
    "route": ("#route <tier> [reason]", _tier),
    "escalate": ("#escalate [to <tier>] [reason]", _free),
    "deescalate": ("#deescalate [to <tier>] [reason]", _free),
    "priority": ("#priority P1..P4 [reason]", _priority),
    "vendor": ("#vendor <name> [+attachments] [what to ask]", _vendor),
    "wait": ("#wait [reason]", _plain),
    "resolve": ("#resolve <summary>", _needs("a summary of what fixed it")),
    "reopen": ("#reopen", _plain),
    "note": ("#note <text>", _needs("the text to note")),
    "status": ("#status", _plain),
    "help": ("#help", _plain),
    "link": ("#link <ticket>", _ticket),
    "unlink": ("#unlink", _plain),
}
