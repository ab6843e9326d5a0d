"""Compile search-parameter FHIRPath expressions into plain-Python extractors.

Indexing runs on every write, so evaluating each parameter's expression with a general FHIRPath engine is far
too slow (see design/architecture.md section 4). This module parses the small FHIRPath subset the R4 search
parameters use (paths, unions, choice types with `as`/`ofType`, `where(...)` with `resolve() is T` and
`x = 'literal'` filters, `extension(url)`, `exists()`, `first()`, indexers, boolean operators, `%resource`) and
turns it into closures over the resource dict. Every value comes out with its FHIR type, taken from the generated
element table (`definitions/element_types.json`), because the indexer treats a Coding, an Identifier or a
ContactPoint differently even when they look alike.

Anything outside the subset falls back to fhirpathpy, compiled once; those values get a type guessed from
their shape. `CompiledPath.fallback` tells which.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

Item = tuple[Any, str]  # (JSON value, FHIR type name)
Items = list[Item]
Fn = Callable[[Items, dict], Items]  # (input collection, root resource) -> output collection
Extractor = Callable[[dict], Items]

UNKNOWN = "?"  # type of values whose FHIR type cannot be known (fallback results, unknown elements)
SCAN: tuple[tuple[str, str], ...] = (("", UNKNOWN),)  # marker: look the keys up in the value itself
ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})
_TRUE: Items = [(True, "boolean")]
_FALSE: Items = [(False, "boolean")]


class CompileError(ValueError):
    """The expression is outside the compiled subset (the caller falls back to fhirpathpy)."""


# ------------------------------------------------------------------------------------------------ types


class ElementTypes:
    """The FHIR type of every element: which JSON keys to read for a name, and what type each value has."""

    def __init__(self, table: dict[str, list[Any]], resource_types: frozenset[str] = frozenset()) -> None:
        self._bases: dict[str, str | None] = {name: entry[0] for name, entry in table.items()}
        self._own: dict[str, dict[str, Any]] = {name: entry[1] for name, entry in table.items()}
        self.resource_types = resource_types or frozenset(
            n for n in table if "." not in n and self._chain_has(n, "Resource") and n not in ABSTRACT_RESOURCES
        )
        self._candidates: dict[tuple[str, str, str | None], tuple[tuple[str, str], ...]] = {}
        self._subtype: dict[tuple[str, str], bool] = {}

    @classmethod
    def load(cls) -> ElementTypes:
        """Read the generated table shipped with the package."""
        text = resources.files("sharedcare.fhir").joinpath("definitions/element_types.json").read_text()
        return cls(json.loads(text)["types"])

    def known(self, type_name: str) -> bool:
        return type_name in self._own

    def base(self, type_name: str) -> str | None:
        return self._bases.get(type_name)

    def _chain_has(self, type_name: str, ancestor: str) -> bool:
        t: str | None = type_name
        while t is not None:
            if t == ancestor:
                return True
            t = self._bases.get(t)
        return False

    def is_subtype(self, type_name: str, ancestor: str) -> bool:
        """True if `type_name` is `ancestor` or derives from it (Age is a Quantity, code is a string)."""
        key = (type_name, ancestor)
        hit = self._subtype.get(key)
        if hit is None:
            hit = self._subtype[key] = self._chain_has(type_name, ancestor)
        return hit

    def element(self, type_name: str, name: str) -> Any:
        """The declared type of element `name` of `type_name` (a list for a choice element), or None."""
        t: str | None = type_name
        while t is not None:
            own = self._own.get(t)
            if own is not None and name in own:
                return own[name]
            t = self._bases.get(t)
        return None

    def candidates(self, type_name: str, name: str, only: str | None = None) -> tuple[tuple[str, str], ...]:
        """(JSON key, FHIR type) pairs to read for `type_name.name`, optionally only subtypes of `only`."""
        key = (type_name, name, only)
        hit = self._candidates.get(key)
        if hit is not None:
            return hit
        if not self.known(type_name):
            return SCAN  # unknown type: the caller scans the value's keys
        decl = self.element(type_name, name)
        if decl is None:
            pairs: list[tuple[str, str]] = []
        elif isinstance(decl, list):
            pairs = [(name + t[0].upper() + t[1:], t) for t in decl]
        else:
            pairs = [(name, decl)]
        if only is not None:
            pairs = [(k, t) for k, t in pairs if self.is_subtype(t, only)]
        hit = self._candidates[key] = tuple(pairs)
        return hit

    def scan(self, value: dict, name: str, only: str | None) -> tuple[tuple[str, str], ...]:
        """Keys for `name` in a value of unknown type: `name` itself, or choice keys `name<Type>`."""
        pairs = [(name, UNKNOWN)] if name in value else []
        n = len(name)
        for key in value:
            if len(key) > n and key.startswith(name) and key[n].isupper():
                pairs.append((key, self.normalise_type(key[n:])))
        if only is not None:
            pairs = [(k, t) for k, t in pairs if t == UNKNOWN or self.is_subtype(t, only)]
        return tuple(pairs)

    def normalise_type(self, name: str) -> str:
        """`FHIR.Quantity` -> Quantity; `System.String`/`String` -> string; `DateTime` -> dateTime."""
        if name.startswith(("FHIR.", "System.")):
            name = name.split(".", 1)[1]
        if name in self._own:
            return name
        lowered = name[:1].lower() + name[1:]
        return lowered if lowered in self._own else name


# ------------------------------------------------------------------------------------------------ parser

_TOKEN_RE = re.compile(
    r"""\s+|//[^\n]*|/\*.*?\*/
    |(?P<str>'(?:[^'\\]|\\.)*')
    |(?P<date>@[0-9T:.+\-Z]*)
    |(?P<num>\d+(?:\.\d+)?)
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
    |(?P<var>[%$](?:[A-Za-z_][A-Za-z0-9_]*|'[^']*'|`[^`]*`))
    |(?P<op>!=|!~|<=|>=|[.|=~<>()\[\],+\-*/&{}])""",
    re.X | re.S,
)
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

# Binding powers of the infix operators, from the FHIRPath grammar's precedence table.
_INFIX_BP = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "~": 5,
    "!=": 5,
    "!~": 5,
    "<": 6,
    ">": 6,
    "<=": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
    "+": 9,
    "-": 9,
    "&": 9,
    "*": 10,
    "/": 10,
    "div": 10,
    "mod": 10,
}

Node = tuple  # AST nodes are tuples whose first item names the kind
_CALENDAR_UNITS = frozenset(
    unit + plural
    for unit in ("year", "month", "week", "day", "hour", "minute", "second", "millisecond")
    for plural in ("", "s")
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise CompileError(f"cannot tokenize at {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind is not None:
            tokens.append((kind, m.group(kind)))
    tokens.append(("end", ""))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)", lambda m: _unescape(m.group(1)), body)


def _unescape(code: str) -> str:
    if code.startswith("u") and len(code) == 5:
        return chr(int(code[1:], 16))
    return _ESCAPES.get(code, code)


class _Parser:
    """A Pratt parser for FHIRPath producing tuple ASTs."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def next(self) -> tuple[str, str]:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.next()
        if tok[1] != value:
            raise CompileError(f"expected {value!r}, got {tok[1]!r}")

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek()[0] != "end":
            raise CompileError(f"unexpected {self.peek()[1]!r}")
        return node

    def expr(self, min_bp: int) -> Node:
        left = self.unary()
        while True:
            kind, value = self.peek()
            bp = _INFIX_BP.get(value) if kind in ("op", "ident") else None
            if bp is None or bp <= min_bp:
                return left
            self.next()
            if value in ("is", "as"):
                left = ("typeop", value, left, self.type_name())
            else:
                left = ("binop", value, left, self.expr(bp))

    def type_name(self) -> str:
        kind, name = self.next()
        if kind != "ident":
            raise CompileError(f"expected a type name, got {name!r}")
        while self.peek()[1] == ".":
            self.next()
            name += "." + self.next()[1]
        return name.strip("`")

    def unary(self) -> Node:
        if self.peek()[1] in ("-", "+"):
            sign = self.next()[1]
            operand = self.unary()
            return ("neg", operand) if sign == "-" else operand
        return self.postfix(self.term())

    def postfix(self, node: Node) -> Node:
        while True:
            value = self.peek()[1]
            if value == ".":
                self.next()
                node = self.invocation(node)
            elif value == "[":
                self.next()
                index = self.expr(0)
                self.expect("]")
                node = ("index", node, index)
            else:
                return node

    def invocation(self, src: Node | None) -> Node:
        kind, name = self.next()
        if kind != "ident":
            raise CompileError(f"expected a name after '.', got {name!r}")
        name = name.strip("`")
        if self.peek()[1] == "(":
            self.next()
            args: list[Node] = []
            if self.peek()[1] != ")":
                args.append(self.expr(0))
                while self.peek()[1] == ",":
                    self.next()
                    args.append(self.expr(0))
            self.expect(")")
            return ("func", src, name, tuple(args))
        return ("member", src, name)

    def term(self) -> Node:
        kind, value = self.peek()
        if kind == "op" and value == "(":
            self.next()
            node = self.expr(0)
            self.expect(")")
            return node
        if kind == "op" and value == "{":
            self.next()
            self.expect("}")
            return ("empty",)
        self.next()
        if kind == "str":
            return ("literal", _unquote(value), "string")
        if kind == "date":
            return ("temporal", value[1:])  # parsed, but only fhirpathpy evaluates date/time literals
        if kind == "num" and self.peek()[0] == "str":
            return ("quantity", value, _unquote(self.next()[1]))  # likewise for quantity literals
        if kind == "num" and self.peek()[0] == "ident" and self.peek()[1] in _CALENDAR_UNITS:
            return ("quantity", value, self.next()[1])
        if kind == "num":
            return ("literal", float(value), "decimal") if "." in value else ("literal", int(value), "integer")
        if kind == "var":
            return ("var", value[1:].strip("`'"))
        if kind == "ident":
            if value in ("true", "false"):
                return ("literal", value == "true", "boolean")
            self.pos -= 1
            return self.invocation(None)
        raise CompileError(f"unsupported term {value!r}")


def parse(text: str) -> Node:
    """Parse a FHIRPath expression into a tuple AST; raises CompileError for text that is not FHIRPath."""
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------------ helpers


def _truth(items: Items) -> bool | None:
    """FHIRPath singleton evaluation of a collection as a boolean: None for empty (and, leniently, for the
    error case of several items, so that odd data never blocks a write)."""
    if len(items) != 1:
        return None
    value = items[0][0]
    return value if isinstance(value, bool) else True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def _equal(left: Items, right: Items) -> Items:
    if not left or not right:
        return []
    if len(left) != len(right):
        return _FALSE
    return _TRUE if all(_same(a[0], b[0]) for a, b in zip(left, right, strict=True)) else _FALSE


_REF_RE = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def reference_type(value: Any) -> str | None:
    """The resource type a Reference (dict) or canonical/uri string points at, if it can be told from it."""
    ref = value.get("reference") if isinstance(value, dict) else value
    if isinstance(ref, str):
        m = _REF_RE.search(ref.split("|", 1)[0])
        if m:
            return m.group(1)
    if isinstance(value, dict):
        t = value.get("type")
        if isinstance(t, str):
            return t.rsplit("/", 1)[-1]
    return None


def guess_type(value: Any) -> str:
    """The likely FHIR type of a value whose declaration is unknown (fhirpathpy results)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    if isinstance(value, str):
        return "string"
    if not isinstance(value, dict):
        return UNKNOWN
    if "resourceType" in value:
        return value["resourceType"]
    keys = value.keys()
    for marker, typ in _SHAPES:
        if marker & keys:
            return typ
    return UNKNOWN


_SHAPES: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"coding"}), "CodeableConcept"),
    (frozenset({"reference"}), "Reference"),
    (frozenset({"family", "given", "prefix", "suffix"}), "HumanName"),
    (frozenset({"line", "city", "district", "state", "postalCode", "country"}), "Address"),
    (frozenset({"currency"}), "Money"),
    (frozenset({"start", "end"}), "Period"),
    (frozenset({"low", "high"}), "Range"),
    (frozenset({"event", "repeat"}), "Timing"),
    (frozenset({"url"}), "Extension"),
    (frozenset({"value", "unit"}), "Quantity"),
    (frozenset({"code", "display"}), "Coding"),
    (frozenset({"system", "value"}), "Identifier"),
)


# ------------------------------------------------------------------------------------------------ compiler


@dataclass(frozen=True, slots=True)
class CompiledPath:
    """A compiled expression: call it with a resource to get [(value, FHIR type)]."""

    expression: str
    resource_type: str
    fn: Fn | None  # None: statically empty for this resource type
    fallback: bool = False
    # Top-level keys the expression reads: if the resource has none of them the result is empty, so the
    # indexer can skip the call. None when that cannot be told (e.g. `exists()`, `%resource`).
    root_keys: frozenset[str] | None = None

    def __call__(self, resource: dict) -> Items:
        fn = self.fn
        return fn([(resource, self.resource_type)], resource) if fn is not None else []

    def relative(self, items: Items, root: dict) -> Items:
        """Evaluate against a context collection (composite components run relative to their base element)."""
        fn = self.fn
        return fn(items, root) if fn is not None else []


class ExpressionCompiler:
    """Turns FHIRPath text into `CompiledPath`s; parses each distinct expression once."""

    def __init__(self, types: ElementTypes) -> None:
        self.types = types
        self._ast: dict[str, Node | CompileError] = {}

    def compile(self, expression: str, resource_type: str, relative: bool = False) -> CompiledPath:
        """Compile for resources of `resource_type`; `relative` expressions start from a context element.

        Union branches rooted at another resource type are pruned, so a shared parameter such as
        `AllergyIntolerance.patient | CarePlan.subject.where(...)` costs one branch per resource.
        """
        try:
            ast = self._parse(expression)
            comp = _Compilation(self.types, None if relative else frozenset({resource_type}))
            fn = comp.compile(ast)
            keys = None if relative or fn is None else comp.root_keys(ast)
            return CompiledPath(expression, resource_type, fn, root_keys=keys)
        except CompileError:
            try:
                fallback: Fn | None = _fhirpathpy_fn(expression)
            except Exception:  # noqa: BLE001 - fhirpathpy raises plain Exceptions; the parameter is then unindexed
                fallback = None
            return CompiledPath(expression, resource_type, fallback, fallback=True)

    def _parse(self, expression: str) -> Node:
        hit = self._ast.get(expression)
        if hit is None:
            try:
                hit = parse(expression)
            except CompileError as exc:
                hit = exc
            self._ast[expression] = hit
        if isinstance(hit, CompileError):
            raise hit
        return hit


def _fhirpathpy_fn(expression: str) -> Fn:
    """Compile with fhirpathpy once; values come back untyped, so guess their types from their shape."""
    import fhirpathpy
    from fhirpathpy.models import models

    compiled = fhirpathpy.compile(expression, model=models["r4"])

    def fn(items: Items, root: dict) -> Items:
        out: Items = []
        for value, _t in items:
            try:
                results = compiled(value, {"resource": root, "rootResource": root})
            except Exception:  # noqa: BLE001 - an engine failure must not block a write; the value is unindexed
                continue
            out.extend(_plain(r) for r in results)
        return out

    return fn


def _plain(value: Any) -> Item:
    """A fhirpathpy result as JSON-like data with a guessed type (its quantities and times are objects)."""
    if value is None or isinstance(value, str | bool | int | float | dict | list):
        return value, guess_type(value)
    unit = getattr(value, "unit", None)
    if unit is not None and hasattr(value, "value"):
        code = str(unit).strip("'")
        quantity = {"value": value.value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}
        return quantity, "Quantity"
    return str(value), "string"


class _Compilation:
    """One expression's compilation: AST node -> closure, or None when the node is statically empty."""

    def __init__(self, types: ElementTypes, root_types: frozenset[str] | None) -> None:
        self.types = types
        self.root_types = root_types  # static types of the input collection at the expression's root

    def compile(self, node: Node) -> Fn | None:
        kind = node[0]
        handler = getattr(self, f"_c_{kind}", None)
        if handler is None:
            raise CompileError(f"unsupported node {kind}")
        return handler(node)

    def root_keys(self, node: Node, only: str | None = None) -> frozenset[str] | None:
        """The resource's top-level keys `node` can read (see CompiledPath.root_keys); None if unknown.

        `only` narrows a choice element to one type (`Observation.value as Quantity` reads valueQuantity).
        """
        kind = node[0]
        if kind == "binop" and node[1] == "|":
            left, right = self.root_keys(node[2]), self.root_keys(node[3])
            return None if left is None or right is None else left | right
        if kind == "typeop" and node[1] == "as":
            return self.root_keys(node[2], self.types.normalise_type(node[3]))
        if kind == "func" and node[2] in ("as", "ofType") and len(node[3]) == 1 and node[3][0][0] == "member":
            only = self.types.normalise_type(_type_arg(node[3][0]))
            return None if node[1] is None else self.root_keys(node[1], only)
        if kind == "func" and node[2] == "extension" and self._is_root(node[1]):
            return frozenset({"extension"})
        if kind == "index" or (kind == "func" and node[2] in _PASS_THROUGH):
            return None if node[1] is None else self.root_keys(node[1])
        if kind != "member" or self.root_types is None:
            return None
        src, name = node[1], node[2]
        if src is None:
            if name[:1].isupper() and self._is_type_name(name):
                return None if self._type_filter(name, None) is not None else frozenset()
            return self._keys_of(name, only)
        if self._is_root(src):
            if self._type_filter(src[2], None) is None:
                return frozenset()  # a branch for another resource type
            return self._keys_of(name, only)
        return self.root_keys(src)

    def _is_root(self, node: Node | None) -> bool:
        """A leading type name such as `Observation` (the root when it matches)."""
        return (
            node is not None
            and self.root_types is not None
            and node[0] == "member"
            and node[1] is None
            and node[2][:1].isupper()
            and self._is_type_name(node[2])
        )

    def _keys_of(self, name: str, only: str | None) -> frozenset[str] | None:
        assert self.root_types is not None
        keys: set[str] = set()
        for t in self.root_types:
            cands = self.types.candidates(t, name, only)
            if cands is SCAN:
                return None
            keys.update(k for k, _ in cands)
        return frozenset(keys)

    def sub(self, node: Node | None) -> Fn | None:
        return _identity if node is None else self.compile(node)

    # -- terms

    def _c_literal(self, node: Node) -> Fn:
        result: Items = [(node[1], node[2])]
        return lambda items, root: result

    def _c_empty(self, node: Node) -> None:
        return None

    def _c_var(self, node: Node) -> Fn:
        name = node[1]
        if name in ("resource", "rootResource", "context"):
            return lambda items, root: [(root, root.get("resourceType", "Resource"))]
        if name == "this":
            return _identity
        if name == "ucum":
            return lambda items, root: [("http://unitsofmeasure.org", "string")]
        raise CompileError(f"unsupported variable %{name}")

    def _c_neg(self, node: Node) -> Fn | None:
        inner = self.compile(node[1])
        if inner is None:
            return None

        def fn(items: Items, root: dict) -> Items:
            return [(-v, t) for v, t in inner(items, root) if isinstance(v, int | float)]

        return fn

    # -- navigation

    def _c_member(self, node: Node, only: str | None = None) -> Fn | None:
        _, src, name = node
        if src is None and name[:1].isupper() and self._is_type_name(name):
            return self._type_filter(name, only)
        source = self.sub(src)
        if source is None:
            return None
        return _compose(source, _member_step(self.types, name, only))

    def _is_type_name(self, name: str) -> bool:
        return self.types.known(name) or name in ABSTRACT_RESOURCES

    def _type_filter(self, name: str, only: str | None) -> Fn | None:
        """A leading type name (`Observation.code`) selects the root if it is of that type."""
        types = self.types
        if self.root_types is not None:
            matches = [types.is_subtype(t, name) for t in self.root_types]
            if not any(matches):
                return None
            if all(matches) and only is None:
                return _identity
        return _filter_type(types, name if only is None else only)

    def _c_index(self, node: Node) -> Fn | None:
        _, src, index = node
        if index[0] != "literal" or not isinstance(index[1], int):
            raise CompileError("only literal integer indexes are supported")
        source = self.sub(src)
        if source is None:
            return None
        n = index[1]
        return lambda items, root: source(items, root)[n : n + 1]

    # -- operators

    def _c_typeop(self, node: Node) -> Fn | None:
        _, op, expr, type_name = node
        target = self.types.normalise_type(type_name)
        if op == "as":
            if expr[0] == "member":
                return self._c_member(expr, only=target)
            source = self.compile(expr)
            return None if source is None else _compose(source, _filter_type(self.types, target))
        source = self.compile(expr)
        return _is_type_fn(self.types, source, target)

    def _c_binop(self, node: Node) -> Fn | None:
        _, op, left_node, right_node = node
        left = self.compile(left_node)
        right = self.compile(right_node)
        if op == "|":
            return _union(left, right)
        lf = left or _nothing
        rf = right or _nothing
        if op in ("=", "!="):
            return _equality(lf, rf, op == "!=")
        if op in ("and", "or", "xor", "implies"):
            return _logic(op, lf, rf)
        if op in ("<", ">", "<=", ">="):
            return _comparison(op, lf, rf)
        raise CompileError(f"unsupported operator {op}")

    # -- functions

    def _c_func(self, node: Node) -> Fn | None:
        _, src, name, args = node
        if name in ("as", "ofType", "is"):
            if len(args) != 1:
                raise CompileError(f"{name}() needs a type name")
            op = "is" if name == "is" else "as"
            return self._c_typeop(("typeop", op, src or ("var", "this"), _type_arg(args[0])))
        builder = getattr(self, f"_f_{name}", None)
        if builder is None:
            raise CompileError(f"unsupported function {name}()")
        source = self.sub(src)
        if source is None and name not in ("exists", "empty", "not", "count"):
            return None
        return builder(source or _nothing, args)

    def _string_arg(self, args: tuple, fname: str) -> str:
        if len(args) != 1 or args[0][0] != "literal" or not isinstance(args[0][1], str):
            raise CompileError(f"{fname}() needs one string literal")
        return args[0][1]

    def _criteria(self, args: tuple, fname: str) -> Fn:
        if len(args) != 1:
            raise CompileError(f"{fname}() needs one argument")
        crit = _Compilation(self.types, None).compile(args[0])
        return crit or _nothing

    def _f_where(self, source: Fn, args: tuple) -> Fn:
        crit = self._criteria(args, "where")

        def fn(items: Items, root: dict) -> Items:
            return [item for item in source(items, root) if _truth(crit([item], root)) is True]

        return fn

    def _f_exists(self, source: Fn, args: tuple) -> Fn:
        if args:
            source = self._f_where(source, args)
        return lambda items, root: _TRUE if source(items, root) else _FALSE

    def _f_empty(self, source: Fn, args: tuple) -> Fn:
        return lambda items, root: _FALSE if source(items, root) else _TRUE

    def _f_not(self, source: Fn, args: tuple) -> Fn:
        def fn(items: Items, root: dict) -> Items:
            value = _truth(source(items, root))
            return [] if value is None else (_FALSE if value else _TRUE)

        return fn

    def _f_count(self, source: Fn, args: tuple) -> Fn:
        return lambda items, root: [(len(source(items, root)), "integer")]

    def _f_first(self, source: Fn, args: tuple) -> Fn:
        return lambda items, root: source(items, root)[:1]

    def _f_last(self, source: Fn, args: tuple) -> Fn:
        return lambda items, root: source(items, root)[-1:]

    def _f_single(self, source: Fn, args: tuple) -> Fn:
        return self._f_first(source, args)

    def _f_resolve(self, source: Fn, args: tuple) -> Fn:
        """Stand-ins for the referenced resources: their type is known from the reference, their content
        is not (except contained resources), which is all `where(resolve() is Patient)` needs."""
        resource_types = self.types.resource_types

        def fn(items: Items, root: dict) -> Items:
            out: Items = []
            for value, _t in source(items, root):
                ref = value.get("reference") if isinstance(value, dict) else value
                if isinstance(ref, str) and ref.startswith("#"):
                    out.extend((c, c.get("resourceType", "Resource")) for c in _contained(root, ref[1:]))
                    continue
                rtype = reference_type(value)
                if rtype in resource_types:
                    out.append(({"resourceType": rtype}, rtype))
            return out

        return fn

    def _f_extension(self, source: Fn, args: tuple) -> Fn:
        url = self._string_arg(args, "extension")

        def fn(items: Items, root: dict) -> Items:
            out: Items = []
            for value, _t in source(items, root):
                if isinstance(value, dict):
                    out.extend((e, "Extension") for e in value.get("extension", ()) if e.get("url") == url)
            return out

        return fn

    def _f_hasExtension(self, source: Fn, args: tuple) -> Fn:  # noqa: N802 - FHIRPath function name
        ext = self._f_extension(_identity, args)

        def fn(items: Items, root: dict) -> Items:
            return [(bool(ext([item], root)), "boolean") for item in source(items, root)]

        return fn


# Functions whose result is empty whenever their input is (so their input's root keys are theirs).
_PASS_THROUGH = frozenset({"where", "first", "last", "single", "ofType", "as", "resolve", "extension"})


def _type_arg(node: Node) -> str:
    """The type name given as a function argument: `Quantity` or a qualified `FHIR.Quantity`."""
    if node[0] != "member":
        raise CompileError("a type name is expected")
    return node[2] if node[1] is None else f"{_type_arg(node[1])}.{node[2]}"


def _identity(items: Items, root: dict) -> Items:
    return items


def _nothing(items: Items, root: dict) -> Items:
    return []


def _contained(root: dict, local_id: str) -> Iterator[dict]:
    for c in root.get("contained", ()):
        if isinstance(c, dict) and c.get("id") == local_id:
            yield c


def _compose(first: Fn, then: Callable[[Items], Items]) -> Fn:
    if first is _identity:
        return lambda items, root: then(items)
    return lambda items, root: then(first(items, root))


def _member_step(types: ElementTypes, name: str, only: str | None) -> Callable[[Items], Items]:
    """Child navigation: reads the JSON keys for `name` (all `name<Type>` keys of a choice element)."""
    cache: dict[str, tuple[tuple[str, str], ...]] = {}

    def step(items: Items) -> Items:
        out: Items = []
        for value, vtype in items:
            if type(value) is not dict:
                continue
            cands = cache.get(vtype)
            if cands is None:
                cands = cache[vtype] = types.candidates(vtype, name, only)
            if cands is SCAN:
                cands = types.scan(value, name, only)
            for key, ctype in cands:
                child = value.get(key)
                if child is None:
                    continue
                if type(child) is list:
                    for x in child:
                        if x is not None:
                            out.append((x, _concrete(x, ctype)))
                else:
                    out.append((child, _concrete(child, ctype)))
        return out

    return step


def _concrete(value: Any, ctype: str) -> str:
    """A `Resource`-typed element (contained, Bundle.entry.resource) takes its type from resourceType."""
    if ctype == "Resource" and type(value) is dict:
        return value.get("resourceType", ctype)
    return ctype


def _filter_type(types: ElementTypes, target: str) -> Fn:
    return lambda items, root: [(v, t) for v, t in items if types.is_subtype(t, target)]


def _is_type_fn(types: ElementTypes, source: Fn | None, target: str) -> Fn:
    def fn(items: Items, root: dict) -> Items:
        values = source(items, root) if source is not None else []
        if len(values) != 1:
            return []  # empty, or the error case of a collection: treated as unknown
        return _TRUE if types.is_subtype(values[0][1], target) else _FALSE

    return fn


def _union(left: Fn | None, right: Fn | None) -> Fn | None:
    if left is None:
        return right
    if right is None:
        return left
    return lambda items, root: left(items, root) + right(items, root)


def _equality(left: Fn, right: Fn, negate: bool) -> Fn:
    def fn(items: Items, root: dict) -> Items:
        result = _equal(left(items, root), right(items, root))
        if negate and result:
            return _FALSE if result[0][0] else _TRUE
        return result

    return fn


def _logic(op: str, left: Fn, right: Fn) -> Fn:
    def fn(items: Items, root: dict) -> Items:
        a = _truth(left(items, root))
        b = _truth(right(items, root))
        result = _three_valued(op, a, b)
        return [] if result is None else (_TRUE if result else _FALSE)

    return fn


def _three_valued(op: str, a: bool | None, b: bool | None) -> bool | None:
    if op == "and":
        if a is False or b is False:
            return False
        return None if a is None or b is None else True
    if op == "or":
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    if op == "implies":
        if a is False or b is True:
            return True
        return None if a is None or b is None else False
    return None if a is None or b is None else a != b  # xor


def _comparison(op: str, left: Fn, right: Fn) -> Fn:
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
        "<=": lambda a, b: a <= b,
        ">=": lambda a, b: a >= b,
    }
    cmp = compare[op]

    def fn(items: Items, root: dict) -> Items:
        a, b = left(items, root), right(items, root)
        if len(a) != 1 or len(b) != 1:
            return []
        try:
            return _TRUE if cmp(a[0][0], b[0][0]) else _FALSE
        except TypeError:
            return []

    return fn
