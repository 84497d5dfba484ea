"""Whose fault a refusal is: the judge's rules on their own (service/domain/refusals.py)."""

from __future__ import annotations

import pytest

from service.domain import bounce_policy
from service.domain.refusals import RefusalJudge, Reply, Stage
from service.models import ReportKind
from service.sending.ledger import Recipient, refusal_report


def rcpt(text: str, code: int = 550) -> Reply:
    return Reply(code, text, Stage.RCPT)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(554, "Transaction failed", Stage.DATA),
        Reply(550, "5.7.1 Message rejected as spam", Stage.DATA),
        Reply(554, "5.6.0 Content rejected", Stage.RCPT),
        Reply(553, "5.3.4 Message too big for system", Stage.RCPT),
        Reply(550, "5.7.1 Sender address rejected", Stage.MAIL),
        Reply(554, "Service unavailable", Stage.SESSION),
    ],
)
def test_a_refusal_of_the_message_is_for_everyone_at_once(reply: Reply) -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    assert judge.refused(1, "kari@mail.example", reply)
    assert judge.release_held() == [(1, reply)]


def test_a_refusal_at_data_that_names_the_mailbox_is_about_that_reader() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    full = Reply(552, "5.2.2 Mailbox full", Stage.DATA)
    assert not judge.refused(1, "kari@mail.example", full)
    assert judge.delivered() == [(1, full)]


def test_the_same_refusal_for_three_readers_in_a_row_is_the_relays() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    addresses = ["a1@one.example", "b22@two.example", "c333@three.example"]
    for n, address in enumerate(addresses):
        reply = rcpt(f"5.4.1 <{address}>: Access denied. AS(2018{n}) [DB5EUR03FT0{n}]")
        assert judge.refused(n, address, reply) is (n == 2)
    assert [d for d, _ in judge.release_held()] == [0, 1, 2]


def test_no_such_mailbox_needs_a_longer_run_than_other_refusals() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    verdicts = [
        judge.refused(n, f"r{n}@d{n}.example", rcpt(f"5.1.1 <r{n}@d{n}.example>: User unknown"))
        for n in range(10)
    ]
    assert verdicts == [False] * 9 + [True]


def test_a_delivery_in_between_breaks_the_run_and_blames_the_held() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    blocked = rcpt("5.7.1 Client host blocked")
    assert not judge.refused(1, "a@one.example", blocked)
    assert not judge.refused(2, "b@two.example", blocked)
    assert judge.delivered() == [(1, blocked), (2, blocked)]
    assert not judge.refused(3, "c@three.example", blocked)  # a new run starts
    assert judge.holding == [3]


def test_different_refusals_in_a_row_end_as_everyones_at_the_run_limit() -> None:
    judge: RefusalJudge[int] = RefusalJudge(run_limit=5)
    texts = ["5.4.1 a", "5.4.4 b", "5.0.0 c", "5.5.0 d", "5.4.7 e"]
    verdicts = [judge.refused(n, f"r{n}@x.example", rcpt(t)) for n, t in enumerate(texts)]
    assert verdicts == [False, False, False, False, True]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("5.1.1 No such user", ReportKind.HARD_BOUNCE),
        ("5.1.10 Recipient address has null MX", ReportKind.HARD_BOUNCE),
        ("5.2.2 Mailbox full", ReportKind.SOFT_BOUNCE),
        ("5.4.1 Recipient address rejected: Access denied", ReportKind.HARD_BOUNCE),
        ("Rejected", ReportKind.SOFT_BOUNCE),
        ("Requested action not taken: mailbox unavailable", ReportKind.HARD_BOUNCE),
        ("5.7.1 Recipient refuses your domain", ReportKind.REFUSAL),
    ],
)
def test_a_refusal_laid_on_a_reader_goes_by_the_bounce_policys_table(
    text: str, kind: ReportKind
) -> None:
    report = refusal_report(Recipient(1, 2, "uid", "reader@mail.example", "nb"), rcpt(text))
    assert bounce_policy.classify(report.action, report.status, report.diagnostic) is kind


def test_the_signature_masks_what_differs_per_reader() -> None:
    one = rcpt("5.1.1 <kari@fjord.example>: unknown in table (id 4f2a91c3) at 10:04:11")
    other = rcpt("5.1.1 <ola@bre.example>: unknown in table (id 77bb0e12) at 10:04:12")
    assert one.signature("kari@fjord.example") == other.signature("ola@bre.example")
    assert rcpt("5.1.1 unknown").signature("a@b.example") != rcpt("5.2.2 full").signature(
        "a@b.example"
    )


def test_an_enhanced_code_is_read_at_the_start_of_a_line_only() -> None:
    blocked = Reply(554, "Service unavailable; Client host [10.5.1.2] blocked", Stage.RCPT)
    assert blocked.enhanced == "" and not blocked.names_mailbox
    gmail = Reply(
        550, "5.1.1 The email account that you tried\n5.1.1 to reach does not exist", Stage.RCPT
    )
    assert gmail.enhanced == "5.1.1"
    assert Reply(550, "4.1.1 odd", Stage.RCPT).enhanced == ""  # not of the reply's class


def test_one_letter_local_parts_do_not_break_the_signature() -> None:
    signatures = {
        rcpt(f"5.7.1 <{a}@x{i}.example>: Recipient address rejected").signature(f"{a}@x{i}.example")
        for i, a in enumerate("elay")
    }
    assert len(signatures) == 1


@pytest.mark.parametrize(
    "text", ["Relay access denied", "relay not permitted", "Relaying denied", "Unable to relay"]
)
def test_a_refusal_to_relay_is_about_the_message(text: str) -> None:
    assert rcpt(text, code=554).about_the_message


def test_one_domains_refusals_alone_make_no_pattern_before_the_run_limit() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    refusals = [
        judge.refused(n, f"r{n}@dead.example", rcpt("5.4.1 Access denied")) for n in range(5)
    ]
    assert refusals == [False] * 5


def test_readers_given_back_by_a_pattern_do_not_make_the_next_one() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    denied = rcpt("5.4.1 Access denied")
    for n in range(5):
        assert not judge.refused(n, f"r{n}@d{n}.example", denied, given_back_before=True)
    assert judge.delivered() == [(n, denied) for n in range(5)]


def test_a_batch_that_ends_refused_alike_with_nothing_through_is_the_relays() -> None:
    judge: RefusalJudge[int] = RefusalJudge()
    judge.refused(1, "a@one.example", rcpt("5.1.1 <a@one.example>: unknown"))
    assert not judge.ends_unjudged()  # one refusal says nothing
    judge.refused(2, "b@one.example", rcpt("5.1.1 <b@one.example>: unknown"))
    assert judge.ends_unjudged()
    other: RefusalJudge[int] = RefusalJudge()
    other.refused(1, "a@one.example", rcpt("5.1.1 unknown"))
    other.refused(2, "b@two.example", rcpt("5.2.2 full"))
    assert not other.ends_unjudged()
