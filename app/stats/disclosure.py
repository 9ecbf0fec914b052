"""Disclosure control for count tables: primary and complementary cell suppression.

Zero is treated like any other count below ``k``: it is suppressed. A published 0 tells a partner that
nobody in a small group did something, which singles that group out as surely as a 1 does, and the issue
says every count below the minimum is returned as ``null``. Every published figure is therefore >= k.

A table publishes either its interior cells only, or the full hierarchy of margins: every total over any
subset of its dimensions, down to the grand total. In a key, ``None`` in a position means "summed over
that dimension". The protection guarantees that no suppressed figure can be computed exactly from the
published ones: neither by linear algebra over the table's additivity equations, nor by the
non-negativity of counts (a line whose hidden cells must sum to 0). Known gap: non-negativity across
several lines at once can still pin hidden zeros (tests/test_stats_disclosure.py has the example, xfail).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

MIN_K = 3
MAX_DIMENSIONS = 3

Key = tuple[str, ...]
EntryKey = tuple[str | None, ...]
# The members of a line along one dimension, and the line's total.
Equation = tuple[list[EntryKey], EntryKey]


@dataclass(frozen=True)
class Table:
    """Counts by up to three dimensions; combinations missing from ``counts`` are zero."""

    dimensions: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    counts: Mapping[Key, int]
    with_margins: bool = True

    def __post_init__(self) -> None:
        """Refuse shapes and counts that cannot be a table of people."""
        if not 1 <= len(self.dimensions) <= MAX_DIMENSIONS:
            raise ValueError(f"a table has 1 to {MAX_DIMENSIONS} dimensions, not {len(self.dimensions)}")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise ValueError(f"dimensions repeat: {self.dimensions}")
        if len(self.levels) != len(self.dimensions):
            raise ValueError("levels must give one list of values per dimension")
        for name, values in zip(self.dimensions, self.levels, strict=True):
            if not values or len(set(values)) != len(values):
                raise ValueError(f"dimension {name!r} needs distinct values, got {values}")
        for key, count in self.counts.items():
            if len(key) != len(self.dimensions) or any(
                value not in values for value, values in zip(key, self.levels, strict=True)
            ):
                raise ValueError(f"cell {key} is not in the table's levels")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"cell {key} has count {count!r}; counts are integers >= 0")

    def cell_keys(self) -> list[Key]:
        """Every interior cell, in level order."""
        return list(itertools.product(*self.levels))

    def entry_keys(self) -> list[EntryKey]:
        """Every published figure: interior cells, then (with margins) all totals, in a fixed order."""
        if not self.with_margins:
            return list(self.cell_keys())
        options = [(*values, None) for values in self.levels]
        return list(itertools.product(*options))

    def value(self, key: EntryKey) -> int:
        """The true count of a cell or margin."""
        ranges = [values if part is None else (part,) for part, values in zip(key, self.levels, strict=True)]
        return sum(self.counts.get(cell, 0) for cell in itertools.product(*ranges))


@dataclass(frozen=True)
class Cell:
    """One published figure: its value, or ``None`` when suppressed."""

    value: int | None
    suppressed: bool

    def as_dict(self) -> dict[str, int | bool | None]:
        """The wire form, ``{"value": ..., "suppressed": ...}``."""
        return {"value": self.value, "suppressed": self.suppressed}


@dataclass(frozen=True)
class ProtectedTable:
    """A table after suppression; ``cells`` holds every published key in a fixed order."""

    dimensions: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    k: int
    cells: dict[EntryKey, Cell] = field(default_factory=dict)

    def get(self, key: EntryKey) -> Cell:
        """The figure for a cell or margin key."""
        return self.cells[key]

    def suppressed_keys(self) -> list[EntryKey]:
        """Keys of the suppressed figures, in table order."""
        return [key for key, cell in self.cells.items() if cell.suppressed]


def share(part: Cell, whole: Cell) -> float | None:
    """``part / whole`` rounded to 4 places, only when both are published and ``whole`` is not 0."""
    if part.value is None or whole.value is None or whole.value == 0:
        return None
    return round(part.value / whole.value, 4)


def lines(table: Table) -> Iterator[Equation]:
    """Each additivity equation: the members of a line along one dimension, and the line's total."""
    if not table.with_margins:
        return
    for key in table.entry_keys():
        for axis, part in enumerate(key):
            if part is None or part != table.levels[axis][0]:
                continue
            members = [(*key[:axis], value, *key[axis + 1 :]) for value in table.levels[axis]]
            yield members, (*key[:axis], None, *key[axis + 1 :])


def protect(table: Table, k: int) -> ProtectedTable:
    """Suppress every figure below ``k``, then enough complements that none can be recovered."""
    if isinstance(k, bool) or not isinstance(k, int) or k < MIN_K:
        raise ValueError(f"the minimum cell size must be an integer >= {MIN_K}, got {k!r}")
    order = {key: position for position, key in enumerate(table.entry_keys())}
    values = {key: table.value(key) for key in order}
    suppressed = {key for key, value in values.items() if value < k}
    equations = list(lines(table))
    while True:
        exposed = _exposed(equations, values, suppressed)
        if not exposed:
            break
        suppressed.add(_complement(exposed[0], equations, values, suppressed, order))
    cells = {
        key: Cell(None, True) if key in suppressed else Cell(values[key], False)
        for key in sorted(order, key=order.__getitem__)
    }
    return ProtectedTable(table.dimensions, table.levels, k, cells)


def _exposed(
    equations: list[Equation], values: Mapping[EntryKey, int], suppressed: set[EntryKey]
) -> list[EntryKey]:
    """Suppressed figures that the published ones pin down, most obvious first."""
    for members, total in equations:
        hidden = [key for key in [*members, total] if key in suppressed]
        if len(hidden) == 1:
            return hidden
        hidden_members = [key for key in members if key in suppressed]
        # Counts cannot be negative: hidden cells that must sum to 0 are all known to be 0.
        if total not in suppressed and hidden_members and sum(values[key] for key in hidden_members) == 0:
            return hidden_members
    return determined(equations, suppressed)


def _complement(
    target: EntryKey,
    equations: list[Equation],
    values: Mapping[EntryKey, int],
    suppressed: set[EntryKey],
    order: Mapping[EntryKey, int],
) -> EntryKey:
    """The smallest published figure sharing a line with ``target`` (ties by table order)."""
    near = {key for members, total in equations if target in members or target == total for key in members}
    near |= {total for members, total in equations if target in members or target == total}
    candidates = [key for key in near if key not in suppressed]
    if not candidates:
        # Recovered through other lines: widen to every published figure next to any hidden one.
        touching = (set(members) | {total} for members, total in equations)
        candidates = [
            key for group in touching if group & suppressed for key in group if key not in suppressed
        ]
    if not candidates:
        candidates = [key for key in order if key not in suppressed]
    return min(candidates, key=lambda key: (values[key], order[key]))


def determined(equations: list[Equation], suppressed: set[EntryKey]) -> list[EntryKey]:
    """Suppressed figures fixed by the equations alone, found by exact Gaussian elimination."""
    unknowns = sorted(suppressed, key=lambda key: tuple(_rank(part) for part in key))
    column = {key: index for index, key in enumerate(unknowns)}
    rows: list[list[Fraction]] = []
    for members, total in equations:
        row = [Fraction(0)] * len(unknowns)
        for key, coefficient in [*((member, 1) for member in members), (total, -1)]:
            if key in column:
                row[column[key]] += coefficient
        if any(row):
            rows.append(row)
    pivots = _reduce(rows, len(unknowns))
    free = [index for index in range(len(unknowns)) if index not in pivots]
    return [
        unknowns[col] for col, row in sorted(pivots.items()) if all(rows[row][other] == 0 for other in free)
    ]


def _rank(part: str | None) -> tuple[int, str]:
    """Sort key that puts margins (``None``) after values."""
    return (1, "") if part is None else (0, part)


def _reduce(rows: list[list[Fraction]], width: int) -> dict[int, int]:
    """Bring ``rows`` to reduced row echelon form in place; map each pivot column to its row."""
    pivots: dict[int, int] = {}
    top = 0
    for col in range(width):
        found = next((r for r in range(top, len(rows)) if rows[r][col] != 0), None)
        if found is None:
            continue
        rows[top], rows[found] = rows[found], rows[top]
        lead = rows[top][col]
        rows[top] = [entry / lead for entry in rows[top]]
        for r in range(len(rows)):
            if r != top and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[top], strict=True)]
        pivots[col] = top
        top += 1
    return pivots
