"""CLI tables: numbers align right, words left, and nothing is cut short."""

from __future__ import annotations

from skiplab.cli.common import console, exact_or_scientific, print_table


def test_numbers_align_right_and_words_left():
    with console.capture() as captured:
        print_table(
            "t",
            ["name", "family", "params", "memory"],
            [["a", "cifar", "269,722", "41.0 KiB"], ["bb", "mlp", "5", "1 B"]],
        )
    rows = [line for line in captured.get().splitlines() if line.startswith("│")]
    first, second = rows
    assert "│ cifar  " in first and "│ mlp    " in second  # words: left
    assert "│ 269,722 │" in first and "│       5 │" in second  # numbers: right
    assert "│ 41.0 KiB │" in first and "│      1 B │" in second


def test_huge_counts_switch_to_scientific_notation():
    assert exact_or_scientific(10**15 - 1) == "999,999,999,999,999"
    assert exact_or_scientific(2**1000) == "1.0715e+301"
