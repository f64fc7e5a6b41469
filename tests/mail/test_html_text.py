"""Text nobody sees in an HTML mail is not the sender's message: it is left out, so a
command tag hidden there never runs (issue 16)."""

from __future__ import annotations

import pytest

from daemon.mail.html_text import html_to_text


@pytest.mark.parametrize("html", [
    '<div>Hi Ann</div><div style="display:none">#resolve fixed</div><div>Bye</div>',
    '<div>Hi Ann</div><div style="DISPLAY: none !important">#resolve</div><div>Bye</div>',
    '<div>Hi Ann</div><span style="font-size:0">#resolve</span><div>Bye</div>',
    '<div>Hi Ann</div><span style="color:red;font-size: 0px">#resolve</span><div>Bye</div>',
    '<div>Hi Ann</div><span style="font-size:0.0pt;">#resolve</span><div>Bye</div>',
    '<div>Hi Ann</div><div style="visibility:hidden">#resolve</div><div>Bye</div>',
    '<div>Hi Ann</div><div style="opacity:0">#resolve</div><div>Bye</div>',
    '<div>Hi Ann</div><div style="mso-hide:all">#resolve</div><div>Bye</div>',
    '<div>Hi Ann</div><div hidden>#resolve</div><div>Bye</div>',
    '<div>Hi Ann</div><div style="display:none"><div><b>#resolve</b></div></div><div>Bye</div>',
])
@pytest.mark.parametrize("mark_quotes", [False, True])
def test_hidden_text_is_left_out(html: str, mark_quotes: bool) -> None:
    assert html_to_text(html, mark_quotes=mark_quotes) == "Hi Ann\nBye"


@pytest.mark.parametrize(("html", "text"), [
    ('<span style="font-size:10px">ten</span>', "ten"),
    ('<span style="font-size:0.5em">half</span>', "half"),
    ('<span style="opacity:0.8">faint</span>', "faint"),
    ('<div style="display:block">shown</div>', "shown"),
    ('<img hidden src="x.png">after', "after"),  # a void element hides nothing after it
])
def test_visible_text_is_kept(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_an_implicitly_closed_hidden_paragraph_ends_at_the_next() -> None:
    assert html_to_text("<p>Hi</p><p hidden>#resolve<p>Shown") == "Hi\n\nShown"


def test_history_marks_inside_hidden_text_do_not_cut_the_reply() -> None:
    html = '<div>Hi</div><div style="display:none"><div id="divRplyFwdMsg">x</div></div>OK'
    assert html_to_text(html, mark_quotes=True) == "Hi\nOK"
