"""Intersections of categorical protected attributes: several columns become one categorical ``q``
whose groups are the cells seen in the data (``race × sex``), and the check that every cell has
enough held-out rows for its rates to mean something.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MIN_CELL_ROWS", "check_cells", "intersect"]

#: The fewest validation and test rows each cell of an intersection must have by default.
MIN_CELL_ROWS = 20
#: How a cell is named from its columns' class names.
JOIN = " × "


def intersect(codes: Sequence[np.ndarray],
              names: Sequence[Sequence[str]]) -> tuple[np.ndarray, tuple[str, ...]]:  # fmt: skip
    """One int64 code per row for the combination of ``codes`` (one array of class codes per
    column, ``names[j]`` the class names of column ``j``), and the name of each cell
    (``"Black × Female"``), in the order of the columns' codes; only combinations that occur
    become cells."""
    if len(codes) != len(names) or not codes:
        raise ValueError(f"intersect needs one array of names per column of codes, but got "
                         f"{len(codes)} and {len(names)}")  # fmt: skip
    stacked = np.column_stack([np.asarray(c, dtype=np.int64) for c in codes])
    cells, q = np.unique(stacked, axis=0, return_inverse=True)
    labels = tuple(JOIN.join(str(names[j][v]) for j, v in enumerate(row)) for row in cells)
    return q.reshape(-1).astype(np.int64), labels


def check_cells(q: np.ndarray, split: np.ndarray, names: Sequence[str], *, min_rows: int,
                label: str) -> None:  # fmt: skip
    """Every cell of ``q`` (codes into ``names``) must have at least ``min_rows`` rows in the
    validation split and in the test split (where the split has rows at all); the error names
    each small cell with its counts."""
    if not isinstance(min_rows, int) or isinstance(min_rows, bool) or min_rows < 1:
        raise ValueError(f"min_cell_rows must be an integer >= 1, but got {min_rows!r}")
    q, split = np.asarray(q).reshape(-1), np.asarray(split).astype(str)
    counts = {part: np.bincount(q[split == part], minlength=len(names))
              for part in ("val", "test") if (split == part).any()}  # fmt: skip
    small = [i for i in range(len(names)) if any(c[i] < min_rows for c in counts.values())]
    if small:
        cells = "; ".join(f"{names[i]!r} (" + ", ".join(f"{p} {int(c[i])}" for p, c in
                                                        counts.items()) + ")" for i in small)
        raise ValueError(
            f"every cell of the intersection of {label} must have at least min_cell_rows="
            f"{min_rows} rows in val and in test, where its rates are measured, but {len(small)} "
            f"of {len(names)} cells have fewer: {cells}; merge or drop those groups, use more "
            f"rows, or lower min_cell_rows"
        )
