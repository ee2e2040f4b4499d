"""Where an entrant lands at a send: global control, holdout, variant, transactional exemption; designs."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from automation.core import arms, assignment
from automation.core.journeys import Journey

IDS = [f"c{n}" for n in range(2000)]


def _journey(**extra: Any) -> Journey:
    send: dict[str, Any] = {"id": "thanks", "channel": "email"}
    send |= extra.pop("send", {"template": "hello"})
    return Journey.model_validate(
        {"id": "j", "name": "J", "trigger": {"event": {"name": "x"}}, "steps": [{"send": send}], **extra}
    )


AB = {
    "variants": [{"id": "warm", "template": "a", "weight": 1}, {"id": "short", "template": "b", "weight": 3}]
}


def _place(journey: Journey, cid: str, global_pct: float = 0) -> arms.Placement:
    sid, step = journey.send_steps()[0]
    return arms.place(journey, sid, step, cid, global_pct)


def test_without_experiment_everyone_gets_the_template_and_no_arm() -> None:
    assert {(_place(_journey(), cid).arm, _place(_journey(), cid).held_out) for cid in IDS} == {(None, False)}


def test_the_holdout_is_held_out_by_its_hash_and_the_rest_are_treatment() -> None:
    journey = _journey(holdout="10%")
    for cid in IDS:
        p = _place(journey, cid)
        held = assignment.held_out("j", cid, 10) is not None
        assert (p.arm, p.held_out, p.template) == (
            ("holdout", True, "hello") if held else ("treatment", False, "hello")
        )


def test_variants_with_a_holdout_keep_the_template_the_held_out_would_have_had() -> None:
    journey = _journey(holdout="20%", send=AB)
    for cid in IDS:
        p = _place(journey, cid)
        chosen = assignment.pick("j", "thanks", cid, [("warm", 1), ("short", 3)])
        assert p.template == ("a" if chosen.arm == "warm" else "b")
        assert p.arm == ("holdout" if p.held_out else chosen.arm)


def test_the_global_control_group_wins_over_the_holdout_and_spares_transactional_mail() -> None:
    marketing, receipt = _journey(holdout="20%"), _journey(transactional=True)
    members = [cid for cid in IDS if assignment.in_global_control(cid, 30)]
    assert members
    for cid in members:
        assert (_place(marketing, cid, 30).arm, _place(marketing, cid, 30).held_out) == (
            "global_control",
            True,
        )
        assert _place(receipt, cid, 30).held_out is False
    assert (
        _place(marketing, members[0], 30).reason
        == "held out: the global control group gets no marketing message"
    )


def test_designs_give_the_holdout_its_share_and_the_variants_the_rest_by_weight() -> None:
    assert arms.designs(_journey()) == []
    assert arms.designs(_journey(holdout="10%")) == [
        arms.Design("thanks", (("holdout", 10), ("treatment", 90)))
    ]
    assert arms.designs(_journey(holdout="20%", send=AB)) == [
        arms.Design("thanks", (("holdout", 20), ("warm", 20), ("short", 60)))
    ]
    assert arms.designs(_journey(send=AB)) == [arms.Design("thanks", (("warm", 25), ("short", 75)))]


SPLIT = {
    "split": {
        "id": "offer",
        "paths": [
            {
                "id": "coupon",
                "weight": 1,
                "steps": [
                    {"send": {"id": "mail", "channel": "email", "template": "a"}},
                    {
                        "branch": {
                            "if": {"trait": "vip", "eq": True},
                            "then": [{"wait": {"id": "pause", "days": 1}}],
                        }
                    },
                ],
            },
            {"id": "plain", "weight": 3, "steps": []},
        ],
    }
}


def _split_journey() -> Journey:
    return Journey.model_validate(
        {
            "id": "j",
            "name": "J",
            "trigger": {"event": {"name": "x"}},
            "steps": [SPLIT, {"send": {"id": "after", "channel": "email", "template": "b"}}],
        }
    )


def test_a_split_is_an_experiment_whose_arms_are_its_paths_by_share() -> None:
    assert arms.designs(_split_journey()) == [
        arms.Design("offer", (("coupon", 25), ("plain", 75)), split=True)
    ]


def test_path_steps_are_every_step_inside_a_path_nested_ones_too_and_nothing_after_the_split() -> None:
    steps = arms.path_steps(_split_journey(), "offer")
    assert steps == {"mail": "coupon", "offer.coupon-2": "coupon", "pause": "coupon"}


def test_withheld_is_the_global_control_group_first_then_the_holdout_and_never_transactional() -> None:
    journey = _journey(holdout="30%")
    for cid in IDS[:300]:
        control = assignment.global_control(cid, 10)
        held = assignment.held_out("j", cid, 30)
        assert arms.withheld(journey, cid, 10) == (control or held)
    assert {arms.withheld(_journey(transactional=True), cid, 50) for cid in IDS[:300]} == {None}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"holdout": "10"}, "a percentage is written like 10%"),
        ({"holdout": "100%"}, "a percentage lies in [0%, 100%)"),
        ({"holdout": "10%", "transactional": True}, "a transactional journey has no holdout"),
        ({"send": {"template": "a", **AB}}, "a send has exactly one of: template, variants"),
        ({"send": {"variants": [{"id": "a", "template": "a", "weight": 1}]}}, "at least 2 items"),
    ],
)
def test_bad_experiment_settings_are_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace(")", r"\)")):
        _journey(**extra)
