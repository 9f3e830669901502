"""``kpnet bench import`` at a small size: the synthetic file imports whole, and the
result names the speed and the peak memory."""

from __future__ import annotations

import csv
import io

from node.bench.import_bench import run_import_bench, write_synthetic_licensees
from node.services.csv_format import LICENSEES


def test_small_benchmark_imports_every_row_and_reports_speed_and_memory():
    lines: list[str] = []
    result = run_import_bench(300, echo=lines.append)
    assert result["rows"] == 300
    assert result["rows_per_s"] > 0
    assert result["peak_rss_mb"] > 0
    assert any(line.startswith("generated 300 rows") for line in lines)


def test_synthetic_file_is_a_french_locale_spreadsheet():
    out = io.StringIO(newline="")
    write_synthetic_licensees(out, 50)
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=";"))
    assert tuple(rows[0]) == LICENSEES.column_names
    assert len(rows) == 51
    assert len({row[0] for row in rows[1:]}) == 50  # distinct licence numbers
    assert all("/" in row[6] for row in rows[1:])  # DD/MM/YYYY
