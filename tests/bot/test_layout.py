"""Choosing a layout for a width: a grid that fits, or one block per record (bot/layout.py)."""

from __future__ import annotations

import pytest

from bot import layout
from bot.reply import Table

TRADES = Table("Last 2 trades", ("pair", "qty", "PnL", "closed"),
               (("BTC/USD", "0.0312", "+68.94", "2024-05-01 12:45 UTC"),
                ("PEPE/USD", "125,000,000", "-27.50", "2024-04-30 21:45 UTC")),
               key=("pair", "PnL"), optional=("closed",))


def test_a_table_that_fits_stays_a_grid_with_numbers_to_the_right() -> None:
    chosen = layout.choose(TRADES, None)
    assert isinstance(chosen, layout.Grid) and chosen.gap == 2
    assert chosen.header_lines()[0] == "pair              qty     PnL  closed"
    assert chosen.row_lines()[1] == "PEPE/USD  125,000,000  -27.50  2024-04-30 21:45 UTC"


def test_one_space_between_columns_when_that_makes_it_fit() -> None:
    table = Table("Daily", ("day", "realized", "trades", "fees"), (("2024-01-01", "+0.00", "0", "0.00"),))
    assert layout.grid(table.headers, table.rows).width == 34
    chosen = layout.choose(table, 33)
    assert isinstance(chosen, layout.Grid) and chosen.gap == 1 and chosen.width == 31
    assert all(len(line) <= 33 for line in chosen.header_lines() + chosen.row_lines())


def test_optional_columns_are_left_out_before_giving_up_the_grid() -> None:
    chosen = layout.choose(TRADES, 32)
    assert isinstance(chosen, layout.Grid) and chosen.dropped == ("closed",)
    assert chosen.headers == ("pair", "qty", "PnL")
    assert max(len(line) for line in chosen.header_lines() + chosen.row_lines()) <= 32


def test_too_wide_becomes_records_with_the_key_cells_first() -> None:
    chosen = layout.choose(TRADES, 20)
    assert isinstance(chosen, layout.Records)
    first = chosen.records[0]
    assert first.heading == "BTC/USD  +68.94"
    assert first.fields == (("qty", "0.0312"), ("closed", "2024-05-01 12:45 UTC"))  # records keep every column


def test_the_first_column_is_the_key_by_default_and_a_lone_field_shows_its_value_alone() -> None:
    help_ = Table("Commands", ("command", "what it does"), (("/close <pair>", "Close one position at market"),))
    chosen = layout.choose(help_, 32)
    assert isinstance(chosen, layout.Records)
    assert chosen.records[0].heading == "/close <pair>"
    assert chosen.records[0].field_lines(32) == ["Close one position at market"]


@pytest.mark.parametrize("width", [12, 20, 26, 32, 41])
def test_fields_are_packed_into_lines_and_never_split(width: int) -> None:
    record = layout.Record(("BTC/USD",), (("qty", "0.0312"), ("entry", "64,000.50"), ("exit", "66,210.00"),
                                          ("closed", "2024-05-01 12:45 UTC"), ("args", "")))
    lines = record.field_lines(width)
    pieces = [p for line in lines for p in line.split(layout.SEPARATOR)]
    assert pieces == ["qty 0.0312", "entry 64,000.50", "exit 66,210.00", "closed 2024-05-01 12:45 UTC"]  # empty: out
    for line in lines:  # a line holds more than one field only when they fit together
        assert len(line) <= width or layout.SEPARATOR not in line


def test_wrap_breaks_at_spaces_and_keeps_short_tokens_whole() -> None:
    lines = layout.wrap("since 2024-05-01 12:45 UTC by telegram:1", 16, "  ")
    assert lines == ["since 2024-05-01", "  12:45 UTC by", "  telegram:1"]
    assert layout.wrap("short", None) == ["short"]
    assert layout.wrap("Running · equity 10,280.43 USD · today +280.43 USD", 32) == [
        "Running · equity 10,280.43 USD ·", "today +280.43 USD"]  # a separator ends a line, never starts one


def test_split_packs_units_into_pages_under_a_budget() -> None:
    assert layout.split([3, 3, 3, 5, 1], cost=lambda n: n, budget=lambda _: 6) == [[3, 3], [3], [5, 1]]
    assert layout.split([9], cost=lambda n: n, budget=lambda _: 6) == [[9]]  # too big: a page of its own
    assert layout.numbered("Last 50 trades", 2, 3) == "Last 50 trades (2/3)"
    assert layout.numbered("Last 5 trades", 1, 1) == "Last 5 trades"


def test_a_table_still_takes_three_arguments_and_checks_the_new_ones() -> None:
    assert Table("t", ("a", "b"), (("1", "2"),)).key == ()
    with pytest.raises(ValueError, match="not one of its headers"):
        Table("t", ("a", "b"), (), key=("c",))
    with pytest.raises(ValueError, match="cannot be optional"):
        Table("t", ("a", "b"), (), key=("a",), optional=("a",))


def test_a_style_mark_is_not_added_before_a_line_that_has_its_own() -> None:
    from bot.layout import with_icon

    assert with_icon("✅ ", "🛑 Trading is KILLED") == "🛑 Trading is KILLED"
    assert with_icon("✅ ", "Trading resumed") == "✅ Trading resumed"
    assert with_icon("", "🛑 x") == "🛑 x"
