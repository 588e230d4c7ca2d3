"""Tests of the shared benchmark pieces in ``benchmarks/harness.py``."""

from __future__ import annotations

from benchmarks.harness import text_table

COLUMNS = [
    ("task", "<", lambda r: r["task"]),
    ("regret", ">", lambda r: f"{r['regret']:.2e}"),
]


def test_text_table_sizes_each_column_to_its_widest_cell() -> None:
    rows = [{"task": "branin", "regret": 7.2e-4}, {"task": "hartmann6_d25", "regret": 0.042}]
    lines = text_table(COLUMNS, rows, title="median regret").split("\n")
    assert lines == [
        "median regret",
        "task            regret",
        "-" * 22,
        "branin        7.20e-04",
        "hartmann6_d25 4.20e-02",
    ]


def test_text_table_without_rows_is_header_and_rule() -> None:
    assert text_table(COLUMNS, []) == "task regret\n-----------"
