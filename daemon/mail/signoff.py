"""Is a text only a greeting or a sign-off? ("Hi all", "Regards, Jordan", "Best,\\nMorgan").

A technician's reply whose commands, quoted history and signature are gone often leaves just
the pleasantries around them; passing those on sends the requester a mail whose whole
content is "Regards, Jordan". The rule is strict in the other direction, because withholding
real words is worse than an empty mail: every line must be a greeting, a sign-off, a mobile
footer, or a name written below a sign-off. "Thanks, the VPN works now" and "Yes" are text.

Pure: the text in, a yes or no out. Phrases match in any case, with ß spelt ss ("Grüße" and
"Grüsse" are the same) and the punctuation around them ignored.
"""

from __future__ import annotations

import re

from daemon.mail.reply import is_mobile_footer

# Lower case, ß spelt ss. A phrase must be followed by the end of a word ("hi" is not "his").
_GREETINGS = (
    # English
    "hi", "hello", "hey", "dear", "good morning", "good afternoon", "good evening", "greetings",
    "hiya", "morning", "afternoon",
    # German
    "hallo", "guten morgen", "guten tag", "guten abend", "moin", "servus", "grüss gott",
    "grüss dich", "liebe", "lieber", "sehr geehrte", "sehr geehrter",
    "sehr geehrte damen und herren",
    # French
    "bonjour", "bonsoir", "salut", "cher", "chère", "chers", "chères", "madame", "monsieur",
    "madame, monsieur",
    # Spanish, Italian, Portuguese, Dutch
    "hola", "buenos días", "buenos dias", "buenas tardes", "buenas noches", "estimado",
    "estimada", "estimados", "ciao", "buongiorno", "salve", "olá", "ola", "bom dia", "boa tarde",
    "goedemorgen", "goedemiddag", "beste",
)

_SIGN_OFFS = (
    # English
    "regards", "best regards", "kind regards", "warm regards", "warmest regards", "many regards",
    "with regards", "with best regards", "with kind regards", "best wishes", "all the best",
    "best", "cheers", "thanks", "thank you", "thanks a lot", "thanks again", "many thanks",
    "thank you very much", "thanks so much", "thanks and regards", "thanks & regards",
    "thx", "ty", "br", "kr", "rgds", "sincerely", "yours sincerely", "sincerely yours",
    "yours truly", "yours", "take care", "talk soon", "have a nice day", "have a good day",
    # German
    "grüsse", "gruss", "viele grüsse", "beste grüsse", "liebe grüsse", "freundliche grüsse",
    "herzliche grüsse", "schöne grüsse", "mit freundlichen grüssen", "mit besten grüssen",
    "mit freundlichem gruss", "freundlicher gruss", "mfg", "lg", "vg", "danke", "vielen dank",
    "danke schön", "danke schon", "besten dank", "bis bald", "schönen tag noch",
    # French
    "cordialement", "bien cordialement", "très cordialement", "bien à vous", "salutations",
    "meilleures salutations", "sincères salutations", "bien amicalement", "amicalement",
    "merci", "merci beaucoup", "merci d'avance", "bonne journée", "à bientôt", "a bientôt",
    # Spanish
    "saludos", "un saludo", "saludos cordiales", "muchos saludos", "atentamente", "cordialmente",
    "gracias", "muchas gracias", "un abrazo", "hasta pronto", "hasta luego",
    # Italian, Portuguese, Dutch
    "saluti", "cordiali saluti", "distinti saluti", "grazie", "grazie mille", "a presto",
    "obrigado", "obrigada", "atenciosamente", "cumprimentos", "abraços", "groeten",
    "met vriendelijke groet", "vriendelijke groeten", "met vriendelijke groeten", "bedankt",
    "groetjes",
)

# Who a greeting addresses when it names no one ("Hi all", "Hallo zusammen", "Hola a todos").
_AUDIENCE = ("all", "everyone", "everybody", "team", "folks", "guys", "there", "all of you",
             "zusammen", "alle", "allerseits", "à tous", "a tous", "tout le monde", "a todos",
             "todos", "a tutti", "tutti", "allemaal")


def _alternatives(words: tuple[str, ...]) -> str:
    # Longest first, so "best regards" is tried before "best".
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_EDGE = r"[\s,.;:!?¡¿\-–—~*_()\"'…]*"
_GREETING = re.compile(rf"^{_EDGE}(?:{_alternatives(_GREETINGS)})(?![^\W_])(?P<rest>.*)$",
                       re.IGNORECASE)
_SIGN_OFF = re.compile(rf"^{_EDGE}(?:{_alternatives(_SIGN_OFFS)})(?![^\W_])(?P<rest>.*)$",
                       re.IGNORECASE)
_AUDIENCE_ONLY = re.compile(rf"^{_EDGE}(?:{_alternatives(_AUDIENCE)}){_EDGE}$", re.IGNORECASE)
# A name as signed: one to four words, each capitalised or an initial ("J.", "O'Neil",
# "Jean-Luc"); digits or lower-case words make it text.
_NAME_WORD = re.compile(r"^(?:[^\W\d_]\.|[^\W\d_][^\W\d_'’.\-]*(?:['’\-][^\W\d_]+)*\.?)$")
_NAME_EDGE = " \t,.;:!-–—~*_()\"'"
MAX_NAME_WORDS = 4
# Longer texts are real writing whatever their words; this also bounds the work per mail.
MAX_LINES = 12


def only_greeting_or_signoff(text: str) -> bool:
    """True when `text` holds nothing but greetings, sign-offs, mobile footers and the
    names under them: nothing worth a mail of its own. Blank text counts as such."""
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(lines) > MAX_LINES:
        return False
    signed_off = False
    for line in lines:
        kind = _line_kind(line, signed_off)
        if kind is None:
            return False
        signed_off = signed_off or kind == "sign-off"
    return True


def _line_kind(line: str, signed_off: bool) -> str | None:
    """"greeting", "sign-off", "footer" or "name" for a line of pleasantries; None for text."""
    if is_mobile_footer(line):
        return "footer"
    # Case is kept (a name is capitalised, a sentence is not); ß is spelt ss, as the
    # phrases are, and the phrases match in any case.
    plain = " ".join(line.replace("ß", "ss").replace("ẞ", "SS").split())
    for kind, pattern in (("sign-off", _SIGN_OFF), ("greeting", _GREETING)):
        found = pattern.match(plain)
        if found is None:
            continue
        rest = found.group("rest")
        if _is_blank(rest) or _is_name(rest) or (
                kind == "greeting" and _AUDIENCE_ONLY.match(rest)):
            return kind
    if signed_off and _is_name(line):
        return "name"  # "Best,\nMorgan": the name under a sign-off
    return None


def _is_blank(rest: str) -> bool:
    return not rest.strip(_NAME_EDGE + "?¡¿…")


def _is_name(text: str) -> bool:
    words = text.strip(_NAME_EDGE).replace("&", " ").split()
    return (0 < len(words) <= MAX_NAME_WORDS
            and all(_NAME_WORD.match(word) and word[0].isupper() for word in words))
