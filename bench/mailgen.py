"""Realistic inbound support mail, generated deterministically from a seed, for benches.

    python bench/mailgen.py [N] [--seed 1] [--out DIR]   # prints the mix; --out writes .eml

    from mailgen import Mix, generate     # bench/ on sys.path (bench/ has no __init__.py)
    mix = Mix()
    for mail in generate(5000, seed=1):   # a stream: nothing is held but recent threads
        mix.add(mail)
        ...mail.raw, mail.kind, mail.message_id, mail.route...

What a support mailbox holds, written the way Outlook, Gmail, Thunderbird and Apple Mail write:
new reports (plain text, multipart/alternative with HTML, some HTML-only, Outlook's inline
signature image as multipart/related, attachments from a few KB to ~200 KB), replies threaded
by In-Reply-To/References to earlier mails of the set with quoted history in each client's
style, RFC 2047 subjects and names (UTF-8 and ISO-8859-1, Q and B), UTF-8 and Latin-1 bodies
(quoted-printable, base64, 8bit), a few auto-replies (Auto-Submitted, X-Autoreply,
X-Auto-Response-Suppress, out-of-office subjects in several languages) and a couple of bounces
(Postfix and Exchange delivery status notifications of mail we sent).

Senders come from a pool that grows with N; people who only ever appear in Cc (and answer
with their out-of-office) are a separate pool, so an auto-reply never silences a requester.
The subjects a reply or an auto-reply would carry from our acknowledgement (`[TD-n]`) are not
known here, so replies thread by the Message-IDs of earlier generated mails only. Each mail
says what it is (`kind`) and, for a new report, which tier the shipped triage rules route it
to (`route`), so a bench can tell what the store must hold afterwards.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import html
import math
import random
import textwrap
import unicodedata
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Literal

Kind = Literal["new", "reply", "auto_reply", "bounce"]
Client = Literal["outlook", "gmail", "thunderbird", "apple"]
CRLF = b"\r\n"
START = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
SUPPORT = "support@example.com"
OUR_DOMAIN = "example.com"
# Password resets are common, outages and security incidents rare (they route as P1).
ROUTE_WEIGHTS = {None: 3.0, "tier1": 2.0, "tier2": 0.5, "tier3": 0.5}
RECENT_THREADS = 300  # replies answer one of the latest threads; older ones are forgotten


# ------------------------------------------------------------------ what mails say

@dataclass(frozen=True)
class Language:
    code: str
    first: tuple[str, ...]
    last: tuple[str, ...]
    domains: tuple[str, ...]
    zone: timezone
    hello: str
    thanks: str
    subjects: tuple[tuple[str, str | None, str], ...]  # (subject, triage route, detail)
    fillers: tuple[str, ...]
    replies: tuple[str, ...]
    reply_prefix: str
    wrote: str  # attribution line: {date}, {name}, {address}
    away: str  # out-of-office subject prefix
    away_text: str


EN = Language(
    "en",
    ("Emma", "Oliver", "Charlotte", "Harry", "Amelia", "George", "Isla", "Jack", "Sophie",
     "Noah", "Grace", "Liam", "Chloe", "Ethan", "Hannah", "Mason", "Zoë", "Siobhán"),
    ("Walker", "Hughes", "Patel", "Clarke", "Bennett", "Turner", "Wright", "Hall", "Green",
     "Evans", "Kaur", "O'Brien", "Murphy", "Singh", "Cooper", "Ward"),
    ("example.com", "example.org", "uk.example.net", "board.example.com"),
    UTC, "Hi,", "Thanks,",
    (("Printer on the 3rd floor keeps jamming", None,
      "Every second page gets stuck in tray 2 and the display shows error 13.B2."),
     ("Excel crashes when I open files with macros", None,
      "It freezes for a few seconds and then closes without any message."),
     ("Need a second monitor for my desk", None,
      "I moved to desk 4.12 and there is only one screen there."),
     ("Laptop very slow since the last update", None,
      "Starting Outlook takes about five minutes and the fan is always on."),
     ("Teams does not detect my headset", None,
      "The headset works on my phone, but Teams only offers the built-in microphone."),
     ("Cannot connect to the Wi-Fi in meeting room 2.14", None,
      "It says 'Cannot connect to this network' while the guest network works."),
     ("New starter on Monday needs a laptop and an account", None,
      "Our new colleague starts on Monday in accounting; a laptop with the usual software."),
     ("Calendar invites are not arriving", None,
      "Colleagues say they sent me invites yesterday but nothing shows up."),
     ("Request: Visio licence", None, "I need Visio for the new floor plans."),
     ("Shared mailbox missing in Outlook", None,
      "The invoices mailbox disappeared from my folder list this morning."),
     ("Password reset needed", "tier1",
      "I came back from parental leave and cannot sign in any more."),
     ("Locked out of my account after the holidays", "tier1",
      "I typed the old one a few times and now it says the account is locked."),
     ("My password expired while travelling", "tier1",
      "I am at the customer site in Lyon and cannot change it over the VPN."),
     ("Email outage in the Leeds office", "tier2",
      "Nobody can send or receive mail here since 10:15."),
     ("CRM is down for the whole sales team", "tier2",
      "The CRM login page times out for all users in sales."),
     ("File server down since 9 am", "tier2", "The S: drive is unreachable from every PC."),
     ("Phishing mail with a fake invoice", "tier3",
      "Several of us got an invoice from a supplier we do not use, with a link to a login page."),
     ("I clicked a link, is my laptop compromised?", "tier3",
      "After clicking it a window opened and closed again very quickly."),
     ("Laptop won't boot after the update 😩", None,
      "It shows the logo and then a black screen with a blinking cursor.")),
    ("It started this morning after I restarted the machine.",
     "I already tried switching it off and on again, without success.",
     "Could someone please have a look today? I have a deadline on Friday.",
     'The error message says: "The operation could not be completed (0x80070005)".',
     "My colleague next to me has the same model and it works fine there.",
     "I am in the office until 5 pm, desk 3.21, extension 4471."),
    ("Thanks, that worked!", "It happened again just now.",
     "Any update on this? It is still not working.", "I have attached another screenshot.",
     "Sorry, one more thing: it also happens on my second laptop."),
    "Re: ", "On {date}, {name} <{address}> wrote:", "Automatic reply: ",
    "I am out of the office until {back} with limited access to e-mail.\n"
    "For urgent matters please contact the service desk.",
)

DE = Language(
    "de",
    ("Jürgen", "Anna", "Günther", "Lena", "Jörg", "Sophie", "Matthias", "Katrin", "Björn",
     "Ursula", "Stefan", "Sabine", "Moritz", "Jana"),
    ("Müller", "Schäfer", "Weiß", "Krüger", "Hoffmann", "Schröder", "Becker", "Köhler",
     "Wagner", "Groß", "Fischer", "Lange"),
    ("berlin.example.org", "example.com", "muenchen.example.net"),
    timezone(timedelta(hours=1)), "Hallo,", "Viele Grüße",
    (("Drucker im 2. OG druckt nur leere Seiten", None,
      "Der Drucker zieht Papier ein, aber die Seiten bleiben weiß."),
     ("Bildschirm flackert nach dem Update", None,
      "Der externe Monitor flackert alle paar Sekunden und wird kurz schwarz."),
     ("Zugriff auf das Laufwerk „Projekte“ fehlt", None,
      "Seit gestern fehlt mir der Ordner „Projekte 2026“ im Explorer."),
     ("Neuer Mitarbeiter ab 1. März – Laptop benötigt", None,
      "Herr Krause fängt am Montag in der Buchhaltung an."),
     ("Passwort abgelaufen", None,
      "Beim Anmelden kommt die Meldung, dass mein Kennwort abgelaufen ist."),
     ("Outlook fragt ständig nach dem Kennwort", None,
      "Das Fenster erscheint etwa alle zehn Minuten wieder."),
     ("Störung: Netzlaufwerk down", "tier2",
      "Das Laufwerk S: ist seit 9 Uhr von keinem Rechner aus erreichbar."),
     ("Virus-Warnung auf meinem Rechner", "tier3",
      "Der Virenscanner meldet eine Bedrohung in einer Datei aus einer E-Mail.")),
    ("Seit heute Morgen funktioniert es nicht mehr.",
     "Ich habe den Rechner bereits neu gestartet, leider ohne Erfolg.",
     "Könnten Sie sich das bitte heute noch ansehen? Vielen Dank!",
     'Die Fehlermeldung lautet: "Zugriff verweigert (Fehler 0x5)".',
     "Ich bin heute bis 17 Uhr im Büro erreichbar, Durchwahl 2231."),
    ("Danke, jetzt geht es wieder.", "Das Problem tritt leider immer noch auf.",
     "Gibt es hierzu schon etwas Neues?", "Anbei noch ein Bildschirmfoto."),
    "AW: ", "Am {date} schrieb {name} <{address}>:", "Abwesenheitsnotiz: ",
    "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich {back} nicht im Büro.\n"
    "In dringenden Fällen wenden Sie sich bitte an den Service Desk.",
)

FR = Language(
    "fr",
    ("François", "Zoë", "Hélène", "Jérôme", "Amélie", "Benoît", "Céline", "Loïc", "Maëlle",
     "Théo"),
    ("Lefèvre", "Dubois", "Moreau", "Girard", "Bérard", "Rousseau", "Faure", "Mercier",
     "Lemaître", "Chevalier"),
    ("lyon.example.net", "example.org"),
    timezone(timedelta(hours=1)), "Bonjour,", "Cordialement,",
    (("Problème avec l'imprimante du 3e étage", None,
      "L'imprimante affiche « bourrage papier » alors que le bac est vide."),
     ("Écran noir après la mise à jour", None,
      "Depuis la mise à jour de cette nuit, l'écran reste noir au démarrage."),
     ("Impossible d'accéder au dossier partagé", None,
      "Le dossier « Comptabilité » me demande un mot de passe que je n'ai pas."),
     ("Mot de passe expiré / password expired", "tier1",
      "Je ne peux plus me connecter depuis ce matin.")),
    ("Depuis ce matin, cela ne fonctionne plus.",
     "J'ai déjà redémarré l'ordinateur, sans succès.",
     "Pourriez-vous regarder cela aujourd'hui ? Merci d'avance.",
     "Le message d'erreur est : « Accès refusé »."),
    ("Merci, cela fonctionne de nouveau.", "Le problème persiste malheureusement.",
     "Avez-vous du nouveau à ce sujet ?"),
    "RE : ", "Le {date}, {name} <{address}> a écrit :", "Réponse automatique : ",
    "Je suis absent(e) jusqu'au {back} inclus.\nPour toute urgence, contactez le support.",
)

ES = Language(
    "es",
    ("José", "María", "Lucía", "Álvaro", "Martín", "Inés", "Sofía", "Raúl", "Nuria"),
    ("García", "Núñez", "Martínez", "Fernández", "López", "Peña", "Ibáñez", "Gómez"),
    ("madrid.example.org",),
    timezone(timedelta(hours=1)), "Hola:", "Un saludo,",
    (("No puedo acceder a la carpeta compartida", None,
      "Al abrir la carpeta de Ventas aparece «acceso denegado»."),
     ("El portátil se apaga solo", None, "Se apaga sin aviso después de unos diez minutos."),
     ("Correo de phishing recibido", "tier3",
      "He recibido un correo que pide mis datos bancarios con un enlace sospechoso.")),
    ("Desde esta mañana no funciona.", "Ya he reiniciado el ordenador, sin éxito.",
     "¿Podrían revisarlo hoy? Muchas gracias."),
    ("Gracias, ya funciona.", "El problema continúa.", "¿Hay alguna novedad?"),
    "RE: ", "El {date}, {name} <{address}> escribió:", "Respuesta automática: ",
    "Estoy fuera de la oficina hasta el {back}.\nPara urgencias, contacte con soporte.",
)

LANGUAGES = (EN, EN, EN, DE, DE, FR, ES)
CLIENTS: tuple[Client, ...] = ("outlook", "outlook", "outlook", "gmail", "gmail",
                               "thunderbird", "apple", "apple")
SIGNATURE_ROLES = ("Accounting", "Sales", "Marketing", "Facilities", "Legal", "HR")


# ------------------------------------------------------------------ people

@dataclass(frozen=True)
class Person:
    name: str
    address: str
    language: Language
    client: Client

    def header(self) -> str:
        """The address as this person's client writes it in From/To/Cc."""
        name = f"{self.name.split()[-1]}, {self.name.split()[0]}" \
            if self.client == "outlook" and self.language is DE else self.name
        return f"{display_name(name, self.client)} <{self.address}>"


def ascii_fold(text: str) -> str:
    text = text.lower()
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, plain)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum() or ch in ".-")


def make_people(rng: random.Random, count: int, tag: str) -> list[Person]:
    """`count` distinct people; `tag` keeps pools apart (their addresses never overlap)."""
    people: list[Person] = []
    taken: Counter[str] = Counter()
    for _ in range(count):
        lang = rng.choice(LANGUAGES)
        first, last = rng.choice(lang.first), rng.choice(lang.last)
        local = f"{ascii_fold(first)}.{ascii_fold(last)}{tag}"
        taken[local] += 1
        number = str(taken[local]) if taken[local] > 1 else ""
        address = f"{local}{number}@{rng.choice(lang.domains)}"
        people.append(Person(f"{first} {last}", address, lang, rng.choice(CLIENTS)))
    return people


# ------------------------------------------------------------------ header encoding

Q_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!*+-/")


def _q_payload(data: bytes) -> str:
    return "".join(chr(b) if b in Q_SAFE else "_" if b == 0x20 else f"={b:02X}" for b in data)


def _encoded_word(text: str, charset: str, method: str) -> str:
    data = text.encode(charset)
    payload = base64.b64encode(data).decode() if method == "B" else _q_payload(data)
    return f"=?{charset}?{method}?{payload}?="


def encode_words(text: str, charset: str, method: str) -> str:
    """RFC 2047 encoded words of at most 75 characters, folded onto continuation lines;
    words never split a character (a UTF-8 sequence stays in one word)."""
    words, chunk = [], ""
    for ch in text:
        if chunk and len(_encoded_word(chunk + ch, charset, method)) > 75:
            words.append(_encoded_word(chunk, charset, method))
            chunk = ""
        chunk += ch
    words.append(_encoded_word(chunk, charset, method))
    return "\r\n ".join(words)


def is_latin1(text: str) -> bool:
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        return False
    return True


def display_name(name: str, client: Client) -> str:
    if name.isascii():
        return f'"{name}"' if any(ch in name for ch in ',.;:"@<>()[]\\\'') else name
    if client == "outlook" and is_latin1(name):
        return encode_words(name, "iso-8859-1", "Q")
    return encode_words(name, "utf-8", "B" if client == "gmail" else "Q")


def subject_header(subject: str, client: Client, rng: random.Random) -> tuple[str, str]:
    """The Subject value as the client encodes it, and a feature tag for the mix."""
    if subject.isascii():
        return fold(subject), "subject-ascii"
    if client == "outlook" and is_latin1(subject) and rng.random() < 0.7:
        method = "Q" if rng.random() < 0.6 else "B"
        return encode_words(subject, "iso-8859-1", method), f"rfc2047-latin1-{method}"
    method = "B" if client == "gmail" or rng.random() < 0.3 else "Q"
    return encode_words(subject, "utf-8", method), f"rfc2047-utf8-{method}"


def fold(value: str, width: int = 76) -> str:
    lines = textwrap.wrap(value, width, break_long_words=False, break_on_hyphens=False)
    return "\r\n ".join(lines) if lines else value


# ------------------------------------------------------------------ MIME parts

@dataclass(frozen=True)
class Part:
    headers: tuple[tuple[str, str], ...]
    body: bytes


def render(part: Part) -> bytes:
    head = b"".join(f"{name}: {value}".encode() + CRLF for name, value in part.headers)
    return head + CRLF + part.body


def multipart(subtype: str, parts: Sequence[Part], boundary: str,
              params: str = "", preamble: bytes = b"") -> Part:
    mark = f"--{boundary}".encode()
    body = preamble + b"".join(mark + CRLF + render(part) + CRLF for part in parts)
    header = f'multipart/{subtype};{params}\r\n\tboundary="{boundary}"'
    return Part((("Content-Type", header),), body + mark + b"--" + CRLF)


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def encode_body(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return base64.encodebytes(data).replace(b"\n", CRLF)
    if cte == "quoted-printable":
        return binascii.b2a_qp(data.replace(CRLF, b"\n"), istext=True).replace(b"\n", CRLF)
    return data


def text_part(subtype: str, text: str, charset: str, cte: str,
              extra: tuple[tuple[str, str], ...] = ()) -> Part:
    data = crlf(text).encode(charset, errors="xmlcharrefreplace")
    if not data.endswith(CRLF):
        data += CRLF
    return Part((("Content-Type", f'text/{subtype}; charset="{charset}"'),
                 ("Content-Transfer-Encoding", cte), *extra), encode_body(data, cte))


def binary_part(content_type: str, data: bytes, filename: str, disposition: str = "attachment",
                content_id: str | None = None) -> Part:
    name = filename if filename.isascii() else encode_words(filename, "utf-8", "B")
    star = "" if filename.isascii() else (
        "; filename*=UTF-8''" + "".join(ch if ch.isascii() and ch.isalnum() or ch in "._-"
                                       else "".join(f"%{b:02X}" for b in ch.encode())
                                       for ch in filename))
    headers = [("Content-Type", f'{content_type}; name="{name}"'),
               ("Content-Disposition", f'{disposition}; filename="{name}"{star}'
                + f"; size={len(data)}"),
               ("Content-Transfer-Encoding", "base64")]
    if content_id:
        headers.append(("Content-ID", f"<{content_id}>"))
    return Part(tuple(headers), encode_body(data, "base64"))


# ------------------------------------------------------------------ what a generated mail is

@dataclass(frozen=True, slots=True)
class GeneratedMail:
    raw: bytes
    message_id: str  # without angle brackets, as written (ingest lower-cases it)
    kind: Kind
    sender: str  # the From address
    thread: str | None  # Message-ID of the report a reply or threaded auto-reply belongs to
    route: str | None  # a new report: the tier the shipped triage rules send it to
    by_requester: bool  # a reply: written by the person who opened the thread
    features: frozenset[str]


@dataclass
class Thread:
    root: str
    subject: str
    requester: Person
    cc: Person | None
    refs: list[str]
    last: Person
    last_date: datetime
    last_text: list[str]


@dataclass(frozen=True)
class Profile:
    """How often each kind of mail and each feature turns up (probabilities per mail)."""

    reply: float = 0.25
    auto_reply: float = 0.03
    bounce_every: int = 200  # one bounce in this many mails (0: none)
    attachment: float = 0.15
    cc: float = 0.2
    colleague_reply: float = 0.2  # replies from someone else than the requester


NEW_ONLY = Profile(reply=0.0, auto_reply=0.0, bounce_every=0)


@dataclass
class Mix:
    """The tally of a generated set, kept as it streams by."""

    mails: int = 0
    size: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    features: Counter[str] = field(default_factory=Counter)
    opened_by: Counter[str] = field(default_factory=Counter)  # new reports per sender
    requester_replies: int = 0
    threaded_auto: int = 0
    largest: int = 0

    def add(self, mail: GeneratedMail) -> None:
        self.mails += 1
        self.size += len(mail.raw)
        self.largest = max(self.largest, len(mail.raw))
        self.kinds[mail.kind] += 1
        self.features.update(mail.features)
        if mail.kind == "new":
            self.routes[mail.route or "triage"] += 1
            self.opened_by[mail.sender.lower()] += 1
        self.requester_replies += mail.kind == "reply" and mail.by_requester
        self.threaded_auto += mail.kind == "auto_reply" and mail.thread is not None

    @property
    def routed(self) -> int:
        return sum(n for route, n in self.routes.items() if route != "triage")

    def summary(self) -> str:
        k, f = self.kinds, self.features
        return (
            f"{self.mails:,} mails, {self.size / 2**20:.1f} MB (largest {self.largest // 1024} KB):"
            f" {k['new']:,} new reports ({self.routed:,} routed by triage),"
            f" {k['reply']:,} replies ({self.requester_replies:,} by the requester),"
            f" {k['auto_reply']:,} auto-replies ({self.threaded_auto:,} threaded),"
            f" {k['bounce']:,} bounces; {len(self.opened_by):,} requesters\n"
            f"  formats: {f['plain']:,} plain, {f['alternative']:,} HTML alternative"
            f" ({f['related']:,} with inline image), {f['html-only']:,} HTML only,"
            f" {f['attachments']:,} with attachments\n"
            f"  subjects: {f['rfc2047-utf8-Q'] + f['rfc2047-utf8-B']:,} RFC 2047 UTF-8"
            f" (Q {f['rfc2047-utf8-Q']:,}, B {f['rfc2047-utf8-B']:,}),"
            f" {f['rfc2047-latin1-Q'] + f['rfc2047-latin1-B']:,} ISO-8859-1"
            f" (Q {f['rfc2047-latin1-Q']:,}, B {f['rfc2047-latin1-B']:,});"
            f" bodies: {f['utf-8']:,} UTF-8, {f['iso-8859-1']:,} Latin-1, {f['us-ascii']:,}"
            f" ASCII; {f['quoted-printable']:,} QP, {f['base64']:,} base64, {f['8bit']:,} 8bit")


# ------------------------------------------------------------------ the generator

@dataclass
class Body:
    """One mail's text: new paragraphs, a signature, and the quoted history of a reply."""

    paragraphs: list[str]
    signature: list[str]
    attribution: str = ""
    quoted: list[str] = field(default_factory=list)
    outlook_quote: list[str] = field(default_factory=list)  # From/Sent/To/Subject block


class Generator:
    def __init__(self, n: int, seed: int, profile: Profile, support: str) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.profile = profile
        self.support = support
        self.people = make_people(self.rng, max(40, n // 4), "")
        self.colleagues = make_people(self.rng, max(10, n // 50), "-cc")
        self.threads: deque[Thread] = deque(maxlen=RECENT_THREADS)
        self.now = START
        self.count = 0
        self.ids: set[str] = set()

    # -------------------------------------------------------------- one mail
    def next(self) -> GeneratedMail:
        self.count += 1
        self.now += timedelta(seconds=self.rng.expovariate(1 / 40))
        p, roll = self.profile, self.rng.random()
        if p.bounce_every and self.count % p.bounce_every == p.bounce_every // 2:
            return self.bounce()
        if self.threads and roll < p.auto_reply:
            return self.auto_reply()
        if self.threads and roll < p.auto_reply + p.reply:
            return self.reply()
        return self.new_report()

    def new_report(self) -> GeneratedMail:
        person = self.rng.choice(self.people)
        lang = person.language if self.rng.random() < 0.85 else EN
        weights = [ROUTE_WEIGHTS[route] for _, route, _ in lang.subjects]
        subject, route, detail = self.rng.choices(lang.subjects, weights)[0]
        fillers = self.rng.sample(lang.fillers, self.rng.randint(1, 3))
        body = Body([lang.hello, detail, *fillers], self.signature(person, lang))
        cc = self.rng.choice(self.colleagues) if self.rng.random() < self.profile.cc else None
        message_id = self.message_id(person)
        headers = [("To", f"IT Support <{self.support}>")]
        if cc is not None:
            headers.append(("Cc", cc.header()))
        raw, features = self.compose(person, subject, body, message_id, headers,
                                     self.rng.random() < self.profile.attachment)
        self.threads.append(Thread(message_id, subject, person, cc, [message_id], person,
                                   self.now, body.paragraphs[1:3]))
        return GeneratedMail(raw, message_id, "new", person.address, None, route, False,
                             features)

    def reply(self) -> GeneratedMail:
        thread = self.rng.choice(self.threads)
        person = thread.requester
        while self.rng.random() < self.profile.colleague_reply and person == thread.requester:
            person = self.rng.choice(self.people)  # a colleague answers in the thread
        lang = person.language
        text = [self.rng.choice(lang.replies)]
        body = Body([lang.hello, *text], self.signature(person, lang))
        self.quote(body, thread, person, lang)
        message_id = self.message_id(person)
        headers = [("To", f"IT Support <{self.support}>"),
                   ("In-Reply-To", f"<{thread.refs[-1]}>"),
                   ("References", fold(" ".join(f"<{ref}>" for ref in thread.refs[-10:])))]
        subject = lang.reply_prefix + thread.subject
        raw, features = self.compose(person, subject, body, message_id, headers,
                                     self.rng.random() < self.profile.attachment / 3)
        thread.refs.append(message_id)
        thread.last, thread.last_date, thread.last_text = person, self.now, text
        return GeneratedMail(raw, message_id, "reply", person.address, thread.root, None,
                             person == thread.requester, features)

    def quote(self, body: Body, thread: Thread, person: Person, lang: Language) -> None:
        last = thread.last
        if person.client == "outlook":
            labels = ("Von", "Gesendet", "An", "Betreff") if lang is DE else \
                ("From", "Sent", "To", "Subject")
            body.outlook_quote = [
                f"{labels[0]}: {last.name} <{last.address}>",
                f"{labels[1]}: {thread.last_date:%A, %d %B %Y %H:%M}",
                f"{labels[2]}: IT Support <{self.support}>", f"{labels[3]}: {thread.subject}"]
        else:
            body.attribution = lang.wrote.format(
                date=format_datetime(thread.last_date.astimezone(lang.zone))[:-9],
                name=last.name, address=last.address)
        body.quoted = list(thread.last_text)

    def auto_reply(self) -> GeneratedMail:
        thread = self.rng.choice(self.threads)
        threaded = thread.cc is not None or self.rng.random() < 0.5
        person = thread.cc or self.rng.choice(self.colleagues)
        lang = person.language
        back = (self.now + timedelta(days=self.rng.randint(3, 20))).strftime("%d.%m.%Y")
        message_id = self.message_id(person)
        style = self.rng.choice(("exchange", "rfc3834", "x-autoreply", "subject-only"))
        headers = [("To", f"IT Support <{self.support}>")]
        headers += _auto_headers(style)
        if threaded:
            headers += [("In-Reply-To", f"<{thread.refs[-1]}>"),
                        ("References", f"<{thread.refs[-1]}>")]
        body = Body([lang.away_text.format(back=back)], [person.name])
        raw, features = self.compose(person, lang.away + thread.subject, body, message_id,
                                     headers, False, plain_only=True)
        return GeneratedMail(raw, message_id, "auto_reply", person.address,
                             thread.root if threaded else None, None, False,
                             features | {f"auto-{style}"})

    def bounce(self) -> GeneratedMail:
        exchange = self.rng.random() < 0.4
        host = f"mx{self.rng.randint(1, 9)}.example.net"
        sender = f"postmaster@{host}" if exchange else f"MAILER-DAEMON@{host}"
        gone = f"{ascii_fold(self.rng.choice(EN.first))}.left{self.count}@example.net"
        ours = f"td-out-{self.count}.{self.rng.getrandbits(32):08x}@{OUR_DOMAIN}"
        message_id = f"{self.now:%Y%m%d%H%M%S}.{self.count:06d}.{self.seed}@{host}"
        report = bounce_report(host, gone, ours, self.support, self.now, exchange)
        subject = "Undeliverable: We received your request" if exchange else \
            "Undelivered Mail Returned to Sender"
        display = "Microsoft Outlook" if exchange else "Mail Delivery System"
        headers = [("Return-Path", "<>"), *self.received(host),
                   ("From", f"{display} <{sender}>"), ("To", self.support),
                   ("Subject", subject), ("Date", format_datetime(self.now)),
                   ("Message-ID", f"<{message_id}>"), ("Auto-Submitted", "auto-replied"),
                   ("MIME-Version", "1.0")]
        raw = render(Part((*headers, *report.headers), report.body))
        self._unique(message_id)
        return GeneratedMail(raw, message_id, "bounce", sender, None, None, False,
                             frozenset({"bounce-exchange" if exchange else "bounce-postfix"}))

    # -------------------------------------------------------------- building
    def compose(self, person: Person, subject: str, body: Body, message_id: str,
                extra: list[tuple[str, str]], attach: bool,
                plain_only: bool = False) -> tuple[bytes, frozenset[str]]:
        features: set[str] = set()
        content = self.content(person, body, attach and not plain_only, plain_only, features)
        encoded, tag = subject_header(subject, person.client, self.rng)
        features.add(tag)
        headers = [("Return-Path", f"<{person.address}>"),
                   *self.received(person.address.split("@")[1]),
                   ("From", person.header()), *extra[:1], ("Subject", encoded),
                   ("Date", format_datetime(self.now.astimezone(person.language.zone))),
                   ("Message-ID", f"<{message_id}>"), *extra[1:],
                   *self.client_headers(person, subject), ("MIME-Version", "1.0")]
        return render(Part((*headers, *content.headers), content.body)), frozenset(features)

    def content(self, person: Person, body: Body, attach: bool, plain_only: bool,
                features: set[str]) -> Part:
        charset, cte = self.charset(person, body)
        features.update({charset, cte})
        plain = text_part("plain", plain_text(body), charset, cte)
        shape = "plain" if plain_only else self.shape(person)
        features.add(shape)
        if shape == "plain":
            text = plain
        else:
            page = text_part("html", html_text(body, person.client, charset), charset, cte)
            text = page if shape == "html-only" else multipart(
                "alternative", [plain, page], self.boundary(person))
        if shape == "alternative" and person.client == "outlook" and self.rng.random() < 0.3:
            text = self.related(person, text)
            features.add("related")
        if attach:
            features.add("attachments")
            files = [self.attachment() for _ in range(self.rng.choice((1, 1, 1, 2, 3)))]
            text = multipart("mixed", [text, *files], self.boundary(person))
        return text

    def shape(self, person: Person) -> str:
        roll = self.rng.random()
        if person.client in ("outlook", "gmail"):
            return "html-only" if roll < 0.05 else "alternative"
        if person.client == "apple":
            return "plain" if roll < 0.5 else "alternative"
        return "plain" if roll < 0.9 else "alternative"

    def charset(self, person: Person, body: Body) -> tuple[str, str]:
        text = "".join(body.paragraphs + body.signature + body.quoted + body.outlook_quote)
        if text.isascii():
            return "us-ascii", "7bit"
        if is_latin1(text) and person.language is not EN and self.rng.random() < 0.6:
            return "iso-8859-1", "8bit" if person.client == "thunderbird" else "quoted-printable"
        if person.client == "thunderbird":
            return "utf-8", "8bit"
        if person.client == "gmail":
            return "utf-8", self.rng.choice(("base64", "quoted-printable"))
        return "utf-8", "quoted-printable"

    def related(self, person: Person, alternative: Part) -> Part:
        logo = b"\x89PNG\r\n\x1a\n" + self.rng.randbytes(self.rng.randint(2_000, 9_000))
        cid = f"image001.png@01DC{self.rng.getrandbits(32):08X}.{self.count}"
        image = binary_part("image/png", logo, "image001.png", "inline", cid)
        return multipart("related", [alternative, image], self.boundary(person),
                         ' type="multipart/alternative";')

    def attachment(self) -> Part:
        size = int(math.exp(self.rng.uniform(math.log(3_000), math.log(200_000))))
        kind = self.rng.randrange(5)
        if kind == 0:
            return binary_part("application/pdf", b"%PDF-1.7\n" + self.rng.randbytes(size),
                               f"Scan_{self.count:05d}.pdf")
        if kind == 1:
            return binary_part("image/png", b"\x89PNG\r\n\x1a\n" + self.rng.randbytes(size),
                               "Screenshot 2026-03-02 101512.png")
        if kind == 2:
            return binary_part("image/jpeg", b"\xff\xd8\xff\xe0" + self.rng.randbytes(size),
                               f"IMG_{self.rng.randint(1000, 9999)}.JPG")
        if kind == 3:
            return text_part("plain", log_text(self.rng, size), "utf-8", "quoted-printable",
                             (("Content-Disposition", 'attachment; filename="install.log"'),))
        sheet = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return binary_part(sheet, b"PK\x03\x04" + self.rng.randbytes(size),
                           "Übersicht Geräte.xlsx")

    def signature(self, person: Person, lang: Language) -> list[str]:
        if self.rng.random() < 0.5:
            return [lang.thanks, person.name.split()[0]]
        role = self.rng.choice(SIGNATURE_ROLES)
        return [lang.thanks, person.name, "-- ", person.name, f"{role} | Example Group",
                f"Phone +44 20 7946 {self.rng.randint(1000, 9999)}"]

    def client_headers(self, person: Person, subject: str) -> list[tuple[str, str]]:
        if person.client == "outlook":
            index = base64.b64encode(self.rng.randbytes(22)).decode()
            return [("Thread-Topic", fold(subject) if subject.isascii()
                     else encode_words(subject, "utf-8", "B")),
                    ("Thread-Index", index), ("Accept-Language", "en-GB, de-DE"),
                    ("Content-Language", {"de": "de-DE", "fr": "fr-FR", "es": "es-ES"}.get(
                        person.language.code, "en-GB")),
                    ("X-MS-Has-Attach", ""), ("X-MS-TNEF-Correlator", "")]
        if person.client == "thunderbird":
            return [("User-Agent", "Mozilla Thunderbird"),
                    ("Content-Language", person.language.code)]
        if person.client == "apple":
            return [("X-Mailer", "Apple Mail (2.3774.400.31)")]
        return [("X-Gm-Features", base64.b64encode(self.rng.randbytes(30)).decode())]

    def received(self, domain: str) -> list[tuple[str, str]]:
        ip = f"203.0.113.{self.rng.randint(1, 254)}"
        queue = f"{self.rng.getrandbits(40):010X}"
        stamp = format_datetime(self.now)
        return [("Received", f"from mail.{domain} (mail.{domain} [{ip}])\r\n\tby mx1."
                 f"{OUR_DOMAIN} (Postfix) with ESMTPS id {queue}\r\n\tfor <{self.support}>;"
                 f" {stamp}"),
                ("Received", f"from localhost (localhost [127.0.0.1])\r\n\tby mail.{domain}"
                 f" with ESMTP id {queue.lower()}; {stamp}")]

    def message_id(self, person: Person) -> str:
        bits = f"{self.rng.getrandbits(64):016x}"
        n = f"{self.count:06d}{self.seed % 1000:03d}"
        domain = person.address.split("@")[1]
        if person.client == "outlook":
            host = f"AM{self.rng.randint(0, 9)}PR07MB{self.rng.randint(1000, 9999)}"
            made = f"{host}{n}{bits.upper()}@{host}.eurprd07.prod.outlook.com"
        elif person.client == "gmail":
            token = base64.urlsafe_b64encode(self.rng.randbytes(30)).decode().rstrip("=")
            made = f"CA{token}{n}@mail.gmail.com"
        elif person.client == "apple":
            made = f"{bits[:8].upper()}-{n}-{bits[8:].upper()}@{domain}"
        else:
            made = f"{bits[:8]}-{n}-{bits[8:]}@{domain}"
        return self._unique(made)

    def _unique(self, message_id: str) -> str:
        key = message_id.lower()
        if key in self.ids:
            raise AssertionError(f"generated a Message-ID twice: {message_id}")
        self.ids.add(key)
        return message_id

    def boundary(self, person: Person) -> str:
        bits = f"{self.rng.getrandbits(96):024x}"
        if person.client == "outlook":
            return f"_000_{bits.upper()}_"
        if person.client == "gmail":
            return f"000000000000{bits[:12]}"
        if person.client == "apple":
            return f"Apple-Mail={bits[:8].upper()}-{bits[8:12].upper()}-{bits[12:].upper()}"
        return f"------------{bits}"


def _auto_headers(style: str) -> list[tuple[str, str]]:
    if style == "exchange":
        return [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")]
    if style == "rfc3834":
        return [("Auto-Submitted", "auto-replied (vacation)"), ("Precedence", "bulk")]
    if style == "x-autoreply":
        return [("X-Autoreply", "yes")]
    return []  # an old client: the out-of-office subject is the only sign


# ------------------------------------------------------------------ texts

def plain_text(body: Body) -> str:
    lines: list[str] = []
    for paragraph in body.paragraphs:
        lines += [*textwrap.wrap(paragraph, 72), ""]
    lines += [*body.signature, ""]
    if body.outlook_quote:
        lines += ["_" * 32, *body.outlook_quote, "", *body.quoted]
    elif body.attribution:
        lines += [body.attribution, *(f"> {line}" for line in body.quoted)]
    return "\n".join(lines) + "\n"


def html_text(body: Body, client: Client, charset: str) -> str:
    def para(text: str) -> str:
        if client == "outlook":
            return f'<p class="MsoNormal">{html.escape(text)}<o:p></o:p></p>'
        return f"<div>{html.escape(text)}</div>"

    parts = [para(p) for p in body.paragraphs]
    parts.append("<br>".join(html.escape(line) for line in body.signature))
    if body.outlook_quote:
        parts.append('<div style="border:none;border-top:solid #E1E1E1 1.0pt">'
                     + "<br>".join(f"<b>{html.escape(line.split(':', 1)[0])}:</b>"
                                   f"{html.escape(line.split(':', 1)[1])}"
                                   for line in body.outlook_quote) + "</div>")
        parts += [para(p) for p in body.quoted]
    elif body.attribution:
        parts.append(f'<div class="gmail_quote">{html.escape(body.attribution)}<blockquote '
                     'style="margin:0 0 0 .8ex;border-left:1px #ccc solid;padding-left:1ex">'
                     + "".join(para(p) for p in body.quoted) + "</blockquote></div>")
    inner = "\n".join(parts)
    if client == "outlook":
        return ('<html xmlns:o="urn:schemas-microsoft-com:office:office"><head>'
                f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">'
                "<style><!-- p.MsoNormal {margin:0cm; font-size:11.0pt;"
                ' font-family:"Calibri",sans-serif;} --></style></head>'
                f'<body lang="EN-GB"><div class="WordSection1">\n{inner}\n</div></body></html>')
    return f'<html><head></head><body><div dir="ltr">\n{inner}\n</div></body></html>'


def log_text(rng: random.Random, size: int) -> str:
    lines, total = [], 0
    while total < size:
        line = (f"2026-03-02 09:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d},"
                f"{rng.randint(0, 999):03d} {rng.choice(('INFO', 'WARN', 'ERROR'))} "
                f"[msiexec] {rng.choice(('Installing', 'Rollback', 'Component', 'Feature'))}"
                f" {rng.getrandbits(48):012x} returned {rng.randint(0, 1700)}")
        lines.append(line)
        total += len(line) + 2
    return "\n".join(lines)


def bounce_report(host: str, gone: str, ours: str, support: str, now: datetime,
                  exchange: bool) -> Part:
    stamp = format_datetime(now)
    if exchange:
        notice = (f"Delivery has failed to these recipients or groups:\n\n{gone}\n"
                  "The email address you entered couldn't be found.\n")
    else:
        notice = (f"This is the mail system at host {host}.\n\nI'm sorry to have to inform "
                  "you that your message could not\nbe delivered to one or more recipients."
                  f"\n\n<{gone}>: host {host} said: 550 5.1.1 <{gone}>:\n    Recipient "
                  "address rejected: User unknown in virtual mailbox table\n")
    status = (f"Reporting-MTA: dns; {host}\nArrival-Date: {stamp}\n\n"
              f"Final-Recipient: rfc822; {gone}\nAction: failed\nStatus: 5.1.1\n"
              "Diagnostic-Code: smtp; 550 5.1.1 User unknown\n")
    headers = (f"From: IT Support <{support}>\nTo: {gone}\nSubject: We received your request"
               f"\nDate: {stamp}\nMessage-ID: <{ours}>\nAuto-Submitted: auto-replied\n")
    parts = [text_part("plain", notice, "us-ascii", "7bit"),
             Part((("Content-Type", "message/delivery-status"),), crlf(status).encode()),
             Part((("Content-Type", "text/rfc822-headers"),), crlf(headers).encode())]
    return multipart("report", parts, f"{now:%H%M%S}.{host}/{ours[:12]}",
                     " report-type=delivery-status;")


# ------------------------------------------------------------------ the stream

def generate(n: int, seed: int = 1, profile: Profile | None = None,
             support: str = SUPPORT) -> Iterator[GeneratedMail]:
    """N mails in arrival order; the same seed gives the same bytes."""
    generator = Generator(n, seed, profile or Profile(), support)
    for _ in range(n):
        yield generator.next()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write each mail to DIR/NNNNNN-KIND.eml")
    args = parser.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    mix = Mix()
    for i, mail in enumerate(generate(args.n, args.seed), 1):
        mix.add(mail)
        if args.out:
            (args.out / f"{i:06d}-{mail.kind}.eml").write_bytes(mail.raw)
    print(mix.summary())


if __name__ == "__main__":
    main()
