"""Static bounds on hostile JSON: nesting depth, and what a JSON Schema costs to evaluate.

A program's ``spec`` holds JSON Schemas that every job's inputs are checked
against. A small schema can be enormously expensive: twenty ``$defs`` that each
``anyOf`` the next one twice make 1.5 KB that evaluates 2^20 branches per input
value. These checks run before anything compiles or evaluates a schema, in time
linear in its size, and refuse such a schema with a 400 that names the limit:

- nesting deeper than :data:`MAX_SCHEMA_DEPTH` (recursive validators and
  encoders would otherwise hit Python's recursion limit, a 500);
- a ``$ref`` that is not a pointer into the schema itself (``#/…``): the
  checker never fetches anything;
- an *expansion* over :data:`MAX_SCHEMA_EXPANSION`: the number of subschemas one
  evaluation may visit per instance value, counting every branch of
  ``anyOf``/``oneOf``/``allOf``, every applicator and every ``$ref`` followed
  (a reference cycle counts once: it can only recurse as deep as the instance).
"""

from __future__ import annotations

from typing import Any

#: Deepest nesting of objects and arrays in a schema.
MAX_SCHEMA_DEPTH = 32
#: Most subschemas one evaluation may visit for one instance value.
MAX_SCHEMA_EXPANSION = 10_000
#: Keywords whose value is one subschema.
_ONE = ("not", "if", "then", "else", "items", "contains", "additionalProperties", "propertyNames",
        "unevaluatedItems", "unevaluatedProperties", "additionalItems", "contentSchema")
#: Keywords whose value is a list of subschemas.
_LIST = ("anyOf", "oneOf", "allOf", "prefixItems")
#: Keywords whose value maps names to subschemas (``$defs`` is only reached through ``$ref``).
_MAP = ("properties", "patternProperties", "dependentSchemas")
_REFS = ("$ref", "$dynamicRef", "$recursiveRef")


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (a scalar is 0), counted without recursion; stops past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


def schema_problems(schema: Any) -> list[str]:
    """What makes ``schema`` too expensive or unsafe to evaluate (empty if nothing)."""
    if json_depth(schema, MAX_SCHEMA_DEPTH) > MAX_SCHEMA_DEPTH:
        return [f"Nests more than {MAX_SCHEMA_DEPTH} levels deep (the limit for a schema)."]
    problems: list[str] = []
    expansion = _Expansion(schema, problems).of(schema)
    if problems:
        return problems
    if expansion > MAX_SCHEMA_EXPANSION:
        return [
            f"Too expensive to evaluate: one input value may be checked against more than "
            f"{MAX_SCHEMA_EXPANSION} subschemas (anyOf/oneOf/allOf branches and $refs multiply); "
            "simplify the schema."
        ]
    return []


class _Expansion:
    """Counts subschema visits per instance value, memoized per subschema, capped at the limit."""

    def __init__(self, root: Any, problems: list[str]) -> None:
        self.root = root
        self.problems = problems
        self.memo: dict[int, int] = {}
        self.visiting: set[int] = set()

    def of(self, node: Any) -> int:
        if not isinstance(node, dict):
            return 1
        key = id(node)
        if key in self.memo:
            return self.memo[key]
        if key in self.visiting:  # a cycle: it recurses only as deep as the instance does
            return 1
        self.visiting.add(key)
        total = 1
        for word in _ONE:
            if word in node:
                total += self.of(node[word])
        for word in _LIST:
            if isinstance(node.get(word), list):
                total += sum(self.of(child) for child in node[word])
        if isinstance(node.get("items"), list):  # draft 4-7 tuple form
            total += sum(self.of(child) for child in node["items"])
        for word in _MAP:
            if isinstance(node.get(word), dict):
                total += sum(self.of(child) for child in node[word].values())
        for word in _REFS:
            if word in node:
                target = self._resolve(node[word])
                if target is not None:
                    total += self.of(target)
        self.visiting.discard(key)
        total = min(total, MAX_SCHEMA_EXPANSION + 1)
        self.memo[key] = total
        return total

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not (ref == "#" or ref.startswith("#/")):
            self.problems.append(
                f"$ref {str(ref)[:100]!r} does not point into the schema itself; only '#/…' references are allowed."
            )
            return None
        node = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                self.problems.append(f"$ref {ref[:100]!r} points at nothing in the schema.")
                return None
        return node
