"""The data schema read from a training file's head, and the differences the schema check names."""

from __future__ import annotations

import pytest

from retraining.datasets import DataError, DataSchema, read_schema, schema_differences

ARFF = (
    b"@relation r\n@attribute 'mean radius' numeric\n@attribute texture numeric\n@attribute class {a,b}\n@data\n1,2,a\n"
)


def test_arff_and_csv_headers() -> None:
    assert read_schema(ARFF, "d/x.arff", None, complete=True) == DataSchema(("mean radius", "texture"), "class")
    assert read_schema(b"a,b,label\n1,2,x\n", "d/x.csv", None, complete=True) == DataSchema(("a", "b"), "label")
    assert read_schema(b"a\tlabel\tb\n", "d/x.tsv", "label", complete=True) == DataSchema(("a", "b"), "label")


@pytest.mark.parametrize(
    "head, name, label, message",
    [
        (b"\xff\xfe\x00a,b", "x.csv", None, "not UTF-8 text (byte 0xff at offset 0)"),
        (b"a,b\n", "x.parquet", None, "must be .csv, .tsv, .arff"),
        (b"only\n1\n", "x.csv", None, "at least one feature and a label"),
        (b"a,,c\n", "x.csv", None, "must name every column"),
        (b"a,a,c\n", "x.csv", None, "appear twice"),
        (b"a,b\n", "x.csv", "y", "label column 'y' is not among"),
        (b"@relation r\n@attribute a numeric\n", "x.arff", None, "@data section"),
    ],
)
def test_unusable_data_gets_a_reason(head: bytes, name: str, label: str | None, message: str) -> None:
    with pytest.raises(DataError) as caught:
        read_schema(head, name, label, complete=True)
    assert message in str(caught.value)


def test_a_character_cut_by_the_head_read_is_not_an_error() -> None:
    head = "a,b,ü\n1,2,".encode() + "é".encode()[:1]
    assert read_schema(head, "x.csv", None, complete=False).label == "ü"


def test_schema_differences_name_what_changed() -> None:
    served = DataSchema(("a", "b"), "label")
    assert schema_differences(served, DataSchema(("b", "a"), "label")) == []
    assert schema_differences(served, DataSchema(("totally", "different"), "label")) == [
        "missing feature columns ['a', 'b']",
        "new feature columns ['totally', 'different']",
    ]
    assert schema_differences(served, DataSchema(("a", "b"), "y")) == ["label column 'y' instead of 'label'"]
