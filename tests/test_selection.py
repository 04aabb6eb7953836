"""Parsing `name[key=value,...]` selections."""

import pytest

from benchmark.errors import FuncbenchError
from benchmark.selection import Selector, parse_selection


@pytest.mark.parametrize(
    "text, expected",
    [
        ("addition", [Selector("addition")]),
        (" addition , product ", [Selector("addition"), Selector("product")]),
        ("weighted_sum[n=10]", [Selector("weighted_sum", (("n", "10"),))]),
        ("mlp[width=64, depth=2,act=tanh],linear", [Selector("mlp", (("width", "64"), ("depth", "2"), ("act", "tanh"))), Selector("linear")]),
        ("mlp[]", [Selector("mlp")]),
        ("a.b-c", [Selector("a.b-c")]),
    ],
)
def test_valid_selections(text, expected):
    assert parse_selection(text) == expected


@pytest.mark.parametrize(
    "text", ["", " ", ",", "a,", "a,,b", "[n=1]", "a[n=1", "a[n]", "a[=1]", "a[n=]", "a[n=1,n=2]", "a b", "a[n=1]x", "a[n=[1]]", "1a"]
)
def test_invalid_selections_raise_a_one_line_error(text):
    with pytest.raises(FuncbenchError) as error:
        parse_selection(text)
    assert "\n" not in str(error.value)


def test_str_round_trips():
    for text in ["addition", "mlp[width=8,act=tanh]"]:
        assert str(parse_selection(text)[0]) == text
