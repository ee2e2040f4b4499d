"""RFM segments: the name of each (recency score, frequency score) cell. Pure.

Scores run 1 to 5 by quintile (5: the most recent, the most orders, the most
spent); `automation.insight.rfm` computes them in the database. A segment is
read from R and F; M is a fact of its own.

    R \\ F   1               2               3               4       5
    5       new             potential_loy.  potential_loy.  champ.  champ.
    4       promising       potential_loy.  potential_loy.  loyal   loyal
    3       about_to_sleep  about_to_sleep  need_attention  loyal   loyal
    2       hibernating     hibernating     at_risk         at_risk cannot_lose
    1       lost            hibernating     at_risk         at_risk cannot_lose
"""

from __future__ import annotations

from enum import StrEnum

SCORES = range(1, 6)


class Segment(StrEnum):
    CHAMPIONS = "champions"
    LOYAL = "loyal"
    POTENTIAL_LOYALIST = "potential_loyalist"
    NEW = "new"
    PROMISING = "promising"
    NEED_ATTENTION = "need_attention"
    ABOUT_TO_SLEEP = "about_to_sleep"
    AT_RISK = "at_risk"
    CANNOT_LOSE = "cannot_lose"
    HIBERNATING = "hibernating"
    LOST = "lost"


def _recent(r: int, f: int) -> Segment:
    """R 4 or 5."""
    if f >= 4:
        return Segment.CHAMPIONS if r == 5 else Segment.LOYAL
    if f >= 2:
        return Segment.POTENTIAL_LOYALIST
    return Segment.NEW if r == 5 else Segment.PROMISING


def _middle(f: int) -> Segment:
    """R 3."""
    if f >= 4:
        return Segment.LOYAL
    return Segment.NEED_ATTENTION if f == 3 else Segment.ABOUT_TO_SLEEP


def _lapsed(r: int, f: int) -> Segment:
    """R 1 or 2."""
    if f == 5:
        return Segment.CANNOT_LOSE
    if f >= 3:
        return Segment.AT_RISK
    return Segment.LOST if r == 1 and f == 1 else Segment.HIBERNATING


def segment(r: int, f: int) -> Segment:
    """The segment of a recency score and a frequency score, each 1 to 5."""
    if r not in SCORES or f not in SCORES:
        raise ValueError(f"RFM scores run 1 to 5, not R={r} F={f}")
    if r >= 4:
        return _recent(r, f)
    return _middle(f) if r == 3 else _lapsed(r, f)


#: Every cell, for the database's CASE expression.
GRID: dict[tuple[int, int], Segment] = {(r, f): segment(r, f) for r in SCORES for f in SCORES}
