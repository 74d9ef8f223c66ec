"""Output schemas in the cheapest equivalent form for clients to validate.

Clients check every structured result against the tool's output schema (the
Python SDK with ``jsonschema``, which pays for every subschema it steps
into). Pydantic spells an optional field as ``anyOf: [{type: string},
{type: null}]`` and nests models behind ``$ref``; the account result alone
has some thirty of those. The same constraints written as ``type: [string,
null]`` with the models inlined validate the same documents at about half the
cost. Nothing is lost: a union is merged only when its branches' types are
disjoint and at most one branch has keywords, all of them ones that apply to
its type alone (a ``pattern`` does not constrain ``null``); a definition is
inlined only where nothing but annotations stand beside its ``$ref``; a
schema that refers to itself keeps its ``$ref``. Anything else is left as is.
"""

from __future__ import annotations

import json
from typing import Any

# Keywords that say something without constraining anything.
_ANNOTATIONS = frozenset({"title", "description", "examples", "default"})
# Keywords that constrain instances of one JSON type only: beside "null" in a type list they keep their
# meaning. Anything else (enum, const, anyOf, $ref, not ...) applies to every type and is never merged.
_TYPE_SPECIFIC = frozenset(
    {
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
    }
)
_DEFS_PREFIX = "#/$defs/"


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An equivalent schema: non-recursive ``$defs`` inlined, nullable ``anyOf`` pairs as type lists."""
    defs: dict[str, Any] = schema.get("$defs", {})
    kept_names = {name for name in defs if _refers_to(defs[name], name, defs, set())}
    kept_names |= _refs_with_constraints_beside(schema)
    compacted: dict[str, Any] = _compact({k: v for k, v in schema.items() if k != "$defs"}, defs, kept_names)
    kept = {name: _compact(defs[name], defs, kept_names) for name in sorted(kept_names) if name in defs}
    if kept:
        compacted["$defs"] = kept
    return compacted


def _refs_with_constraints_beside(node: Any) -> set[str]:
    """Definitions referred to with more than annotations beside the ``$ref`` (2020-12 applies both)."""
    if isinstance(node, list):
        return set().union(*(_refs_with_constraints_beside(item) for item in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = set().union(*(_refs_with_constraints_beside(v) for v in node.values())) if node else set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX) and set(node) - _ANNOTATIONS - {"$ref"}:
        found.add(ref.removeprefix(_DEFS_PREFIX))
    return found


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


def _compact(node: Any, defs: dict[str, Any], kept: set[str]) -> Any:
    if isinstance(node, list):
        return [_compact(item, defs, kept) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS_PREFIX):
        name = ref.removeprefix(_DEFS_PREFIX)
        if name in defs and name not in kept:
            # Inline the definition; only annotations stand beside the $ref (a field's description wins).
            inlined = _compact(json.loads(json.dumps(defs[name])), defs, kept)
            return {**inlined, **{k: v for k, v in node.items() if k != "$ref"}}
    compacted = {key: _compact(value, defs, kept) for key, value in node.items()}
    return _merge_nullable(compacted)


def _merge_nullable(node: dict[str, Any]) -> dict[str, Any]:
    """``{anyOf: [X, {type: null}]}`` -> ``{...X, type: [X.type, "null"]}``, and
    ``{anyOf: [{type: A}, {type: B}, ...]}`` -> ``{type: [A, B, ...]}``, where that is exact."""
    branches = node.get("anyOf")
    if not isinstance(branches, list) or len(branches) < 2 or not all(isinstance(b, dict) for b in branches):
        return node
    if set(node) - _ANNOTATIONS - {"anyOf"}:  # e.g. a "type" beside the anyOf: both apply, keep them apart
        return node
    declared = [branch.get("type") for branch in branches]
    if not all(isinstance(t, str) or (isinstance(t, list) and t) for t in declared):
        return node
    # A branch may already list its types ({type: [number, string]}): the union of disjoint lists is exact.
    types = [t for kinds in declared for t in ([kinds] if isinstance(kinds, str) else kinds)]
    if not all(isinstance(t, str) for t in types) or len(set(types)) != len(types):
        return node
    if {"integer", "number"} <= set(types):  # not disjoint: every integer is a number
        return node
    constrained = [b for b in branches if set(b) - _ANNOTATIONS - {"type"}]
    if len(constrained) > 1 or any(set(b) - _ANNOTATIONS - _TYPE_SPECIFIC - {"type"} for b in constrained):
        # Two constrained branches (or a keyword such as enum that applies to every type) cannot share a level.
        return node
    merged = {key: value for key, value in node.items() if key != "anyOf"}
    for branch in branches:
        for key, value in branch.items():
            if key != "type":
                merged.setdefault(key, value)  # the field's own title/description win over the type's
    merged["type"] = types
    return merged


def compact_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema a model reads, in its compact equivalent form, without ``title`` annotations and
    without ``"default": null``.

    Every tool description is paid for in the model's context on every turn (issue #15 item 9). Pydantic
    titles each argument with its own name spelled differently ("page_token" -> "Page Token"): no
    information, about a fifth of the bytes. It also writes ``"default": null`` on every optional
    argument, which says no more than the argument's absence from ``required`` (about 8%). Both are
    annotations only, so validation is unchanged (the server validates arguments with its own models,
    not this published copy); a default other than null is kept: it tells what an omission means.
    An optional choice becomes one enum with null in it, and an optional decimal one level whose
    description says both what the argument is and its precision (the range is in keywords).
    """
    stripped = _without_titles(compact_schema(_with_branch_descriptions_lifted(schema)))
    published: dict[str, Any] = _nullable_enums(stripped)
    return published


def _with_branch_descriptions_lifted(node: Any) -> Any:
    """An argument's description followed by its type's, e.g. a price's "For limit orders." and "Up to 9
    decimal places.", which pydantic writes on two levels (``anyOf: [{..., description}, {type: null}]``):
    on one level the nullable pair merges into a type list, and a model reads one sentence after the other."""
    if isinstance(node, list):
        return [_with_branch_descriptions_lifted(item) for item in node]
    if not isinstance(node, dict):
        return node
    lifted = {key: _with_branch_descriptions_lifted(value) for key, value in node.items()}
    branches = lifted.get("anyOf")
    if isinstance(lifted.get("description"), str) and isinstance(branches, list):
        texts = [
            b["description"]
            for b in branches
            if isinstance(b, dict) and isinstance(b.get("description"), str)
        ]
        if texts:
            lifted["description"] = " ".join([lifted["description"], *texts])
            lifted["anyOf"] = [
                {k: v for k, v in b.items() if k != "description"} if isinstance(b, dict) else b
                for b in branches
            ]
    return lifted


def _nullable_enums(node: Any) -> Any:
    """``{anyOf: [{enum: [a, b], type: string}, {type: null}]}`` -> ``{enum: [a, b, null], type: [string, null]}``:
    the same values allowed, in a third of the bytes (an optional choice argument)."""
    if isinstance(node, list):
        return [_nullable_enums(item) for item in node]
    if not isinstance(node, dict):
        return node
    merged = {key: _nullable_enums(value) for key, value in node.items()}
    branches = merged.get("anyOf")
    if (
        isinstance(branches, list)
        and len(branches) == 2
        and {"type": "null"} in branches
        and not set(merged) - _ANNOTATIONS - {"anyOf"}
    ):
        choice = branches[0] if branches[1] == {"type": "null"} else branches[1]
        kind, values = (choice.get("type"), choice.get("enum")) if isinstance(choice, dict) else (None, None)
        if (
            set(choice) - _ANNOTATIONS == {"type", "enum"}
            and isinstance(kind, str)
            and isinstance(values, list)
            and None not in values
        ):
            merged = {k: v for k, v in merged.items() if k != "anyOf"}
            for key, value in choice.items():
                if key not in ("type", "enum"):
                    merged.setdefault(key, value)
            merged.update(enum=[*values, None], type=[kind, "null"])
    return merged


def _without_titles(node: Any, *, naming: bool = False) -> Any:
    """``node`` without ``title`` keywords; ``naming``: a ``properties`` map, whose keys are argument names."""
    if isinstance(node, list):
        return [_without_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    if naming:
        return {name: _without_titles(value) for name, value in node.items()}
    return {
        key: _without_titles(value, naming=key in ("properties", "$defs"))
        for key, value in node.items()
        if not (key == "title" and isinstance(value, str)) and not (key == "default" and value is None)
    }
