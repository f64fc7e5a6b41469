"""Is a requester's reply only a thank-you? Pure: the new text of the reply in, yes or no out.

Used by the `not_just_thanks` condition, so that "Thanks, works now!" on a resolved ticket is
recorded (and passed to the team) instead of reopening it. When in doubt the answer is no and
the ticket reopens: a false reopen costs a technician a #resolve, a missed one leaves a
requester with a broken laptop. So a thank-you must be short, say thanks or that it works,
and hold no question and no word that reports a problem.
"""

from __future__ import annotations

import re

MAX_WORDS = 50  # greeting, thanks, a sign-off and a name; longer mail says something more

_GRATITUDE = re.compile(
    r"\b(thanks?|thank\s+you|thx|ty|cheers|appreciated?|great|perfect|awesome|"
    r"works?(\s+now)?|working(\s+now)?|fixed|solved|resolved|all\s+good|"
    r"danke|vielen\s+dank|merci|gracias|grazie|funktioniert)\b", re.IGNORECASE)
# All-clear phrases that hold a problem word; removed before looking for problems.
_ALL_CLEAR = re.compile(
    r"\b((works?|working|runs?|running|is\s+up|back)\s+again|no\s+(problem|worries)s?|"
    r"not\s+a\s+problem)\b", re.IGNORECASE)
_PROBLEM = re.compile(
    r"\?|n['’]t\b|\b(not|no|never|nothing|still|again|anymore|broke|broken|fail\w*|error\w*|"
    r"issue\w*|problem\w*|wrong|down|crash\w*|cannot|unable|reopen\w*|"
    r"nicht|kein\w*|noch|wieder|fehler\w*|kaputt)\b", re.IGNORECASE)


def just_thanks(text: str) -> bool:
    """True only for a short reply that thanks or confirms and reports nothing new."""
    words = text.split()
    if not words or len(words) > MAX_WORDS:
        return False
    if _PROBLEM.search(_ALL_CLEAR.sub(" ", text)):
        return False
    return _GRATITUDE.search(text) is not None
