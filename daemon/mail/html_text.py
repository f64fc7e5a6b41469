"""HTML mail bodies to plain text, stdlib only.

`html_to_text(html)` gives readable text: blocks and <br> become line breaks, lists get
"- ", <blockquote> content is prefixed "> " like a plain-text quote, scripts and styles
vanish. With `mark_quotes=True` it also prepares a reply for `daemon.mail.reply`: the quote
containers of common clients (Gmail, Yahoo, Proton) are prefixed "> " as well, signature
containers are preceded by a "-- " line, and at the first container that starts the
quoted history of Outlook / OWA / Zimbra / Thunderbird forwards a HISTORY_MARK line is
written and conversion stops, because everything after it is old mail. A blockquote without
a border is the "indent" button, not a quote.

Text a reader cannot see is left out in both modes: an element with the `hidden` attribute
or an inline style of `display:none`, `visibility:hidden`, a zero font size or opacity, or
Outlook's `mso-hide:all`. A person never read it, so it is not their message, and a command
tag hidden there must never run (issue 16). Styles from <style> sheets are not evaluated.

The tokenizer is our own few regular expressions rather than html.parser: html.parser
needs quadratic time on crafted input (`"<a " * 100_000` runs for minutes), and one such
mail must not stall the ingest loop. Every step here is linear in the input.
"""

from __future__ import annotations

import functools
import re
from html import unescape

# A line of its own that `daemon.mail.reply` treats as the start of quoted history.
HISTORY_MARK = "\ue000[quoted history]"

_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
    "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead",
    "tfoot", "tr", "ul",
})
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
_RAW_TEXT = frozenset({"script", "style", "title", "template", "noscript", "textarea"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col",
                   "embed", "source", "track", "wbr", "o:p"})

# Containers whose content is quoted history, prefixed "> " when marking quotes.
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container", "yahoo_quoted",
                            "protonmail_quote", "zmail_extra", "quote"})
# Elements after which everything is history (Outlook, OWA, Thunderbird forwards).
_HISTORY_IDS = frozenset({"divrplyfwdmsg", "x_divrplyfwdmsg", "appendonsend",
                          "mail-editor-reference-message-container", "stopspelling",
                          "zwchr"})  # zwchr: Zimbra's rule above the quoted mail
_HISTORY_CLASSES = frozenset({"moz-forward-container", "outlookmessageheader"})
# Outlook desktop draws a thin line above its "From: ... Sent: ..." block with this style.
_OUTLOOK_RULE = re.compile(r"border-top:\s*solid\s+#(?:e1e1e1|b5c4df)", re.IGNORECASE)
_SIGNATURE_IDS = frozenset({"signature", "ms-outlook-mobile-signature", "applemailsignature"})
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "moz-signature", "protonmail_signature_block"})

MAX_QUOTE_LEVELS = 30  # deeper quote containers are not tracked: bounded work per tag
_NO_BORDER = re.compile(r"(?:^|;)\s*border\s*:\s*none", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\xad]")
_BLANK_LINES = re.compile(r"\n{3,}")
# Inline styles that make an element's content invisible; `0` with any unit, or none.
_HIDING_STYLE = re.compile(
    r"(?:^|[;\s])(?:display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all"
    r"|(?:font-size|opacity)\s*:\s*[0.]*0*(?:px|pt|em|rem|ex|%)?\s*(?:!important\s*)?(?:;|$))",
    re.IGNORECASE)
# Tags a new one of the same name implicitly closes (`<p hidden>x<p>shown`).
_SELF_CLOSING_BY_SIBLING = frozenset({"p", "li", "dt", "dd", "tr", "td", "th", "option"})


# A tag, comment, declaration or processing instruction. Possessive quantifiers (*+) keep
# a failed match from backtracking, so text full of "<" stays linear.
_TOKEN = re.compile(r"<(?:(/?)([a-zA-Z][^\s/<>]*+)([^<>]*+)>|!--|![^<>]*+>|\?[^<>]*+>)")
_ATTRIBUTE = re.compile(r"""([^\s=/<>"']++)(?:\s*=\s*(?:"([^"]*+)"|'([^']*+)'|([^\s"'=<>`]++)))?""")


class _Done(Exception):
    """Raised inside the converter to stop at the start of quoted history."""


def html_to_text(html: str, *, mark_quotes: bool = False) -> str:
    """Readable plain text of an HTML body; see the module docstring for `mark_quotes`."""
    converter = _Converter(mark_quotes)
    try:
        _tokenize(html, converter)
    except _Done:
        converter.history_reached()
    return converter.text()


def _tokenize(html: str, out: _Converter) -> None:
    position = 0
    while (match := _TOKEN.search(html, position)) is not None:
        out.handle_data(unescape(html[position:match.start()]))
        position = match.end()
        if match[0] == "<!--":
            end = html.find("-->", position)
            position = len(html) if end < 0 else end + 3
        elif match[2]:
            position = _tag(html, match, position, out)
    out.handle_data(unescape(html[position:]))


def _tag(html: str, match: re.Match[str], position: int, out: _Converter) -> int:
    """Hand one tag to the converter; return where the text after it starts."""
    name = match[2].lower()
    if match[1]:
        out.handle_endtag(name)
        return position
    out.handle_starttag(name, _attributes(match[3]))
    if match[3].rstrip().endswith("/"):
        out.handle_endtag(name)
    elif name in _RAW_TEXT:  # skip to </script> etc., without looking for tags inside
        end = _raw_end(name).search(html, position)
        position = len(html) if end is None else end.end()
        out.handle_endtag(name)
    return position


def _is_indent(attrs: dict[str, str | None]) -> bool:
    """Gmail's and Apple Mail's "indent" is a <blockquote style="margin:0 0 0 40px;
    border:none">, not a quote."""
    return attrs.get("type") != "cite" and bool(_NO_BORDER.search(attrs.get("style") or ""))


@functools.lru_cache(maxsize=16)
def _raw_end(name: str) -> re.Pattern[str]:
    return re.compile(rf"</{name}\s*>", re.IGNORECASE)


def _attributes(text: str) -> list[tuple[str, str | None]]:
    return [(m[1].lower(), unescape(next((v for v in m.groups()[1:] if v is not None), "")))
            for m in _ATTRIBUTE.finditer(text)]


class _Converter:
    def __init__(self, mark_quotes: bool) -> None:
        self.mark_quotes = mark_quotes
        self.lines: list[str] = []
        self.current: list[str] = []
        self.depth = 0                         # how many quote levels we are inside
        self.open_quotes: list[list[object]] = []  # [tag, nesting of that tag] per level
        self.pre = 0
        self.nbsp = False     # the current line had a &nbsp;
        self.tight_p = False  # the open <p> is Word's MsoNormal
        self.hidden: list[object] = []  # [tag, nesting] of the invisible element we are in

    # -------------------------------------------------------------- tags

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _RAW_TEXT:  # the tokenizer skipped their content
            return
        attributes = dict(attrs)
        if self._hiding(tag, attributes):
            return
        self._count_nesting(tag, +1)
        if tag == "p":  # Word's MsoNormal paragraphs have no margin: lines, not paragraphs
            self.tight_p = "msonormal" in (attributes.get("class") or "").lower()
        if self.mark_quotes:
            self._mark(tag, attributes)
        elif tag == "blockquote" and not _is_indent(attributes):
            self._enter_quote(tag)
        self._open_block(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _RAW_TEXT or tag in _VOID:
            return
        if self.hidden:
            self._leave_hidden(tag)
            return
        if tag in _BLOCKS:
            self._break()
            if tag in _PARAGRAPHS and not (tag == "p" and self.tight_p):
                self._blank()
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        self._count_nesting(tag, -1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            self._pre_text(data)
        else:
            self.current.append(_SPACES.sub(" ", data))
            self.nbsp = self.nbsp or "\xa0" in data

    # -------------------------------------------------------------- invisible text

    def _hiding(self, tag: str, attrs: dict[str, str | None]) -> bool:
        """True when this start tag is inside, or starts, text nobody sees."""
        if self.hidden:
            if tag == self.hidden[0] and tag not in _VOID:
                if tag in _SELF_CLOSING_BY_SIBLING and self.hidden[1] == 1:
                    self.hidden = []  # the hidden one ended here; this one is seen
                    return False
                self.hidden[1] = int(self.hidden[1]) + 1  # type: ignore[call-overload]
            return True
        if tag in _VOID or not ("hidden" in attrs
                                or _HIDING_STYLE.search(attrs.get("style") or "")):
            return False
        self.hidden = [tag, 1]
        return True

    def _leave_hidden(self, tag: str) -> None:
        if tag == self.hidden[0]:
            self.hidden[1] = int(self.hidden[1]) - 1  # type: ignore[call-overload]
            if int(self.hidden[1]) <= 0:  # type: ignore[call-overload]
                self.hidden = []

    # -------------------------------------------------------------- quotes and history

    def _mark(self, tag: str, attrs: dict[str, str | None]) -> None:
        ident = (attrs.get("id") or "").lower()
        classes = set((attrs.get("class") or "").lower().split())
        if ident in _HISTORY_IDS or classes & _HISTORY_CLASSES or self._outlook_rule(attrs):
            raise _Done
        if ident in _SIGNATURE_IDS or classes & _SIGNATURE_CLASSES:
            self._break()
            self.lines.append("-- ")
        if ((tag == "blockquote" and not _is_indent(attrs)) or classes & _QUOTE_CLASSES
                or any(name.endswith("yahoo_quoted") for name in classes)):  # "ydp1a2byahoo_quoted"
            self._enter_quote(tag)
        elif tag == "hr" and attrs.get("tabindex") == "-1":
            raise _Done  # OWA puts this rule right above the quoted mail

    @staticmethod
    def _outlook_rule(attrs: dict[str, str | None]) -> bool:
        style = attrs.get("style") or ""
        return "border-top" in style and bool(_OUTLOOK_RULE.search(style))

    def _enter_quote(self, tag: str) -> None:
        if len(self.open_quotes) >= MAX_QUOTE_LEVELS:
            return  # still inside the outer levels, whose counters see this tag
        self._break()
        self.open_quotes.append([tag, 0])
        self.depth += 1

    def _count_nesting(self, tag: str, step: int) -> None:
        """Track nesting of each quote container's own tag to find where it ends."""
        if tag in _VOID or not self.open_quotes:
            return
        for level in self.open_quotes:
            if level[0] == tag:
                level[1] = int(level[1]) + step  # type: ignore[call-overload]
        while self.open_quotes and int(self.open_quotes[-1][1]) < 0:  # type: ignore[call-overload]
            self.open_quotes.pop()
            self._break()
            self.depth -= 1

    def history_reached(self) -> None:
        self._break()
        self.lines.append(HISTORY_MARK)

    # -------------------------------------------------------------- layout

    def _open_block(self, tag: str) -> None:
        if tag == "br":
            self._break(keep_empty=True)
        elif tag == "li":
            self._break()
            self.current.append("- ")
        elif tag == "pre":
            self._break()
            self.pre += 1
        elif tag in ("td", "th"):
            self.current.append(" ")
        elif tag in _BLOCKS:
            self._break()

    def _pre_text(self, data: str) -> None:
        head, *rest = data.replace("\r\n", "\n").split("\n")
        self.current.append(head)
        for line in rest:
            self._break(keep_empty=True)
            self.current.append(line)

    def _break(self, keep_empty: bool = False) -> None:
        line = "".join(self.current)
        self.current = []
        line = line.strip() if not self.pre else line.rstrip()
        keep_empty = keep_empty or self.nbsp  # <div>&nbsp;</div> is how many clients space
        self.nbsp = False
        if line or keep_empty:
            self.lines.append(("> " * self.depth + line).rstrip() if self.depth else line)

    def _blank(self) -> None:
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def text(self) -> str:
        self._break()
        text = _INVISIBLE.sub("", "\n".join(self.lines)).replace("\xa0", " ")
        return _BLANK_LINES.sub("\n\n", text).strip("\n")
