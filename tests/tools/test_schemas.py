"""tools/schemas.py: the compact output schemas accept and refuse exactly what the originals do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import validators

from alpaca_vault.tools.schemas import compact_schema

SNAPSHOT = Path(__file__).parents[1] / "server" / "snapshots" / "tool_list.json"


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    return bool(validators.validator_for(schema)(schema).is_valid(instance))


NULLABLE_DECIMAL = {
    "$defs": {
        "Money": {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "A decimal as a string."}
    },
    "type": "object",
    "properties": {
        "cash": {"anyOf": [{"$ref": "#/$defs/Money"}, {"type": "null"}], "description": "Cash."},
        "side": {"anyOf": [{"enum": ["buy", "sell"], "type": "string"}, {"type": "null"}]},
        "id": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "either": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "string", "maxLength": 1}]},
    },
    "required": ["cash"],
}

INSTANCES = [
    {"cash": "12.5"},
    {"cash": None},
    {"cash": "twelve"},
    {"cash": 12.5},
    {},
    {"cash": "1", "side": "buy"},
    {"cash": "1", "side": None},
    {"cash": "1", "side": "hold"},
    {"cash": "1", "id": 7},
    {"cash": "1", "id": "7"},
    {"cash": "1", "id": None},
    {"cash": "1", "id": 7.5},
    {"cash": "1", "tags": ["a"]},
    {"cash": "1", "tags": [1]},
    {"cash": "1", "tags": None},
    {"cash": "1", "either": "abcd"},
    {"cash": "1", "either": "a"},
    {"cash": "1", "either": "ab"},
]


def test_nullable_pairs_become_type_lists_and_defs_are_inlined() -> None:
    compact = compact_schema(NULLABLE_DECIMAL)
    assert "$defs" not in compact
    cash = compact["properties"]["cash"]
    assert cash["type"] == ["string", "null"] and cash["pattern"] == r"^-?\d+(\.\d+)?$"
    assert cash["description"] == "Cash."  # the field's description wins over the type's
    assert compact["properties"]["id"] == {"type": ["integer", "string", "null"]}
    assert compact["properties"]["tags"]["type"] == ["array", "null"]
    # Not merged: an enum would then refuse null; two constrained string branches cannot share a level.
    assert "anyOf" in compact["properties"]["side"]
    assert "anyOf" in compact["properties"]["either"]


@pytest.mark.parametrize("instance", INSTANCES, ids=[json.dumps(i) for i in INSTANCES])
def test_compact_schema_accepts_and_refuses_the_same_documents(instance: dict[str, Any]) -> None:
    assert _valid(compact_schema(NULLABLE_DECIMAL), instance) == _valid(NULLABLE_DECIMAL, instance)


def test_a_recursive_definition_keeps_its_ref() -> None:
    schema = {
        "$defs": {
            "Order": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "legs": {
                        "anyOf": [{"type": "array", "items": {"$ref": "#/$defs/Order"}}, {"type": "null"}]
                    },
                },
            }
        },
        "type": "object",
        "properties": {"order": {"$ref": "#/$defs/Order"}},
    }
    compact = compact_schema(schema)
    assert set(compact["$defs"]) == {"Order"}
    assert compact["$defs"]["Order"]["properties"]["legs"]["type"] == ["array", "null"]
    good = {"order": {"id": "a", "legs": [{"id": "b", "legs": None}]}}
    bad = {"order": {"id": "a", "legs": [{"id": 5}]}}
    assert _valid(compact, good) and not _valid(compact, bad)
    assert _valid(schema, good) and not _valid(schema, bad)


def _published_output_schemas() -> dict[str, dict[str, Any]]:
    tools = json.loads(SNAPSHOT.read_text())
    return {tool["name"]: tool["outputSchema"] for tool in tools if "outputSchema" in tool}


def test_every_published_output_schema_is_already_compact() -> None:
    for name, schema in _published_output_schemas().items():
        assert compact_schema(schema) == schema, name
        # Every union we publish is a plain type list, but for a nullable reference to a recursive
        # definition (an Order's legs are Orders), which cannot be inlined (#15: close-all results).
        assert all(_nullable_ref(union) for union in _unions(schema)), name


def _unions(node: Any) -> list[Any]:
    if isinstance(node, list):
        return [u for item in node for u in _unions(item)]
    if not isinstance(node, dict):
        return []
    own = [node["anyOf"]] if "anyOf" in node else []
    return own + [u for value in node.values() for u in _unions(value)]


def _nullable_ref(union: Any) -> bool:
    return (
        isinstance(union, list)
        and len(union) == 2
        and set(union[0]) == {"$ref"}
        and union[1] == {"type": "null"}
    )


@pytest.mark.parametrize(
    "schema",
    [
        # integer and number overlap: a minimum on the integer branch must not reach the numbers
        {"anyOf": [{"type": "integer", "minimum": 5}, {"type": "number"}]},
        # a type beside the anyOf applies too: merging would let null through
        {"type": "string", "anyOf": [{"type": "string"}, {"type": "null"}]},
        # keywords beside a $ref apply with the definition's (2020-12): both "required"s hold
        {
            "$defs": {"A": {"type": "object", "required": ["a"]}},
            "properties": {"x": {"$ref": "#/$defs/A", "required": ["b"]}},
        },
    ],
    ids=["integer-number", "type-beside-anyOf", "required-beside-ref"],
)
def test_unions_and_refs_that_cannot_be_flattened_keep_their_meaning(schema: dict[str, Any]) -> None:
    compact = compact_schema(schema)
    for instance in (3, 3.5, 7, None, "s", {"x": {"a": 1}}, {"x": {"b": 1}}, {"x": {"a": 1, "b": 2}}):
        assert _valid(compact, instance) == _valid(schema, instance), instance


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(cash=json_values, side=json_values, id_=json_values, tags=json_values, either=json_values)
def test_equivalence_on_arbitrary_values(cash: Any, side: Any, id_: Any, tags: Any, either: Any) -> None:
    instance = {"cash": cash, "side": side, "id": id_, "tags": tags, "either": either}
    assert _valid(compact_schema(NULLABLE_DECIMAL), instance) == _valid(NULLABLE_DECIMAL, instance)


# Schemas built the way pydantic builds them (unions of simple branches, defs behind $ref, keywords
# beside both), with instances drawn freely: the compact form must agree on every one.
_BRANCHES = st.sampled_from(
    [
        {"type": "null"},
        {"type": "string"},
        {"type": "string", "minLength": 2},
        {"type": "string", "pattern": "^a"},
        {"type": "integer"},
        {"type": "integer", "minimum": 5},
        {"type": "number"},
        {"type": "number", "maximum": 1.5},
        {"type": ["number", "string"], "exclusiveMinimum": 0, "maximum": 9, "maxLength": 3},  # a decimal
        {"type": "boolean"},
        {"type": "array", "items": {"type": "integer"}},
        {"type": "object", "required": ["a"]},
        {"enum": ["a", 1]},
        {"const": None},
        {"$ref": "#/$defs/D"},
    ]
)
_BESIDE = st.sampled_from([{}, {"description": "d"}, {"default": None}, {"type": "string"}, {"minimum": 2}])
_DEFINITIONS = st.sampled_from(
    [{"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "object", "required": ["b"]}]
)
schemas = st.builds(
    lambda branches, beside, definition, ref_beside: {
        "$defs": {"D": definition},
        "type": "object",
        "properties": {
            "u": {"anyOf": branches, **beside},
            "r": {"$ref": "#/$defs/D", **ref_beside},
        },
    },
    st.lists(_BRANCHES, min_size=2, max_size=3),
    _BESIDE,
    _DEFINITIONS,
    _BESIDE,
)


@settings(max_examples=400, deadline=None)
@given(schema=schemas, u=json_values, r=json_values)
def test_equivalence_on_arbitrary_schemas_and_values(schema: dict[str, Any], u: Any, r: Any) -> None:
    compact = compact_schema(schema)
    for instance in ({"u": u, "r": r}, {"u": u}, {"r": r}):
        assert _valid(compact, instance) == _valid(schema, instance), (compact, instance)


def test_input_schemas_drop_null_defaults_and_keep_the_others() -> None:
    """``"default": null`` says no more than an argument's absence from ``required`` (issue #15 economy)."""
    from alpaca_vault.tools.schemas import compact_input_schema

    schema = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "default": 100, "title": "Limit"},
            "page_token": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "default": None,
                "title": "Page Token",
            },
            "legs": {"type": "array", "items": {"type": "object", "properties": {"x": {"default": None}}}},
        },
    }
    assert compact_input_schema(schema) == {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "default": 100},
            "page_token": {"type": ["string", "null"]},
            "legs": {"type": "array", "items": {"type": "object", "properties": {"x": {}}}},
        },
    }
    published = json.loads(
        (Path(__file__).parents[1] / "server" / "snapshots" / "tool_list.json").read_text()
    )
    tools = published if isinstance(published, list) else published["tools"]
    assert all('"default": null' not in json.dumps(tool["inputSchema"]) for tool in tools)


# An argument as pydantic writes it before compaction: an optional decimal (its field's description beside
# the type's) and an optional choice.
OPTIONAL_ARGUMENTS = {
    "type": "object",
    "properties": {
        "limit_price": {
            "anyOf": [
                {
                    "type": ["number", "string"],
                    "exclusiveMinimum": 0,
                    "maximum": 1000,
                    "maxLength": 40,
                    "description": "Up to 2 decimal places.",
                },
                {"type": "null"},
            ],
            "default": None,
            "description": "For limit orders.",
        },
        "side": {"anyOf": [{"enum": ["buy", "sell"], "type": "string"}, {"type": "null"}], "title": "Side"},
    },
}


def test_input_schemas_merge_optional_decimals_and_choices_into_one_level() -> None:
    """Issue #15 item 9: the cheapest exact form of an optional decimal or choice, nothing lost for a model."""
    from alpaca_vault.tools.schemas import compact_input_schema

    assert compact_input_schema(OPTIONAL_ARGUMENTS)["properties"] == {
        "limit_price": {
            "type": ["number", "string", "null"],
            "exclusiveMinimum": 0,
            "maximum": 1000,
            "maxLength": 40,
            "description": "For limit orders. Up to 2 decimal places.",
        },
        "side": {"enum": ["buy", "sell", None], "type": ["string", "null"]},
    }


# The edges of the optional decimal and choice, each as either argument: checked once, not with
# every drawn example (they do not depend on it).
EDGE_ARGUMENT_VALUES = (0, 1000, 1000.5, "x" * 41, "12.5", "buy", None)


@pytest.mark.parametrize("value", EDGE_ARGUMENT_VALUES, ids=[json.dumps(v) for v in EDGE_ARGUMENT_VALUES])
def test_compact_input_schema_accepts_and_refuses_the_same_edge_arguments(value: Any) -> None:
    from alpaca_vault.tools.schemas import compact_input_schema

    compact = compact_input_schema(OPTIONAL_ARGUMENTS)
    for instance in ({"limit_price": value}, {"side": value}):
        assert _valid(compact, instance) == _valid(OPTIONAL_ARGUMENTS, instance), instance


@settings(max_examples=300, deadline=None)
@given(limit_price=json_values, side=json_values)
def test_compact_input_schema_accepts_and_refuses_the_same_arguments(limit_price: Any, side: Any) -> None:
    """Each drawn value as either argument, and the two together (the fixed edges: the test above)."""
    from alpaca_vault.tools.schemas import compact_input_schema

    compact = compact_input_schema(OPTIONAL_ARGUMENTS)
    for instance in (
        {"limit_price": limit_price},
        {"side": limit_price},
        {"limit_price": side},
        {"side": side},
        {"limit_price": limit_price, "side": side},
    ):
        assert _valid(compact, instance) == _valid(OPTIONAL_ARGUMENTS, instance), instance


def test_every_published_decimal_argument_declares_its_range_as_keywords() -> None:
    """A model reads the range of every price, quantity and percentage from minimum/maximum keywords."""
    decimals = [
        (tool["name"], name, schema)
        for tool in json.loads(SNAPSHOT.read_text())
        for name, schema in tool["inputSchema"].get("properties", {}).items()
        if "number" in schema.get("type", [])
    ]
    assert len(decimals) >= 20
    for tool, name, schema in decimals:
        assert "maximum" in schema and {"minimum", "exclusiveMinimum"} & set(schema), (tool, name)
        assert "maxLength" in schema and "decimal places" in schema["description"], (tool, name)
