"""Deterministic assignment: the same arms in another process and on a re-run; weights honoured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from automation.core import assignment
from automation.core.assignment import BUCKETS, pick

IDS = [f"c{n}" for n in range(100_000)]
ARMS = [("warm", 50.0), ("short", 30.0), ("long", 20.0)]
#: Three standard deviations of a share near 0.5 on 100,000 ids is 0.0047: 0.01 is a wide margin.
TOLERANCE = 0.01

SCRIPT = """
import json, sys
from automation.core.assignment import pick
arms = [("warm", 50.0), ("short", 30.0), ("long", 20.0)]
print(json.dumps([pick("post_purchase_thanks", "thanks", f"c{n}", arms).arm for n in range(2000)]))
"""


def test_another_process_with_another_hash_seed_finds_the_same_arms() -> None:
    here = [pick("post_purchase_thanks", "thanks", f"c{n}", ARMS).arm for n in range(2000)]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert json.loads(out.stdout) == here


def test_a_re_run_finds_the_same_arm_and_bucket() -> None:
    first = [pick("j", "s", cid, ARMS) for cid in IDS[:1000]]
    assert [pick("j", "s", cid, ARMS) for cid in IDS[:1000]] == first


def test_a_bucket_is_a_fixed_function_of_journey_unit_and_customer() -> None:
    # Pinned values: a change of hash would move every customer to another arm.
    assert [assignment.bucket("j", "holdout", f"c{n}") for n in range(3)] == [3082, 4639, 8558]


@pytest.mark.parametrize("arms", [ARMS, [("a", 1.0), ("b", 1.0)], [("a", 90.0), ("b", 10.0)]])
def test_weights_are_honoured_within_one_point_on_100000_ids(arms: list[tuple[str, float]]) -> None:
    counts = Counter(pick("j", "step-1", cid, arms).arm for cid in IDS)
    total = sum(w for _, w in arms)
    for arm, weight in arms:
        assert abs(counts[arm] / len(IDS) - weight / total) < TOLERANCE


def test_a_holdout_of_ten_per_cent_holds_out_ten_per_cent_within_one_point() -> None:
    held = sum(assignment.held_out("inactive_60d", cid, 10) is not None for cid in IDS)
    assert abs(held / len(IDS) - 0.10) < TOLERANCE


def test_the_global_control_group_is_its_own_hash_and_honours_its_share() -> None:
    members = {cid for cid in IDS if assignment.in_global_control(cid, 5)}
    assert abs(len(members) / len(IDS) - 0.05) < TOLERANCE
    journey_held = {cid for cid in IDS if assignment.held_out("inactive_60d", cid, 5)}
    assert members != journey_held
    assert not any(assignment.in_global_control(cid, 0) for cid in IDS[:1000])


def test_an_assignment_says_why() -> None:
    a = pick("j", "s", "c1", [("a", 50.0), ("b", 50.0)])
    assert a.low <= a.bucket < a.high
    assert (a.arm, a.low, a.high) in {("a", 0, BUCKETS // 2), ("b", BUCKETS // 2, BUCKETS)}
    assert a.why() == f"bucket {a.bucket} of 10,000 lies in {a.arm!r}'s range [{a.low}, {a.high})"


def test_changing_weights_moves_only_the_customers_between_the_old_and_new_cut() -> None:
    before = {cid: pick("j", "s", cid, [("a", 50.0), ("b", 50.0)]).arm for cid in IDS[:10_000]}
    after = {cid: pick("j", "s", cid, [("a", 60.0), ("b", 40.0)]).arm for cid in IDS[:10_000]}
    moved = {cid for cid in before if before[cid] != after[cid]}
    assert all(before[cid] == "b" and after[cid] == "a" for cid in moved)
