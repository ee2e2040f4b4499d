"""RFM segments: the documented grid of (R, F) cells, and score bounds."""

from __future__ import annotations

import numpy as np
import pytest

from automation.core.clv import by_decile, deciles
from automation.core.rfm import GRID, Segment, segment

CASES = [
    (5, 5, "champions"),
    (5, 4, "champions"),
    (4, 5, "loyal"),
    (3, 4, "loyal"),
    (5, 3, "potential_loyalist"),
    (4, 2, "potential_loyalist"),
    (5, 1, "new"),
    (4, 1, "promising"),
    (3, 3, "need_attention"),
    (3, 2, "about_to_sleep"),
    (2, 4, "at_risk"),
    (1, 3, "at_risk"),
    (2, 5, "cannot_lose"),
    (2, 2, "hibernating"),
    (1, 2, "hibernating"),
    (1, 1, "lost"),
]


@pytest.mark.parametrize(("r", "f", "name"), CASES)
def test_each_cell_has_its_documented_segment(r: int, f: int, name: str) -> None:
    assert segment(r, f) == name


def test_the_grid_covers_every_cell_and_every_segment() -> None:
    assert len(GRID) == 25
    assert set(GRID.values()) == set(Segment)


def test_a_score_outside_one_to_five_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 5"):
        segment(0, 3)


def test_deciles_split_values_into_ten_equal_groups_by_rank() -> None:
    values = np.array([float(v) for v in range(20, 0, -1)])
    assert list(deciles(values)) == [float(10 - i // 2) for i in range(20)]
    rows = by_decile(values, np.ones(20))
    assert rows[0] == (1, 2, 3.0, 2.0) and rows[-1] == (10, 2, 39.0, 2.0)
