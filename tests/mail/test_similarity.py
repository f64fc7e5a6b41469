"""The pure scoring behind look-alikes and past fixes: words, the overlap score, the best of a
list, and which terms of a report a past-fix query asks the index for."""

from __future__ import annotations

from daemon.mail.similarity import (
    TermQuery,
    best,
    query_terms,
    report_text,
    similarity,
    stems,
    words,
)


def test_words_drop_stop_words_short_numbers_and_repeats() -> None:
    assert words("Hi, the VPN is DOWN since 9:00 (error 809)! vpn") == [
        "vpn", "down", "error", "809"]
    assert stems("Printers printing printed") == frozenset({"printer", "print"})


def test_overlap_over_the_shorter_side_and_two_words_at_least() -> None:
    assert similarity(stems("printer jams"), stems("the printer jams on floor 3 daily")) == 1
    assert similarity(stems("printer jams"), stems("printer offline")) == 0
    assert similarity(stems("vpn down error"), stems("vpn down ok fine")) == 2 / 3


def test_best_keeps_the_threshold_the_limit_and_the_given_order_on_ties() -> None:
    query = stems("vpn client cannot connect certificate")  # cannot: a stop word
    items = ["vpn client broken today", "printer jam", "vpn client certificate",
             "vpn client connect certificate", "vpn certificate", "vpn timeout"]
    found = best(query, items, stems, threshold=0.5, limit=3)
    # Three at 1.0, in the given order (newest first, or the index's rank), then the limit.
    assert [item for _, item in found] == [
        "vpn client certificate", "vpn client connect certificate", "vpn certificate"]
    assert [score for score, _ in best(query, items, stems, threshold=0.5, limit=9)] == [
        1.0, 1.0, 1.0, 2 / 3]
    # One shared word is never a match, whatever the threshold.
    assert [item for _, item in best(query, items, stems, threshold=0.0, limit=9)][-1] == (
        "vpn client broken today")


def test_report_text_is_the_subject_and_the_first_lines() -> None:
    body = "\n".join(f"line {n}" for n in range(20))
    text = report_text("Subject", f"\r\n\r\n{body}")
    assert text.splitlines()[:2] == ["Subject", "line 0"] and text.endswith("line 7")


def test_rare_terms_are_ored_rarest_first_and_unknown_ones_dropped() -> None:
    shares = [("printer", 0.2), ("toner", 0.001), ("fuser", 0.0), ("jam", 0.04),
              ("cyan", 0.001), ("tray", 0.01), ("duplex", 0.03)]
    assert query_terms(shares, 100_000) == [
        TermQuery(("toner", "cyan", "tray", "duplex"), any_of=True)]


def test_uncounted_terms_count_as_rarest_in_report_order() -> None:
    # PostgreSQL's statistics list only the common lexemes: the others are None.
    shares = [("error", 0.3), ("0x80070005", None), ("outlook", 0.02), ("ost", None)]
    assert query_terms(shares, 100_000) == [
        TermQuery(("0x80070005", "ost", "outlook"), any_of=True)]


def test_only_common_terms_are_anded_then_the_rarest_two() -> None:
    shares = [("printer", 0.2), ("jam", 0.1), ("floor", 0.3), ("page", 0.4)]
    assert query_terms(shares, 100_000) == [
        TermQuery(("jam", "printer", "floor"), any_of=False),
        TermQuery(("jam", "printer"), any_of=False)]
    assert query_terms([("printer", 0.2), ("jam", 0.1)], 100_000) == [
        TermQuery(("jam", "printer"), any_of=False)]
    assert query_terms([("printer", 0.2), ("printer", 0.2)], 100_000) == []


def test_a_small_store_has_no_common_terms() -> None:
    # 50% of 40 documents is 20: ranking them all costs nothing.
    shares = [("vpn", 1.0), ("down", 0.5), ("near", 0.5)]
    assert query_terms(shares, 40) == [TermQuery(("down", "near", "vpn"), any_of=True)]
    assert query_terms(shares, 0) == [TermQuery(("down", "near", "vpn"), any_of=True)]
