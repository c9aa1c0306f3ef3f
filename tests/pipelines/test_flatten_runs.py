"""Runs flattening on literal pages: types, exact money, promoted fields, declared schema."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa

from pipelines.flatten.runs import RUN_FEEDBACK_STATS, RUNS, flatten_run_feedback_stats, flatten_runs
from pipelines.records import decode_runs_page

NOW = datetime(2024, 2, 1, 12, 0, tzinfo=UTC)

PAGE = b"""{"items": [
 {"id": "r2", "project_id": "p1", "trace_id": "r1", "run_type": "LLM", "status": "SUCCESS",
  "start_time": "2024-01-01T10:00:00.123456+02:00", "end_time": "2024-01-01T08:00:01Z",
  "parent_run_ids": ["r1", "r1b"], "total_tokens": 30, "prompt_tokens": 20, "completion_tokens": 10,
  "total_cost": 0.000123456789012, "prompt_cost": 1e-05, "completion_cost": "0.000113456789012",
  "prompt_token_details": {"raw": {"cache_read": 7, "audio": 0, "brand_new": 3}},
  "completion_token_details": {"raw": {"reasoning": 4}},
  "prompt_cost_details": {"raw": {"cache_read": 0.000000123456789012}},
  "completion_cost_details": {"raw": {"reasoning": 2.5E-7}},
  "metadata": {"ls_model_name": "gpt-4o-mini", "ls_provider": "openai", "nested": {"a": [1, 2]}},
  "inputs": {"q": "Gr\\u00fc\\u00dfe \\ud83d\\udc4b \\u0000 \\u2028", "big": 1.0000000000000000001},
  "feedback_stats": {"correctness": {"n": 3, "avg": 0.5, "stdev": 0.1, "min": 0, "max": 1, "errors": 1,
                     "sources": ["api", {"type": "app"}]},
                     "label": {"n": 2, "values": {"good": 2}, "comments": ["ok"]}},
  "tags": ["a", "b"]},
 {"id": "r1", "project_id": "p1", "run_type": "chain", "status": "PENDING",
  "start_time": "2024-01-01T07:59:59.999999Z", "end_time": null, "parent_run_ids": []},
 {"id": "r0", "project_id": "p0", "start_time": "2024-01-01T09:00:00Z"}
], "next_cursor": null}"""


def test_runs_are_typed_exact_and_sorted() -> None:
    decoded = decode_runs_page(PAGE)
    table = flatten_runs(decoded.items, NOW)
    assert table.schema.equals(RUNS, check_metadata=True)
    rows = {r["id"]: r for r in table.to_pylist()}
    assert table.column("id").to_pylist() == ["r0", "r1", "r2"]  # by session, then start time
    llm = rows["r2"]
    assert llm["start_time"] == datetime(2024, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert llm["run_type"] == "llm" and llm["status"] == "success"
    assert rows["r1"]["status"] == "pending" and rows["r1"]["end_time"] is None
    assert llm["parent_run_id"] == "r1b" and rows["r1"]["parent_run_id"] is None
    assert llm["total_cost"] == Decimal("0.000123456789")  # 12 decimal places, no float on the way
    assert llm["prompt_cost"] == Decimal("0.000010000000")
    assert llm["completion_cost"] == Decimal("0.000113456789")
    assert llm["prompt_cache_read_tokens"] == 7 and llm["prompt_audio_tokens"] == 0
    assert llm["prompt_cache_creation_tokens"] is None
    assert llm["completion_reasoning_tokens"] == 4
    assert llm["prompt_cache_read_cost"] == Decimal("0.000000123457")  # rounded at the 12th place
    assert llm["completion_reasoning_cost"] == Decimal("0.000000250000")
    # every category, known or not, kept as the JSON text the API sent
    assert llm["prompt_token_details"] == '{"raw": {"cache_read": 7, "audio": 0, "brand_new": 3}}'
    assert llm["ls_model_name"] == "gpt-4o-mini" and llm["ls_provider"] == "openai"
    # inputs are byte-exact JSON text: escapes and a number beyond float precision untouched
    assert llm["inputs"] == (
        '{"q": "Gr\\u00fc\\u00dfe \\ud83d\\udc4b \\u0000 \\u2028", "big": 1.0000000000000000001}'
    )
    assert llm["tags"] == ["a", "b"]
    assert rows["r0"]["inputs"] is None and rows["r0"]["total_cost"] is None
    assert table.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("total_cost").type == pa.decimal128(38, 12)


def test_feedback_stats_long_rows() -> None:
    decoded = decode_runs_page(PAGE)
    table = flatten_run_feedback_stats(decoded.items, NOW)
    assert table.schema.equals(RUN_FEEDBACK_STATS, check_metadata=True)
    rows = {(r["run_id"], r["feedback_key"]): r for r in table.to_pylist()}
    assert set(rows) == {("r2", "correctness"), ("r2", "label")}
    correctness = rows[("r2", "correctness")]
    assert (correctness["n"], correctness["avg"], correctness["errors"]) == (3, 0.5, 1)
    assert correctness["sources"] == '["api", {"type": "app"}]'
    label = rows[("r2", "label")]
    assert label["avg"] is None and label["values"] == '{"good": 2}' and label["comments"] == '["ok"]'
    assert label["session_id"] == "p1"


def test_a_page_of_only_nulls_still_has_the_declared_schema() -> None:
    decoded = decode_runs_page(b'{"items": [{"id": "x"}, {"id": "y", "total_cost": null}]}')
    table = flatten_runs(decoded.items, NOW)
    assert table.schema.equals(RUNS, check_metadata=True)
    assert table.num_rows == 2
    assert flatten_run_feedback_stats(decoded.items, NOW).schema.equals(RUN_FEEDBACK_STATS)


def test_a_wrongly_typed_item_is_set_aside_not_fatal() -> None:
    decoded = decode_runs_page(
        b'{"items": [{"id": "ok", "total_tokens": 5}, {"id": "bad", "total_tokens": "many"}],'
        b' "next_cursor": "c"}'
    )
    assert [r.id for r in decoded.items] == ["ok"]
    assert len(decoded.rejected) == 1
    assert b'"bad"' in decoded.rejected[0].raw and "total_tokens" in decoded.rejected[0].reason
    assert decoded.next_cursor == "c"


def test_rows_are_ordered_with_nulls_last_and_unknown_fields_stay_with_their_run() -> None:
    decoded = decode_runs_page(
        b'{"items": ['
        b'{"id": "c", "project_id": null, "start_time": "2024-01-01T01:00:00Z", "new": 3},'
        b'{"id": "b", "project_id": "p", "start_time": null, "new": 2},'
        b'{"id": "a2", "project_id": "p", "start_time": "2024-01-01T01:00:00Z"},'
        b'{"id": "a1", "project_id": "p", "start_time": "2024-01-01T01:00:00Z", "new": 1}]}'
    )
    assert decoded.unknown is not None
    table = flatten_runs(decoded.items, NOW, decoded.unknown)
    assert table.column("id").to_pylist() == ["a1", "a2", "b", "c"]
    assert table.column("unknown_fields").to_pylist() == ['{"new":1}', None, '{"new":2}', '{"new":3}']


def test_raw_json_text_keeps_bytes_and_nulls() -> None:
    from msgspec import Raw

    from pipelines.flatten.common import raw_json

    text = raw_json([Raw('{"a": "é"}'.encode()), None, Raw(b"null"), Raw(b" [1, 2]")])
    text.validate(full=True)
    assert text.type == pa.string()
    assert text.to_pylist() == ['{"a": "é"}', None, None, " [1, 2]"]
    assert raw_json(iter([])).to_pylist() == []


def test_raw_json_columns_are_sliced_from_one_buffer_each_with_its_own_nulls() -> None:
    import pytest
    from msgspec import Raw

    from pipelines.flatten.common import raw_json_columns

    first, second = raw_json_columns([[Raw(b"1"), Raw(b"null")], [None, Raw(b'{"k": [2]}')]])
    assert first.to_pylist() == ["1", None] and second.to_pylist() == [None, '{"k": [2]}']
    assert (first.null_count, second.null_count) == (1, 1)
    with pytest.raises(ValueError, match="same length"):
        raw_json_columns([[Raw(b"1")], []])


def test_money_rounds_half_to_even_like_the_polars_decimal_cast() -> None:
    import polars as pl

    from pipelines.flatten.common import MONEY, money_array

    tokens = [
        "0.0000000000005", "0.0000000000015", "0.0000000000025", "-0.0000000000005", "1.234567e-7",
        "0.00000000000049999", '"0.000123456789"', "12345678901234567890.1234567891234", "3", None,
    ]  # fmt: skip
    ours = money_array(pa.array(tokens, pa.string()))
    assert ours.type == MONEY
    polars = pl.Series(tokens).str.strip_chars('"').cast(pl.Decimal(38, 12)).to_list()
    assert ours.to_pylist() == polars
    assert ours[1].as_py() == ours[2].as_py() == Decimal("0.000000000002")  # half to even
    # A column with nothing to round takes one cast instead: the same values
    exact = ["0.1", "1.5e-7", '"0.000123456789"', "3", None, "-12345678901234567890.123456789012"]
    polars = pl.Series(exact).str.strip_chars('"').cast(pl.Decimal(38, 12)).to_list()
    assert money_array(pa.array(exact, pa.string())).to_pylist() == polars


def test_model_name_and_provider_come_from_the_top_level_of_metadata() -> None:
    items = [
        b'{"id": "a", "metadata": {"ls_model_name": "gpt-4o", "ls_provider": "openai", "x": [1]}}',
        b'{"id": "b", "metadata": {"ls_model_name": "caf\\u00e9 \\"x\\"", "nested": {"ls_provider": "no"}}}',
        b'{"id": "c", "metadata": {"ls_model_name": 12, "ls_provider": {"k": 1}}}',
        b'{"id": "d", "metadata": null}',
        b'{"id": "e", "metadata": [1, 2]}',
        b'{"id": "f"}',
    ]
    decoded = decode_runs_page(b'{"items": [' + b",".join(items) + b"]}")
    table = flatten_runs(decoded.items, NOW)
    assert table.column("id").to_pylist() == ["a", "b", "c", "d", "e", "f"]
    assert table.column("ls_model_name").to_pylist() == ["gpt-4o", 'café "x"', "12", None, None, None]
    assert table.column("ls_provider").to_pylist() == ["openai", None, '{"k": 1}', None, None, None]


def test_the_runs_export_never_loads_polars() -> None:
    """Worker processes import only what the runs export needs: Polars (~0.2 s each) is not part of it."""
    import subprocess
    import sys

    code = "import sys, pipelines.export.runs; print('polars' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
