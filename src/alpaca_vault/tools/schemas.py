"""Output schemas in the cheapest equivalent form for clients to validate.

Clients check every structured result against the tool's output schema (the
Python SDK with ``jsonschema``, which pays for every subschema it steps
into). Pydantic spells an optional field as ``anyOf: [{type: string},
{type: null}]`` and nests models behind ``$ref``; the account result alone
has some thirty of those. The same constraints written as ``type: [string,
null]`` with the models inlined validate the same documents at about half the
cost. Nothing is lost: only keywords that apply to one JSON type are merged
(a ``pattern`` does not constrain ``null``), and a schema that refers to
itself keeps its ``$ref``.
"""

from __future__ import annotations

import json
from typing import Any

# Keywords that constrain only instances of one JSON type, or only annotate: merging them next to
# "null" in a type list keeps their meaning. Anything else (enum, const, anyOf, $ref ...) is left as is.
_TYPE_SPECIFIC_OR_ANNOTATION = frozenset(
    {
        "type",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "minItems",
        "maxItems",
        "title",
        "description",
        "examples",
    }
)
_ANNOTATIONS = frozenset({"title", "description", "examples"})
_DEFS_PREFIX = "#/$defs/"


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An equivalent schema: non-recursive ``$defs`` inlined, nullable ``anyOf`` pairs as type lists."""
    defs: dict[str, Any] = schema.get("$defs", {})
    recursive = {name for name in defs if _refers_to(defs[name], name, defs, set())}
    compacted: dict[str, Any] = _compact({k: v for k, v in schema.items() if k != "$defs"}, defs, recursive)
    kept = {name: _compact(defs[name], defs, recursive) for name in sorted(recursive)}
    if kept:
        compacted["$defs"] = kept
    return compacted


def _refers_to(node: Any, target: str, defs: dict[str, Any], seen: set[str]) -> bool:
    """Whether ``node`` reaches ``#/$defs/target`` through its ``$ref``s."""
    if isinstance(node, list):
        return any(_refers_to(item, target, defs, seen) for item in node)
    if not isinstance(node, dict):
        return False
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        name = ref.removeprefix(_DEFS_PREFIX)
        if name == target:
            return True
        if name not in seen and name in defs:
            seen.add(name)
            if _refers_to(defs[name], target, defs, seen):
                return True
    return any(_refers_to(value, target, defs, seen) for key, value in node.items() if key != "$ref")


def _compact(node: Any, defs: dict[str, Any], recursive: set[str]) -> Any:
    if isinstance(node, list):
        return [_compact(item, defs, recursive) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        name = ref.removeprefix(_DEFS_PREFIX)
        if name in defs and name not in recursive:
            # Inline the definition; keywords beside the $ref (a field's description) win.
            inlined = _compact(json.loads(json.dumps(defs[name])), defs, recursive)
            return {**inlined, **{k: _compact(v, defs, recursive) for k, v in node.items() if k != "$ref"}}
    compacted = {key: _compact(value, defs, recursive) for key, value in node.items()}
    return _merge_nullable(compacted)


def _merge_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``{anyOf: [X, {type: null}]}`` -> ``{...X, type: [X.type, "null"]}``, and
    ``{anyOf: [{type: A}, {type: B}, ...]}`` -> ``{type: [A, B, ...]}``, where that is exact."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) < 2 or not all(isinstance(b, dict) for b in branches):
        return node
    types = [branch.get("type") for branch in branches]
    if not all(isinstance(t, str) for t in types) or len(set(types)) != len(types):
        return node
    constrained = [b for b in branches if set(b) - _ANNOTATIONS - {"type"}]
    if len(constrained) > 1 or any(not set(b) <= _TYPE_SPECIFIC_OR_ANNOTATION for b in constrained):
        # Two constrained branches (or a keyword such as enum that applies to every type) cannot share a level.
        return node
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    for branch in branches:
        for key, value in branch.items():
            if key != "type":
                merged.setdefault(key, value)  # the field's own title/description win over the type's
    merged["type"] = types
    return merged
