"""Split the text of a reply into what the sender wrote now, the quoted history and the
signature.

The rule, chosen for safety because commands are read from the new text: only the text
above the first history marker counts. Markers are
- an attribution line, "On <date>, <name> wrote:" and its forms in other languages and
  clients, also when wrapped over two or three lines;
- a "> " quoted line (and a line right above it that ends in ":" and reads as an
  attribution: a verb of writing, a date or an address; "Here is the log I got:" is text);
- an Outlook header block ("From: ... Sent: ... To: ... Subject:", localised; From, To
  and Date alone are a form, not a block), an "-----Original Message-----" or forward
  separator, Outlook's line of underscores or GroupWise's ">>> Name <addr> date >>>";
- the mark `daemon.mail.html_text` leaves where an HTML quote container began.
Inline answers written below the quote are ignored, except when nothing at all stands
above the first marker and the history is "> "-quoted (a bottom-posted or purely inline
reply): then the unquoted lines between the quotes are the new text, since every quoted
line carries its "> ". A signature is cut from the new text at a "-- " line or a mobile
footer ("Sent from my iPhone", "Get Outlook for iOS", ...). Sign-offs such as
"Best regards" are kept: they are part of what the sender wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.mail.html_text import HISTORY_MARK

# Verbs of attribution lines in many languages ("wrote", "schrieb", "a écrit", ...).
_VERBS = (
    r"wrote|schrieb|geschrieben|a\s+[ée]crit|escribi[óo]|schreef|geschreven|ha\s+scritto|"
    r"escreveu|skrev|kirjoitti|napisa[łl]\(a\)|napisa[łl]a|napisa[łl]|pisze|napsal\(a\)|"
    r"napsal|napísal|napisao|napisala|írta|yazdı|ha\s+escrit|a\s+scris|rašė|rakstīja|"
    r"kirjutas|написал\(а\)|написала|написал|пишет|έγραψε"
)
_VERB_AT_END = re.compile(rf"(?:\b(?:{_VERBS})\b|写道|寫道|작성|書きました)[^\n]{{0,120}}[:：]\s*$",
                          re.IGNORECASE)
# Attribution lines start with these words ("On", "Am", "Le", "El", "Op", "Il giorno" ...).
_OPENER = re.compile(r"^(?:on|am|le|el|op|il|em|den|w\s+dniu|dnia|dne|в|στις|dana|u)\s",
                     re.IGNORECASE)
_TIME = re.compile(r"\d{1,2}[:.h]\d{2}")
# "<addr>:", also with a short word between ("<addr>のメール:", Apple Mail in Japanese).
_ADDRESS_COLON = re.compile(r"<[^<>\s@]+@[^<>\s]+>\)?[^\s<>:：]{0,6}\s*[:：]\s*$")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")

_SEPARATOR_WORDS = (
    r"original message|original e-?mail|ursprüngliche nachricht|message d'origine|"
    r"mensaje original|mensagem original|messaggio originale|oorspronkelijk bericht|"
    r"origineel bericht|ursprungligt meddelande|opprinnelig melding|oprindelig meddelelse|"
    r"alkuperäinen viesti|wiadomość oryginalna|oryginalna wiadomość|původní zpráva|"
    r"исходное сообщение|forwarded message|weitergeleitete nachricht|message transféré|"
    r"mensaje reenviado|doorgestuurd bericht|messaggio inoltrato|mensagem encaminhada|"
    r"vidarebefordrat meddelande|videresendt melding|videresendt meddelelse|"
    r"wiadomość przekazana|välitetty viesti|пересылаемое сообщение|reply message|"
    r"原始邮件|原始郵件|转发邮件|元のメッセージ|원본 메시지"
)
_SEPARATOR = re.compile(
    rf"^\s*(?:-{{2,}}|={{3,}})\s*(?:{_SEPARATOR_WORDS})\s*(?:-{{2,}}|={{3,}})\s*$"
    r"|^\s*(?:begin forwarded message|anfang der weitergeleiteten (?:nachricht|e-mail)|"
    r"début du message réexpédié|inicio del mensaje reenviado|begin doorgestuurd bericht|"
    r"inizio messaggio inoltrato|início da mensagem (?:re)?encaminhada|"
    r"vidarebefordrat brev|videresendt meddelelse)\s*:\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{20,}\s*$")
_RULE = re.compile(r"^\s*[-_=*]{3,}.{0,60}[-_=*]{3,}\s*$|^\s*[-_=*]{10,}\s*$")

_FROM_KEYS = frozenset({
    "from", "von", "de", "van", "da", "från", "fra", "od", "lähettäjä", "от", "від",
    "发件人", "寄件者", "差出人", "보낸 사람", "feladó", "kimden", "από", "מאת", "من",
    "de la", "šalje", "saatja", "nuo", "no", "dari", "từ", "จาก",
})
# A header block needs one of these: "Sent" or "Subject" (localised). From, To and Date
# alone also head a form in the new text ("From: room 2.14 / To: room 3.01 / Date: ...").
_STRONG_KEYS = frozenset({
    "sent", "gesendet", "envoyé", "enviado", "enviada", "verzonden", "inviato", "skickat",
    "sendt", "wysłano", "wysłane", "lähetetty", "отправлено", "发送时间", "寄件日期", "送信日時",
    "보낸 날짜", "elküldve", "gönderildi", "odesláno", "odoslané", "надіслано", "изпратено",
    "στάλθηκε", "נשלח", "تاريخ الإرسال", "trimis", "poslano", "saadetud", "išsiųsta",
    "nosūtīts", "dikirim", "đã gửi", "ส่ง",
    "subject", "betreff", "objet", "asunto", "assunto", "onderwerp", "oggetto", "ämne",
    "emne", "temat", "aihe", "тема", "主题", "主旨", "件名", "제목", "tárgy", "konu",
    "předmět", "predmet", "θέμα", "נושא", "الموضوع", "subiect", "zadeva", "teema", "tēma",
    "tema", "относно", "subjek", "chủ đề", "เรื่อง",
})
_OTHER_KEYS = _STRONG_KEYS | frozenset({
    "date", "datum", "fecha", "data", "päivämäärä", "дата", "日期", "tarih", "to", "an", "à",
    "a", "para", "aan", "till", "til", "do", "vastaanottaja", "кому", "收件人", "宛先",
    "받는 사람", "címzett", "kime", "komu", "до", "προς", "אל", "إلى", "către", "prima",
    "za", "adressaat", "kam", "kepada", "đến", "ถึง", "cc", "kopie", "copie", "cco", "kopia",
    "kopi", "抄送", "копия", "reply-to",
})
_HEADER_LINE = re.compile(r"^\s*\*{0,2}([^\W\d_][^:：*\n]{0,24}?)\s*\*{0,2}\s*[:：]")

_SIGNATURE_DASHES = re.compile(r"^--\s*$")
_MOBILE_FOOTER = re.compile(
    r"^\s*(?:sent from my\s.{1,40}|sent from (?:outlook|mail for windows|yahoo mail|"
    r"aol mobile mail|proton ?mail|the mail app|samsung)\b.{0,60}|"
    r"get outlook for (?:ios|android)\b.{0,60}|sent with proton ?mail\b.{0,60}|"
    r"get bluemail for \S.{0,40}|"
    r"envoyé de mon\s.{1,40}|envoyé depuis\s.{1,40}|von meinem\s.{1,40}\sgesendet|"
    r"gesendet von meinem\s.{1,40}|gesendet mit\s.{1,40}|enviado desde mi\s.{1,40}|"
    r"enviado do meu\s.{1,40}|enviado de (?:meu|mi)\s.{1,40}|"
    r"(?:verzonden|verstuurd) (?:vanaf|met|van) mijn\s.{1,40}|inviato da\s.{1,40}|"
    r"skickat från min\s.{1,40}|sendt fra min\s.{1,40}|wysłane z\s.{1,40}|"
    r"lähetetty\s.{1,40}|отправлено с\s.{1,40}|从我的.{1,20}发送|.{1,20}から送信|"
    r"发自我的.{1,20}|從我的.{1,20}傳送|.{1,20}에서 보냄|.{1,20}['’](?:umdan|imden|ımdan|ümden) "
    r"gönderildi|odesláno z\s.{1,40}|odoslané z\s.{1,40}|надіслано з\s.{1,40}|"
    r"στάλθηκε από\s.{1,40}|נשלח מ.{1,40}|أُ?رسلت من\s.{1,40}|trimis de pe\s.{1,40}|"
    # "Get Outlook for Android" as Outlook mobile localises it
    r"(?:obtener|obter o|obtenir|télécharger|scarica|ottieni|hämta|hent|få|pobierz|baixe o|"
    r"holen sie sich)\s(?:program\s)?outlook\s(?:para|pour|per|för|til|for|dla|für)\s"
    r"(?:systemu\s)?(?:ios|android)\b.{0,60}|"
    r"outlook (?:für|voor|pro) (?:ios|android) (?:herunterladen|beziehen|downloaden)\b.{0,60}"
    r")\.?\s*$",  # Samsung ends "Von meinem Samsung Galaxy Smartphone gesendet."
    re.IGNORECASE,
)


# Markers are looked for in this many lines; a longer text without one is all new text.
# It bounds the work a crafted mail can cause (each line costs a few regex tests).
MAX_SCAN_LINES = 20_000


@dataclass(frozen=True)
class ReplyParts:
    """A reply split up. `marker` says what ended the new text (None: nothing did)."""

    new_text: str
    history: str
    signature: str
    marker: str | None


def strip_reply(text: str) -> str:
    """The new text of a reply: no quoted history, no signature."""
    return split_reply(text).new_text


def split_reply(text: str) -> ReplyParts:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    # Markers are looked for without direction marks, which wrap RTL attributions
    # ("\u202b...<addr>:\u202c"); the new text keeps them.
    probe = [_BIDI.sub("", line) for line in lines] if _BIDI.search(text) else lines
    start, marker = find_history(probe)
    above = lines[:start]
    if not "".join(above).strip() and marker is not None and _quote_style(probe, start):
        above = [lines[index] for index in _unquoted_between(probe, start)]
    body, signature = _cut_signature(above)
    return ReplyParts(new_text=_tidy(body), history="\n".join(lines[start:]).strip("\n"),
                      signature=_tidy(signature), marker=marker)


# ------------------------------------------------------------------ finding the history

def find_history(lines: list[str]) -> tuple[int, str | None]:
    """Index of the first line of quoted history and what it is; (len, None) if none."""
    for index, line in enumerate(lines[:MAX_SCAN_LINES]):
        if _could_be_marker(line):  # most lines are not: no regular expression for them
            found = _marker_at(lines, index, line)
            if found is not None:
                return found
    return len(lines), None


# How a stripped line that is a marker starts, unless it ends in a colon (an attribution, a
# "Begin forwarded message:" separator) or has one in its first 40 characters (a header
# block's From line): a quote, the history mark, underscores, a "-----" or "===" separator.
_MARKER_FIRST = frozenset({">", HISTORY_MARK[0], "_", "-", "="})


def _could_be_marker(line: str) -> bool:
    """False only for lines that _marker_at certainly passes over."""
    stripped = line.strip()
    return bool(stripped) and (stripped[0] in _MARKER_FIRST or stripped.endswith((":", "："))
                               or ":" in line[:40] or "：" in line[:40])


def _marker_at(lines: list[str], index: int, line: str) -> tuple[int, str] | None:
    stripped = line.strip()
    if not stripped:
        return None
    if _is_quoted(stripped):
        return _lead_in(lines, index), f"quoted line {_show(stripped)}"
    if stripped.endswith((":", "：")):
        start = _attribution_start(lines, index)
        if start is not None:
            return start, f"attribution line {_show(_joined(lines, start, index))}"
    return _hard_marker(lines, index, stripped)


def _hard_marker(lines: list[str], index: int, stripped: str) -> tuple[int, str] | None:
    """Markers that end the new text whatever follows: separators and header blocks."""
    if stripped == HISTORY_MARK:
        return index, "start of a quoted-history container in the HTML"
    if _is_groupwise(stripped):
        return index, f"GroupWise header {_show(stripped)}"
    if _UNDERSCORES.match(stripped):
        return index, "Outlook separator line of underscores"
    if _SEPARATOR.match(stripped):
        return index, f"separator {_show(stripped)}"
    if _is_header_block(lines, index):
        return _rule_above(lines, index), f"header block {_show(stripped)}"
    return None


def _is_quoted(stripped: str) -> bool:
    """A "> " quoted line (GroupWise's ">>> ... >>>" header is not one)."""
    return stripped.startswith(">") and not _is_groupwise(stripped)


def _is_groupwise(stripped: str) -> bool:
    """GroupWise heads the old mail with '>>> Name <addr> 05.03.2024 09:12 >>>' and quotes
    it without marks: a hard marker, not a quoted line."""
    return stripped.startswith(">>>") and stripped.endswith(">>>") and len(stripped) > 8


def _rule_above(lines: list[str], index: int) -> int:
    """A header block often sits under a rule ("----- 原始邮件 -----"): cut that too."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and _RULE.match(lines[above]):
        return above
    return index


def _lead_in(lines: list[str], index: int) -> int:
    """A line ending in ':' right above a quote ("Alice wrote:") belongs to the history."""
    above = index - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above >= 0 and above >= index - 2 and _introduces(lines[above]):
        return above
    return index


def _introduces(line: str) -> bool:
    """A line ending in ':' that reads as an attribution: a verb of writing, a date or an
    address. "Here is the log I got:" above a quoted log is the sender's own text."""
    stripped = line.strip()
    return stripped.endswith((":", "：")) and bool(
        _VERB_AT_END.search(stripped) or "@" in stripped
        or any(c.isdigit() for c in stripped))


def _attribution_start(lines: list[str], end: int) -> int | None:
    """First line of an attribution ending at `end`, wrapped over up to three lines."""
    starts = [s for s in (end - 2, end - 1) if s >= 0 and _adjacent(lines, s, end)]
    for start in starts:  # earliest first: a wrapped "On ..." line starts the block
        if _OPENER.match(lines[start].strip()) and _is_attribution(_joined(lines, start, end)):
            return start
    if _is_attribution(lines[end].strip()):
        return end
    for start in reversed(starts):
        if _is_attribution(_joined(lines, start, end)):
            return start
    return None


def _adjacent(lines: list[str], start: int, end: int) -> bool:
    """Lines start..end are non-blank, unquoted and read as one sentence. A line may end
    in "." when the address follows ("...Example Inc.\n<support@example.com> wrote:")."""
    return all(lines[i].strip() and not lines[i].lstrip().startswith(">")
               and (not lines[i].rstrip().endswith((".", "!", "?"))
                    or lines[i + 1].lstrip().startswith("<"))
               for i in range(start, end))


def _is_attribution(candidate: str) -> bool:
    if len(candidate) > 300:
        return False
    if not (_TIME.search(candidate) or "@" in candidate or _OPENER.match(candidate)):
        return False  # cheap test first: every form below needs one of these
    if _VERB_AT_END.search(candidate):
        # Without an address it needs a date: "On Monday at 10:00 the vendor wrote:" is prose.
        return "@" in candidate or (bool(_OPENER.match(candidate) or _TIME.search(candidate))
                                    and any(c.isdigit() for c in _TIME.sub("", candidate)))
    return bool(_ADDRESS_COLON.search(candidate) and _TIME.search(candidate))


def _is_header_block(lines: list[str], index: int) -> bool:
    """A From-like line followed by at least two more header lines, one of them Sent or
    Subject."""
    if _header_key(lines[index]) not in _FROM_KEYS:
        return False
    keys = {_header_key(line) for line in lines[index + 1:index + 7] if line.strip()}
    return len(keys & _OTHER_KEYS) >= 2 and not keys.isdisjoint(_STRONG_KEYS)


def _header_key(line: str) -> str | None:
    if ":" not in line[:40] and "：" not in line[:40]:
        return None
    match = _HEADER_LINE.match(line)
    return match[1].strip().lower() if match else None


def _quote_style(lines: list[str], start: int) -> bool:
    """The history is '> ' quoted (not an Outlook block, which quotes without marks)."""
    for index in range(start, min(start + 6, len(lines))):
        stripped = lines[index].strip()
        if _is_quoted(stripped):
            return True
        if stripped and _hard_marker(lines, index, stripped):
            return False
    return False


def _unquoted_between(lines: list[str], start: int) -> list[int]:
    """Unquoted lines after the first quote, up to a marker that is not a '> ' quote."""
    first = next(i for i in range(start, len(lines)) if lines[i].lstrip().startswith(">"))
    kept: list[int] = []
    for index in range(first, min(len(lines), start + MAX_SCAN_LINES)):
        stripped = lines[index].strip()
        if _is_quoted(stripped) or _is_lead_in(lines, index):
            continue
        if stripped and _hard_marker(lines, index, stripped):
            break
        kept.append(index)
    return kept


def _is_lead_in(lines: list[str], index: int) -> bool:
    """An attribution or "...:" line introducing a quote that follows."""
    if not _introduces(lines[index]):
        return False
    following = [line.strip() for line in lines[index + 1:index + 3] if line.strip()]
    return bool(following) and following[0].startswith(">")


# ------------------------------------------------------------------ signature and tidying

def _cut_signature(lines: list[str]) -> tuple[list[str], list[str]]:
    for index, line in enumerate(lines):
        if _SIGNATURE_DASHES.match(line) or (len(line) < 90 and _is_footer(lines, index)):
            return lines[:index], lines[index:]
    return lines, []


def _is_footer(lines: list[str], index: int) -> bool:
    """A mobile footer stands on its own: a line of prose that starts "Sent from my laptop
    it works" and goes on in the next line is new text."""
    return ((index + 1 == len(lines) or not lines[index + 1].strip())
            and is_mobile_footer(lines[index]))


def is_mobile_footer(line: str) -> bool:
    """One line such as "Sent from my iPhone" or "Von meinem iPad gesendet" (any language
    the pattern knows); daemon/mail/signoff.py counts it as nothing written."""
    return bool(_MOBILE_FOOTER.match(line))


_BLANK_LINES = re.compile(r"\n{3,}")


def _tidy(lines: list[str]) -> str:
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    return _BLANK_LINES.sub("\n\n", text)


def _joined(lines: list[str], start: int, end: int) -> str:
    return " ".join(line.strip() for line in lines[start:end + 1])


def _show(text: str) -> str:
    return repr(text if len(text) <= 70 else text[:67] + "...")
