"""Disclosure control for count tables: primary and complementary cell suppression.

Zero is treated like any other count below ``k``: it is suppressed. A published 0 tells a partner that
nobody in a small group did something, which singles that group out as surely as a 1 does, and the issue
says every count below the minimum is returned as ``null``. Every published figure is therefore >= k.

A table publishes either its interior cells only, or the full hierarchy of margins: every total over any
subset of its dimensions, down to the grand total. In a key, ``None`` in a position means "summed over
that dimension". The protection guarantees that no suppressed figure can be computed exactly from the
published ones, knowing that counts are non-negative integers. Cheap checks come first (a line with one
hidden figure, hidden cells that must sum to 0, exact Gaussian elimination); when they find nothing, each
hidden figure is minimised and maximised by linear programming (HiGHS) over the tables that agree with
every published figure, and a figure whose range is under 0.5 gets a complement. A figure counts as safe
only once an integer table, checked exactly, shows it can take another value (or it is unbounded). For
one and two dimensions the constraint matrix is totally unimodular (two laminar families), so the LP
bounds are the integer bounds. For three dimensions they are only a relaxation (the matrix is not
totally unimodular): an LP range may hold a single integer value, so a fractional optimum is followed by
an integer program, and a figure not shown to be free within its node limit is treated as pinned.
tests/test_stats_disclosure.py judges all of this by brute force over small random tables.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

from highspy import _core as highs

MIN_K = 3
MAX_DIMENSIONS = 3
ELIMINATION_LIMIT = 64

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
    # A figure shown to be free stays free when more figures are hidden, so it is never solved again.
    free: set[EntryKey] = set()
    while True:
        exposed = _exposed(equations, values, suppressed) or _pinned(table, values, suppressed, free)
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
    # Elimination grows with the cube of the hidden figures; past a few dozen the LP check is cheaper.
    return determined(equations, suppressed) if len(suppressed) <= ELIMINATION_LIMIT else []


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


def _pinned(
    table: Table, values: Mapping[EntryKey, int], suppressed: set[EntryKey], free: set[EntryKey]
) -> list[EntryKey]:
    """The first hidden figure (in table order) that the published ones pin to one value, if any."""
    if not table.with_margins or not suppressed:
        return []
    region = _Region(table, values, suppressed)
    for figure in table.entry_keys():
        if figure in suppressed and figure not in free and region.pinned(figure, free):
            return [figure]
    return []


class _Region:
    """The non-negative tables agreeing with every published figure, as a HiGHS model over hidden cells."""

    def __init__(self, table: Table, values: Mapping[EntryKey, int], suppressed: set[EntryKey]) -> None:
        """Build one model; each figure then only changes the objective, so HiGHS starts warm."""
        hidden = [cell for cell in table.cell_keys() if cell in suppressed]
        column = {cell: index for index, cell in enumerate(hidden)}
        self.truth = [values[cell] for cell in hidden]
        self.figures: dict[EntryKey, list[int]] = {}
        self.rows: list[list[int]] = []
        for key in table.entry_keys():
            members = [column[cell] for cell in _cells_within(table, key) if cell in column]
            if key in suppressed:
                self.figures[key] = members
            elif members:
                self.rows.append(members)
        self.highs = highs._Highs()
        # Logging off before anything else, or HiGHS prints its banner; simplex gives vertex solutions.
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("solver", "simplex")
        # A node limit, unlike a time limit, keeps the answer the same on a busy machine.
        self.highs.setOptionValue("mip_max_nodes", 2000)
        width = len(hidden)
        self.highs.addVars(width, [0.0] * width, [highs.kHighsInf] * width)
        self.rhs = [sum(self.truth[index] for index in row) for row in self.rows]
        rhs = [float(total) for total in self.rhs]
        starts = list(itertools.accumulate((len(row) for row in self.rows[:-1]), initial=0))
        indices = [index for row in self.rows for index in row]
        self.highs.addRows(len(self.rows), rhs, rhs, len(indices), starts, indices, [1.0] * len(indices))

    def pinned(self, figure: EntryKey, free: set[EntryKey]) -> bool:
        """Whether ``figure`` has a single value; adds every figure a solution shows to be free."""
        members = self.figures[figure]
        if not members:
            return True  # every cell inside it is published
        self._objective(members)
        low = self._extreme(highs.ObjSense.kMinimize, free)
        high = self._extreme(highs.ObjSense.kMaximize, free)
        if high == math.inf:
            # An unbounded direction is a non-negative integer ray; the true table plus it is an alternative.
            free.add(figure)
        if figure in free:
            return False
        if high - low < 0.5:
            return True
        # Three dimensions: the LP optimum can be fractional, and the LP range may hold no second integer
        # value. Ask for any integer table with another value on each side the LP left open.
        truth = sum(self.truth[index] for index in members)
        sides = [(truth + 1.0, highs.kHighsInf)] if high >= truth + 0.5 else []
        sides += [(0.0, truth - 1.0)] if low <= truth - 0.5 else []
        for lower, upper in sides:
            self._integer_point(members, lower, upper, free)
            if figure in free:
                return False
        return True

    def _objective(self, members: list[int]) -> None:
        """Make the sum of ``members`` the objective (all costs zero when ``members`` is empty)."""
        width = len(self.truth)
        costs = [0.0] * width
        for index in members:
            costs[index] = 1.0
        self.highs.changeColsCost(width, list(range(width)), costs)

    def _integer_point(self, members: list[int], lower: float, upper: float, free: set[EntryKey]) -> None:
        """Search integer tables whose ``members`` sum lies in [lower, upper]; a find marks figures free."""
        self._objective([])  # no objective: the first integer table found ends the search
        self.highs.addRow(lower, upper, len(members), members, [1.0] * len(members))
        self._integral(highs.HighsVarType.kInteger)
        self._extreme(highs.ObjSense.kMinimize, free)
        self._integral(highs.HighsVarType.kContinuous)
        self.highs.deleteRows(1, [len(self.rows)])

    def _integral(self, kind: highs.HighsVarType) -> None:
        """Make every column integer or continuous."""
        for index in range(len(self.truth)):
            self.highs.changeColIntegrality(index, kind)

    def _extreme(self, sense: highs.ObjSense, free: set[EntryKey]) -> float:
        """Solve in one direction and keep the solution as a witness; NaN when HiGHS gives no optimum."""
        self.highs.changeObjectiveSense(sense)
        self.highs.run()
        status = self.highs.getModelStatus()
        solution = self.highs.getSolution()
        if solution.value_valid:
            self._witness([round(value) for value in solution.col_value], free)
        if status in (highs.HighsModelStatus.kUnbounded, highs.HighsModelStatus.kUnboundedOrInfeasible):
            # The true table is feasible, so "unbounded or infeasible" can only be unbounded.
            return math.inf
        if status != highs.HighsModelStatus.kOptimal:
            return math.nan
        return float(self.highs.getInfo().objective_function_value)

    def _witness(self, table: list[int], free: set[EntryKey]) -> None:
        """If ``table`` is a valid integer table, mark every figure it changes as free."""
        if any(value < 0 for value in table) or any(
            sum(table[index] for index in row) != total
            for row, total in zip(self.rows, self.rhs, strict=True)
        ):
            return
        for figure, members in self.figures.items():
            if sum(table[index] for index in members) != sum(self.truth[index] for index in members):
                free.add(figure)


def _cells_within(table: Table, key: EntryKey) -> Iterator[Key]:
    """The interior cells a cell or margin key adds up."""
    ranges = [values if part is None else (part,) for part, values in zip(key, table.levels, strict=True)]
    return itertools.product(*ranges)
