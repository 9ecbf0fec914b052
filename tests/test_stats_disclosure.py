"""Disclosure control: small counts are hidden, and no hidden count can be worked back out."""

from __future__ import annotations

import itertools
import json
import math
import string

import pytest
from highspy import _core as highs
from hypothesis import given, settings
from hypothesis import strategies as st

from app.stats.disclosure import Cell, EntryKey, ProtectedTable, Table, determined, lines, protect, share

NAMES = ("gender", "channel", "language")
BUDGET = 50_000


@st.composite
def tables(draw: st.DrawFn, max_levels: int, max_cells: int, counts: st.SearchStrategy[int]) -> Table:
    """A random table of 1 to 3 dimensions, with margins."""
    shapes = st.lists(st.integers(1, max_levels), min_size=1, max_size=3)
    sizes = draw(shapes.filter(lambda sizes: math.prod(sizes) <= max_cells))
    levels = tuple(tuple(string.ascii_lowercase[:size]) for size in sizes)
    keys = list(itertools.product(*levels))
    values = draw(st.lists(counts, min_size=len(keys), max_size=len(keys)))
    return Table(NAMES[: len(sizes)], levels, dict(zip(keys, values, strict=True)))


SMALL_COUNTS = st.one_of(st.integers(0, 4), st.integers(5, 12))
WIDE_COUNTS = st.one_of(st.integers(0, 9), st.integers(10, 60))


def alternative_exists(table: Table, result: ProtectedTable, target: EntryKey) -> bool | None:
    """Whether some non-negative integer table agrees on every published figure but not on ``target``.

    ``None`` means the search ran out of budget without deciding.
    """
    published = {key: c.value for key, c in result.cells.items() if c.value is not None}
    # Cells inside the target first, so its value is settled (and varied) early in the search.
    cells = sorted(table.cell_keys(), key=lambda cell: not _within(cell, target))
    upper = [_upper_bound(table, result, published, cell) for cell in cells]
    covering = {key: [i for i, cell in enumerate(cells) if _within(cell, key)] for key in published}
    actual = table.value(target)
    inside = sum(1 for cell in cells if _within(cell, target))
    filling = [0] * len(cells)
    nodes = 0

    def search(index: int) -> bool | None:
        nonlocal nodes
        nodes += 1
        if nodes > BUDGET:
            return None
        if index == len(cells):
            return True
        cell = cells[index]
        fixed = published.get(cell)
        options = [fixed] if fixed is not None else [table.counts.get(cell, 0), *range(upper[index] + 1)]
        undecided = False
        for option in dict.fromkeys(options):
            filling[index] = option
            # Once the target's cells are all set, only a different total is worth pursuing.
            if option > upper[index] or (index == inside - 1 and sum(filling[:inside]) == actual):
                continue
            if _consistent(index, published, covering, upper, filling):
                found = search(index + 1)
                if found:
                    return True
                undecided = undecided or found is None
        return None if undecided else False

    return search(0)


def _within(cell: tuple[str, ...], key: EntryKey) -> bool:
    """Whether an interior cell counts towards a cell or margin key."""
    return all(part is None or part == value for part, value in zip(key, cell, strict=True))


def _upper_bound(
    table: Table, result: ProtectedTable, published: dict[EntryKey, int], cell: tuple[str, ...]
) -> int:
    """The most a cell can hold given the published figures that contain it."""
    if cell in published:
        return published[cell]
    limits = [
        value - sum(v for key, v in published.items() if _inside(key, margin))
        for margin, value in published.items()
        if _within(cell, margin)
    ]
    return min(limits, default=table.value((None,) * len(cell)) + result.k)


def _inside(key: EntryKey, margin: EntryKey) -> bool:
    """Whether an interior key lies within a margin key."""
    return None not in key and _within(tuple(str(part) for part in key), margin)


def _consistent(
    index: int,
    published: dict[EntryKey, int],
    covering: dict[EntryKey, list[int]],
    upper: list[int],
    filling: list[int],
) -> bool:
    """Each published figure can still be met by the cells set so far and those still to come."""
    for key, members in covering.items():
        if index not in members:
            continue
        partial = sum(filling[i] for i in members if i <= index)
        room = sum(upper[i] for i in members if i > index)
        if partial > published[key] or partial + room < published[key]:
            return False
    return True


def lp_range(table: Table, result: ProtectedTable, target: EntryKey) -> tuple[float, float]:
    """The least and most ``target`` can be over real non-negative tables agreeing on every published figure.

    Built independently of the module: one column per interior cell, one equality row per published figure.
    """
    cells = table.cell_keys()
    solver = highs._Highs()
    solver.setOptionValue("output_flag", False)
    solver.addVars(len(cells), [0.0] * len(cells), [highs.kHighsInf] * len(cells))
    for key, cell in result.cells.items():
        if cell.value is not None:
            members = [i for i, c in enumerate(cells) if _within(c, key)]
            solver.addRow(cell.value, cell.value, len(members), members, [1.0] * len(members))
    inside = [i for i, c in enumerate(cells) if _within(c, target)]
    solver.changeColsCost(len(inside), inside, [1.0] * len(inside))
    bounds = []
    for sense in (highs.ObjSense.kMinimize, highs.ObjSense.kMaximize):
        solver.changeObjectiveSense(sense)
        solver.run()
        status = solver.getModelStatus()
        assert status in (highs.HighsModelStatus.kOptimal, highs.HighsModelStatus.kUnbounded), status
        optimal = status == highs.HighsModelStatus.kOptimal
        bounds.append(solver.getInfo().objective_function_value if optimal else math.inf)
    return bounds[0], bounds[1]


def assert_safe_by_lines(table: Table, result: ProtectedTable) -> None:
    """Every published figure is >= k, and no line holds exactly one hidden figure."""
    for key, cell in result.cells.items():
        assert cell.suppressed == (cell.value is None)
        assert cell.suppressed or table.value(key) >= result.k
        assert cell.suppressed or cell.value == table.value(key)
        if table.value(key) < result.k:
            assert cell.suppressed
    for members, total in lines(table):
        hidden = [key for key in [*members, total] if result.get(key).suppressed]
        assert len(hidden) != 1, f"{hidden[0]} is its line's total minus the published cells"


@settings(max_examples=60, deadline=None)
@given(tables(max_levels=2, max_cells=8, counts=SMALL_COUNTS), st.integers(3, 10))
def test_no_hidden_figure_has_a_single_feasible_value(table: Table, k: int) -> None:
    """Brute force: every hidden figure takes another value in some table agreeing on all published ones."""
    result = protect(table, k)
    assert_safe_by_lines(table, result)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True, f"{key} can be recovered (or search gave up)"


@settings(max_examples=30, deadline=None)
@given(tables(max_levels=3, max_cells=6, counts=SMALL_COUNTS), st.integers(3, 10))
def test_no_hidden_figure_recovered_in_wider_small_tables(table: Table, k: int) -> None:
    """The brute-force check again, on tables with up to three values per dimension."""
    result = protect(table, k)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True, f"{key} can be recovered (or search gave up)"


@settings(max_examples=60, deadline=None)
@given(tables(max_levels=4, max_cells=64, counts=WIDE_COUNTS), st.integers(3, 10))
def test_larger_tables_keep_every_line_safe_and_are_deterministic(table: Table, k: int) -> None:
    """On larger tables: the line rule, no figure fixed by the equations, and byte-identical output."""
    result = protect(table, k)
    assert_safe_by_lines(table, result)
    assert determined(list(lines(table)), set(result.suppressed_keys())) == []
    shuffled = Table(table.dimensions, table.levels, dict(reversed(list(table.counts.items()))))
    assert _wire(protect(shuffled, k)) == _wire(result)


def _wire(result: ProtectedTable) -> str:
    """The JSON a partner would receive."""
    return json.dumps([[list(key), cell.as_dict()] for key, cell in result.cells.items()])


def grid(rows: str, cols: str, counts: dict[str, int], default: int) -> Table:
    """A two-dimensional table; ``counts`` maps "rc" to a count, other cells get ``default``."""
    levels = (tuple(rows), tuple(cols))
    values: dict[tuple[str, ...], int] = {(r, c): counts.get(r + c, default) for r in rows for c in cols}
    return Table(("gender", "channel"), levels, values)


def test_a_line_rule_is_not_enough_and_a_bridge_cell_gets_a_complement() -> None:
    """Two hidden rectangles joined by one hidden cell: that cell is fixed although no line shows it alone."""
    pattern = {"aa", "ab", "ba", "bb", "cc", "cd", "dc", "dd", "bc"}
    table = grid("abcd", "abcd", dict.fromkeys(pattern, 1), default=10)
    equations = list(lines(table))
    primary = {(key[0], key[1]) for key in pattern}
    assert determined(equations, set(primary)) == [("b", "c")]
    result = protect(table, 5)
    assert len(result.suppressed_keys()) > len(pattern)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True


def test_hidden_cells_that_must_sum_to_zero_get_a_nonzero_complement() -> None:
    """Two zeros beside a published total would both be known to be 0; a positive cell joins them."""
    table = Table(("gender",), (("f", "m", "x"),), {("f",): 0, ("m",): 0, ("x",): 10})
    result = protect(table, 3)
    assert result.get(("x",)) == Cell(None, True)
    assert result.get((None,)) == Cell(10, False)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True


def test_hidden_zeros_pinned_through_several_lines_get_complements() -> None:
    """Rows a, b hold 1 and so would row c outside column c: no line shows it, yet the zeros were known."""
    table = grid("abc", "abc", {"ac": 1, "cb": 1, "cc": 3}, default=0)
    result = protect(table, 3)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True, f"{key} is pinned at 0"


def test_a_three_way_table_of_mostly_small_cells_is_protected() -> None:
    """A 3x4x6 table where most cells are 0 to 4: protection ends, every hidden figure has an LP range."""
    levels = (("f", "m", "x"), ("voice", "sms", "web", "ussd"), tuple("abcdef"))
    keys: list[tuple[str, ...]] = list(itertools.product(*levels))
    counts = {key: (index * 7) % 5 if index % 3 else 5 + index % 11 for index, key in enumerate(keys)}
    table = Table(NAMES, levels, counts)
    result = protect(table, 5)
    assert sum(1 for count in counts.values() if count < 5) > len(keys) // 2
    assert len(result.suppressed_keys()) > sum(1 for key in result.cells if table.value(key) < 5)
    assert_safe_by_lines(table, result)
    for key in result.suppressed_keys():
        low, high = lp_range(table, result, key)
        assert high - low >= 0.5, f"{key} is pinned to {low}"
    shuffled = Table(table.dimensions, table.levels, dict(reversed(list(table.counts.items()))))
    assert _wire(protect(shuffled, 5)) == _wire(result)


def test_a_three_way_table_with_fractional_lp_optima_is_judged_by_integer_tables() -> None:
    """The LP optimum for cell baa is fractional; an integer table shows it free, and brute force agrees."""
    rows = {"aa": (8, 1, 1), "ab": (2, 11, 4), "ba": (0, 9, 5), "bb": (2, 6, 10)}
    counts: dict[tuple[str, ...], int] = {
        (key[0], key[1], third): count
        for key, values in rows.items()
        for third, count in zip("abc", values, strict=True)
    }
    table = Table(NAMES, (("a", "b"), ("a", "b"), ("a", "b", "c")), counts)
    result = protect(table, 5)
    assert result.get(("b", "a", "a")) == Cell(None, True)
    for key in result.suppressed_keys():
        assert alternative_exists(table, result, key) is True, f"{key} can be recovered"


def test_the_lp_check_sees_what_the_line_checks_miss() -> None:
    """Hidden zeros pinned through several lines: the LP range of the primary cells alone is a point."""
    table = grid("abc", "abc", {"ac": 1, "cb": 1, "cc": 3}, default=0)
    primary = {
        key: Cell(None, True) if table.value(key) < 3 else Cell(table.value(key), False)
        for key in table.entry_keys()
    }
    naive = ProtectedTable(table.dimensions, table.levels, 3, primary)
    assert_safe_by_lines(table, naive)
    assert lp_range(table, naive, ("a", "a")) == (0.0, 0.0)
    result = protect(table, 3)
    for key in result.suppressed_keys():
        low, high = lp_range(table, result, key)
        assert high - low >= 1


def test_all_cells_small_hides_everything() -> None:
    """When every count and total is below k, nothing is published."""
    table = grid("ab", "ab", {}, default=1)
    result = protect(table, 5)
    assert all(cell == Cell(None, True) for cell in result.cells.values())
    assert len(result.cells) == 9


def test_a_single_cell_is_its_own_total() -> None:
    """One cell equals the grand total: both published at k, both hidden below it."""
    shown = protect(Table(("gender",), (("f",),), {("f",): 3}), 3)
    assert shown.cells == {("f",): Cell(3, False), (None,): Cell(3, False)}
    hidden = protect(Table(("gender",), (("f",),), {("f",): 2}), 3)
    assert hidden.cells == {("f",): Cell(None, True), (None,): Cell(None, True)}


def test_k_is_a_strict_lower_bound_at_three() -> None:
    """At k=3 a 3 is published and a 2 is hidden, with a complement so the 2 stays hidden."""
    table = Table(("gender",), (("f", "m", "x"),), {("f",): 2, ("m",): 3, ("x",): 7})
    result = protect(table, 3)
    assert result.get(("f",)) == Cell(None, True)
    assert result.get(("m",)) == Cell(None, True)  # the smallest published cell is the complement
    assert result.get(("x",)) == Cell(7, False)
    assert result.get((None,)) == Cell(12, False)


def test_zero_is_suppressed() -> None:
    """A published 0 would say nobody in the group took part, so zero is hidden like any small count."""
    table = Table(("gender",), (("f", "m"),), {("f",): 0, ("m",): 9}, with_margins=False)
    result = protect(table, 5)
    assert result.cells == {("f",): Cell(None, True), ("m",): Cell(9, False)}


def test_without_margins_only_primary_suppression_applies() -> None:
    """With no totals published there is nothing to subtract from, so no complements are needed."""
    table = grid("ab", "ab", {"aa": 1}, default=10)
    result = protect(Table(table.dimensions, table.levels, table.counts, with_margins=False), 5)
    assert result.suppressed_keys() == [("a", "a")]
    assert (None, None) not in result.cells


@pytest.mark.parametrize("k", [2, 0, -5, True])
def test_k_below_three_is_refused(k: int) -> None:
    """A minimum cell size below 3 (or not an integer) is refused."""
    with pytest.raises(ValueError, match="minimum cell size"):
        protect(grid("a", "a", {}, default=10), k)


def test_k_that_is_not_an_integer_is_refused() -> None:
    """A fractional minimum cell size is refused."""
    with pytest.raises(ValueError, match="minimum cell size"):
        protect(grid("a", "a", {}, default=10), 3.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dimensions", "levels", "counts", "message"),
    [
        ((), (), {}, "1 to 3 dimensions"),
        (("a", "b", "c", "d"), (("x",),) * 4, {}, "1 to 3 dimensions"),
        (("a", "a"), (("x",), ("y",)), {}, "repeat"),
        (("a", "b"), (("x",),), {}, "one list of values per dimension"),
        (("a",), ((),), {}, "distinct values"),
        (("a",), (("x", "x"),), {}, "distinct values"),
        (("a",), (("x",),), {("y",): 1}, "not in the table's levels"),
        (("a",), (("x",),), {("x", "x"): 1}, "not in the table's levels"),
        (("a",), (("x",),), {("x",): -1}, "integers >= 0"),
        (("a",), (("x",),), {("x",): True}, "integers >= 0"),
        (("a",), (("x",),), {("x",): 1.5}, "integers >= 0"),
    ],
)
def test_malformed_tables_are_refused(
    dimensions: tuple[str, ...],
    levels: tuple[tuple[str, ...], ...],
    counts: dict[tuple[str, ...], int],
    message: str,
) -> None:
    """Shapes and counts that cannot be a table of people are refused at construction."""
    with pytest.raises(ValueError, match=message):
        Table(dimensions, levels, counts)


def test_share_uses_only_published_figures() -> None:
    """A share needs both figures published and a non-zero whole."""
    assert share(Cell(4, False), Cell(10, False)) == 0.4
    assert share(Cell(1, False), Cell(3, False)) == 0.3333
    assert share(Cell(None, True), Cell(10, False)) is None
    assert share(Cell(4, False), Cell(None, True)) is None
    assert share(Cell(0, False), Cell(0, False)) is None


def test_wire_form_of_a_cell() -> None:
    """Each figure leaves as a value and a suppressed flag."""
    assert Cell(None, True).as_dict() == {"value": None, "suppressed": True}
    assert Cell(7, False).as_dict() == {"value": 7, "suppressed": False}
