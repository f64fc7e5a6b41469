"""Which files a mail carries, pure: the budget and who may get what (outbound/attachments.py)."""

from __future__ import annotations

from daemon.outbound.attachments import ATTACH, Offered, Ref, Want, choose, wanted, within


def test_files_are_attached_while_they_fit_the_budget() -> None:
    assert within([4, 5, 3, 1], 8) == [True, False, True, True]
    assert within([1, 2], 0) == [False, False]  # 0: only listed
    assert within([], 10) == []


def test_every_file_is_listed_and_says_whether_it_is_attached() -> None:
    offered = [Offered(Ref(1, "2", "a.png", "image/png", 10), "ann@example.org", None),
               Offered(Ref(1, "3", "b.zip", "application/zip", 90), "ann@example.org", None)]
    chosen = choose(offered, 50)
    assert [r.filename for r in chosen.attached] == ["a.png"] and chosen.size == 10
    assert [(f["filename"], f["attached"]) for f in chosen.listed] == [
        ("a.png", True), ("b.zip", False)]


def test_who_gets_which_files() -> None:
    def want(context: dict[str, object], lists: bool, external: bool) -> Want | None:
        return wanted(context, lists, external, handoff_budget=10, reply_budget=20)

    # A team's handoff lists the ticket's files; an outsider gets none unless asked.
    assert want({}, True, False) == Want("ticket", 10)
    assert want({}, True, True) is None
    assert want({}, False, False) is None
    # A technician's reply: that mail's files, to the requester, on the reply budget.
    assert want({ATTACH: {"mail": ["m@x", "d"]}}, False, True) == Want("mail", 20, ("m@x", "d"))
    # #vendor NAME +attachments: the requester's files, on the handoff budget.
    assert want({ATTACH: {"from": "requester"}}, True, True) == Want("requester", 10)
