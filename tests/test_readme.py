"""The README's data dictionary is the declared schemas, verbatim."""

from __future__ import annotations

from pathlib import Path

from pipelines.dictionary import TABLES, table_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_holds_the_data_dictionary_of_every_table() -> None:
    text = README.read_text(encoding="utf-8")
    for doc in TABLES:
        assert table_markdown(doc) in text, (
            f"README data dictionary of {doc.name} is out of date: "
            "paste the output of `langsmith-export schema`"
        )
