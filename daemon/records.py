"""Frozen records checked against their type hints: the small part of pydantic Tierdesk used.

A Record subclass declares its fields as annotated class attributes, with defaults or
`Field(...)`. `Model.model_validate(data)` checks a mapping read from YAML or TIERDESK_*
variables against the hints and builds a frozen instance. Coercion is lax the way pydantic's was
(the string "993" is a fine port, "yes" a fine boolean), because environment overrides are
always strings. Every problem is collected, not only the first, each with its location inside
`data`, so daemon/validation.py can point an admin at file and line for all of them at once.

Supported hints: str, int, float, bool, date, Secret, Literal, unions and `X | None`,
tuple/list/frozenset/dict, nested records, other classes (checked with isinstance), and
Annotated with Field(ge/gt/le/lt/pattern/min_length), BeforeValidator and AfterValidator.
Hints are resolved and compiled into small check functions once per class, on first use.
Only stdlib is imported: the domain modules use this (tests/test_architecture.py).
"""

from __future__ import annotations

import inspect
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, ClassVar, Literal, NotRequired, Self, TypedDict

__all__ = [
    "AfterValidator", "BeforeValidator", "ErrorDict", "Field", "FieldInfo", "Record", "Secret",
    "ValidationError", "ValidationInfo", "field_validator", "model_validator",
]


# ------------------------------------------------------------------ errors

class ErrorDict(TypedDict):
    """One problem, shaped like pydantic's error entries (daemon/validation.py reads them)."""

    type: str  # e.g. missing, extra_forbidden, value_error, int_parsing
    loc: tuple[Any, ...]  # keys and list indexes from the validated data down to the value
    msg: str
    input: NotRequired[Any]  # left out for secrets, so messages never echo one
    ctx: NotRequired[dict[str, Any]]


class ValidationError(ValueError):
    """Every problem found in one validation; `errors()` lists them in field order."""

    def __init__(self, errors: list[ErrorDict], title: str = "value") -> None:
        super().__init__(errors)
        self._errors = errors
        self.title = title

    def errors(self) -> list[ErrorDict]:
        return list(self._errors)

    def __str__(self) -> str:
        count = len(self._errors)
        lines = [f"{count} validation error{'s' if count != 1 else ''} for {self.title}"]
        for error in self._errors:
            where = ".".join(str(part) for part in error["loc"]) or "(whole value)"
            shown = f" [input={error['input']!r}]" if "input" in error else ""
            lines.append(f"{where}\n  {error['msg']}{shown} [type={error['type']}]")
        return "\n".join(lines)


def _fail(kind: str, msg: str, value: Any) -> ValidationError:
    return ValidationError([{"type": kind, "loc": (), "msg": msg, "input": value}])


def _nested(exc: ValidationError, key: Any) -> list[ErrorDict]:
    """`exc`'s errors, located one level down at `key`."""
    return [typing.cast(ErrorDict, {**error, "loc": (key, *error["loc"])})
            for error in exc._errors]


# ------------------------------------------------------------------ declaring fields

_MISSING: Any = object()


class Secret:
    """A string that never shows in repr, str or logs; read it with get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({str(self)!r})"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class BeforeValidator:
    """In Annotated: `func(value)` or `func(value, info)` runs before the type check and may
    turn the raw value into one the type accepts; a ValueError it raises is reported."""

    func: Callable[..., Any]


@dataclass(frozen=True)
class AfterValidator:
    """In Annotated: `func(value)` or `func(value, info)` runs on the checked value."""

    func: Callable[..., Any]


@dataclass(frozen=True)
class ValidationInfo:
    """What a validator taking two arguments gets: the `context` given to model_validate."""

    context: Mapping[str, Any] | None = None


@dataclass(eq=False)  # hashed by identity: it sits in Annotated hints, the cache keys below
class _FieldSpec:
    """What Field() returns: a default and constraints."""

    default: Any
    default_factory: Callable[[], Any] | None
    repr: bool
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    pattern: str | None
    min_length: int | None

    def constrains(self) -> bool:
        return any(getattr(self, name) is not None for name, *_ in _BOUNDS) \
            or self.pattern is not None or self.min_length is not None


def Field(default: Any = _MISSING, *, default_factory: Callable[[], Any] | None = None,  # noqa: N802
          repr: bool = True, ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, pattern: str | None = None,
          min_length: int | None = None) -> Any:
    """A field's default and constraints, as a class attribute or inside Annotated. Typed Any
    so that `port: int = Field(default=1, ge=1)` passes a type checker."""
    return _FieldSpec(default, default_factory, repr, ge, gt, le, lt, pattern, min_length)


@dataclass(frozen=True)
class _FieldValidator:
    names: tuple[str, ...]
    func: Any  # a function of the value, or a classmethod


@dataclass(frozen=True)
class _ModelValidator:
    mode: Literal["before", "after"]
    func: Any


def field_validator(*names: str) -> Callable[[Any], Any]:
    """Decorate `f(cls, value)` (a classmethod) or `f(value)`: runs on each named field after
    its type check; return the value to keep, raise ValueError to report a problem."""
    return lambda func: _FieldValidator(names, func)


def model_validator(*, mode: Literal["before", "after"]) -> Callable[[Any], Any]:
    """mode="before": a classmethod `f(cls, data) -> data` on the raw mapping; mode="after":
    `f(self) -> self` on the built record, for rules across fields."""
    return lambda func: _ModelValidator(mode, func)


@dataclass(frozen=True)
class FieldInfo:
    name: str
    annotation: Any  # the resolved type hint, Annotated metadata included
    default: Any = _MISSING
    default_factory: Callable[[], Any] | None = None
    repr: bool = True

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.default_factory is None

    def make_default(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        # A fresh copy of a mutable default, so no two records share one.
        return self.default.copy() if isinstance(self.default, dict | list | set) \
            else self.default


# ------------------------------------------------------------------ compiling type hints

Check = Callable[[Any, ValidationInfo], Any]  # returns the checked value or raises
_CHECKS: dict[Any, Check] = {}


def _check_for(tp: Any) -> Check:
    """The check for a type hint, built once: many fields share hints such as Name."""
    try:
        return _CHECKS[tp]
    except KeyError:
        check = _CHECKS[tp] = _build(tp)
        return check
    except TypeError:  # an unhashable hint
        return _build(tp)


def _build(tp: Any) -> Check:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _annotated(args[0], args[1:])
    if origin is Literal:
        return _literal(args)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args)
    if origin in (tuple, list, frozenset, set) and (origin is not tuple or args[1:] == (...,)):
        return _sequence(origin, _check_for(args[0]))
    if origin is dict or origin is Mapping:
        return _mapping(_check_for(args[0]), _check_for(args[1]))
    if tp is Any or tp is object:
        return lambda value, info: value
    if tp is None or tp is type(None):
        return _none
    if isinstance(tp, type):
        if issubclass(tp, Record):
            return lambda value, info: _validate_record(tp, value, info)
        return _SCALARS.get(tp) or _instance_of(tp)
    raise TypeError(f"daemon.records cannot check values of type {tp!r}")


def _none(value: Any, info: ValidationInfo) -> None:
    if value is not None:
        raise _fail("none_required", "Input should be None", value)


def _str(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, str):
        return value
    raise _fail("string_type", "Input should be a valid string", value)


def _int(value: Any, info: ValidationInfo) -> int:
    if type(value) is int:
        return value
    # A bool is an int to Python, but `port: true` is a mistake, not port 1.
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise _fail("int_from_float",
                    "Input should be a valid integer, got a number with a fractional part", value)
    if isinstance(value, str):
        text = value.strip()
        if text.isascii():  # int() would take other scripts' digits
            try:
                return int(text)
            except ValueError:
                pass
        raise _fail("int_parsing",
                    "Input should be a valid integer, unable to parse string as an integer", value)
    raise _fail("int_type", "Input should be a valid integer", value)


def _float(value: Any, info: ValidationInfo) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _fail("float_parsing",
                        "Input should be a valid number, unable to parse string as a number",
                        value) from None
    raise _fail("float_type", "Input should be a valid number", value)


_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


def _bool(value: Any, info: ValidationInfo) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str | int | float):
        word = str(value).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise _fail("bool_parsing", "Input should be a valid boolean, unable to interpret input",
                    value)
    raise _fail("bool_type", "Input should be a valid boolean", value)


def _date(value: Any, info: ValidationInfo) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail("date_type", "Input should be a valid date (YYYY-MM-DD)", value)


def _secret(value: Any, info: ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    # No "input": the message must not echo what may be a secret, only what kind of value it is
    # (`password: 123456` is a number to YAML; quoting it makes it a string).
    kind = "null" if value is None else "a boolean" if isinstance(value, bool) \
        else "a number" if isinstance(value, int | float) else f"a {type(value).__name__}"
    raise ValidationError([{"type": "string_type", "loc": (),
                            "msg": f"Input should be a valid string, not {kind}"}])


_SCALARS: dict[type, Check] = {
    str: _str, int: _int, float: _float, bool: _bool, date: _date, Secret: _secret,
}


def _instance_of(cls: type) -> Check:
    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, cls):
            return value
        raise _fail("is_instance_of", f"Input should be an instance of {cls.__name__}", value)
    return check


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _literal(choices: tuple[Any, ...]) -> Check:
    expected = _either([repr(c) for c in choices])

    def check(value: Any, info: ValidationInfo) -> Any:
        for choice in choices:
            # The type too: `True == 1`, but Literal[1] should not take True.
            if type(value) is type(choice) and value == choice:
                return choice
        raise _fail("literal_error", f"Input should be {expected}", value)
    return check


def _union(members: tuple[Any, ...]) -> Check:
    """First member that accepts the value wins. None is checked first and never reported:
    "or nothing" says nothing about what is wrong with a value that is there."""
    nullable = type(None) in members
    checks = [_check_for(m) for m in members if m is not type(None)]

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None and nullable:
            return None
        failures: list[list[ErrorDict]] = []
        for member in checks:
            try:
                return member(value, info)
            except ValidationError as exc:
                failures.append(exc._errors)
        # A member that got inside the value (its errors lie deeper) accepted its shape: its
        # errors say what is wrong; "should be 'all'" for a list would only distract.
        inside = [errors for errors in failures if any(e["loc"] for e in errors)]
        raise ValidationError([e for errors in inside or failures for e in errors])
    return check


_KIND = {tuple: "tuple", list: "list", frozenset: "frozenset", set: "set"}


def _sequence(origin: type, item: Check) -> Check:
    """tuple[X, ...], list[X], frozenset[X]: from a YAML list (or any of these)."""
    kind = _KIND[origin]

    def check(value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise _fail(f"{kind}_type", f"Input should be a valid {kind}", value)
        items, errors = [], []
        for i, element in enumerate(value):
            try:
                items.append(item(element, info))
            except ValidationError as exc:
                errors += _nested(exc, i)
        if errors:
            raise ValidationError(errors)
        return origin(items)
    return check


def _mapping(key_check: Check, value_check: Check) -> Check:
    def check(value: Any, info: ValidationInfo) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _fail("dict_type", "Input should be a valid dictionary", value)
        result, errors = {}, []
        for key, element in value.items():
            try:
                checked_key = key_check(key, info)
            except ValidationError as exc:
                errors += _nested(exc, key)
                checked_key = _MISSING
            try:
                checked = value_check(element, info)
            except ValidationError as exc:
                errors += _nested(exc, key)
                continue
            if checked_key is not _MISSING:
                result[checked_key] = checked
        if errors:
            raise ValidationError(errors)
        return result
    return check


def _caller(func: Callable[..., Any]) -> Callable[[Any, ValidationInfo], Any]:
    """Call `func(value)` or `func(value, info)`, whichever it takes (decided once)."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature takes the value only
        return lambda value, info: func(value)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return func if len(positional) >= 2 else (lambda value, info: func(value))


def _run(func: Callable[[Any, ValidationInfo], Any], value: Any, info: ValidationInfo) -> Any:
    """A validator's result; the ValueError it raises is reported with its own message."""
    try:
        return func(value, info)
    except ValidationError:
        raise
    except ValueError as exc:
        raise _fail("value_error", str(exc), value) from None


def _annotated(base: Any, metadata: tuple[Any, ...]) -> Check:
    befores = [_caller(m.func) for m in reversed(metadata) if isinstance(m, BeforeValidator)]
    afters = [_caller(m.func) for m in metadata if isinstance(m, AfterValidator)]
    limits = [limit for m in metadata if isinstance(m, _FieldSpec) for limit in _limits(m)]
    core = _check_for(base)
    if not (befores or afters or limits):
        return core

    def check(value: Any, info: ValidationInfo) -> Any:
        raw = value
        for before in befores:
            value = _run(before, value, info)
        value = core(value, info)
        for limit in limits:
            limit(value, raw)
        for after in afters:
            value = _run(after, value, info)
        return value
    return check


Limit = Callable[[Any, Any], None]  # (checked value, raw input) -> None or raise


_BOUNDS = (("ge", operator.ge, "greater_than_equal", "greater than or equal to"),
           ("gt", operator.gt, "greater_than", "greater than"),
           ("le", operator.le, "less_than_equal", "less than or equal to"),
           ("lt", operator.lt, "less_than", "less than"))


def _limits(spec: _FieldSpec) -> list[Limit]:
    """Constraint checks; a failure shows the input as written (e.g. the variable's string)."""
    found = [_bound(bound, holds, kind, words) for name, holds, kind, words in _BOUNDS
             if (bound := getattr(spec, name)) is not None]
    if spec.pattern is not None:
        found.append(_pattern(spec.pattern))
    if spec.min_length is not None:
        found.append(_min_length(spec.min_length))
    return found


def _bound(bound: float, holds: Callable[[Any, float], bool], kind: str, words: str) -> Limit:
    def limit(value: Any, raw: Any) -> None:
        if not holds(value, bound):
            raise _fail(kind, f"Input should be {words} {bound}", raw)
    return limit


def _pattern(pattern: str) -> Limit:
    regex = re.compile(pattern)

    def limit(value: Any, raw: Any) -> None:
        if not regex.search(value):
            raise _fail("string_pattern_mismatch", f"String should match pattern '{pattern}'",
                        raw)
    return limit


_SIZED = {tuple: "Tuple", list: "List", dict: "Dictionary", frozenset: "Set", set: "Set"}


def _min_length(least: int) -> Limit:
    def limit(value: Any, raw: Any) -> None:
        if len(value) >= least:
            return
        if isinstance(value, str):
            raise _fail("string_too_short", f"String should have at least {least} "
                        f"character{'s' if least != 1 else ''}", raw)
        kind = _SIZED.get(type(value), "Value")
        raise _fail("too_short", f"{kind} should have at least {least} "
                    f"item{'s' if least != 1 else ''} after validation, not {len(value)}", raw)
    return limit


# ------------------------------------------------------------------ records

@dataclass(frozen=True)
class _Spec:
    """A record class's fields and validators, resolved from its hints once."""

    fields: types.MappingProxyType[str, FieldInfo]
    checks: dict[str, Check]
    before: list[Callable[[Any, ValidationInfo], Any]]
    after: list[Callable[[Any], Any]]
    allowed: tuple[str, ...]


def _spec(cls: type[Record]) -> _Spec:
    # Looked up in the class's own __dict__: a subclass must not reuse its base's spec.
    spec = cls.__dict__.get("__record_spec__")
    if spec is None:
        spec = _build_spec(cls)
        cls.__record_spec__ = spec
    return spec


def _build_spec(cls: type[Record]) -> _Spec:
    # Resolved on first use, not at class creation, so hints may name classes defined later
    # in the module (hints are looked up in the module's globals, as pydantic did).
    hints = typing.get_type_hints(cls, include_extras=True)  # bases' fields first
    fields: dict[str, FieldInfo] = {}
    for name, hint in hints.items():
        if name.startswith("_") or hint is ClassVar or typing.get_origin(hint) is ClassVar:
            continue
        declared = getattr(cls, name, _MISSING)
        if isinstance(declared, _FieldSpec):
            if declared.constrains():
                hint = typing.Annotated[hint, declared]
            fields[name] = FieldInfo(name, hint, declared.default, declared.default_factory,
                                     declared.repr)
        else:
            fields[name] = FieldInfo(name, hint, declared)
    checks = {name: _check_for(info.annotation) for name, info in fields.items()}
    before: list[Callable[[Any, ValidationInfo], Any]] = []
    after: list[Callable[[Any], Any]] = []
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            if isinstance(attr, _FieldValidator):
                _add_field_validator(cls, attr, checks)
            elif isinstance(attr, _ModelValidator) and attr.mode == "before":
                before.append(_caller(_bind(cls, attr.func)))
            elif isinstance(attr, _ModelValidator):
                after.append(attr.func)
    return _Spec(types.MappingProxyType(fields), checks, before, after, tuple(fields))


def _bind(cls: type, func: Any) -> Callable[..., Any]:
    """A classmethod bound to `cls`, a staticmethod or plain function as it is."""
    return func.__get__(None, cls) if isinstance(func, classmethod | staticmethod) else func


def _add_field_validator(cls: type, marker: _FieldValidator, checks: dict[str, Check]) -> None:
    func = _caller(_bind(cls, marker.func))
    for name in marker.names:
        if name not in checks:
            raise TypeError(f"{cls.__name__}: field_validator names unknown field {name!r}")
        checks[name] = _then(checks[name], func)


def _then(check: Check, validator: Callable[[Any, ValidationInfo], Any]) -> Check:
    return lambda value, info: _run(validator, check(value, info), info)


def _validate_record(cls: type[Record], data: Any, info: ValidationInfo) -> Any:
    if isinstance(data, cls):
        return data
    record = cls.__new__(cls)
    _fill(record, data, info)
    return record


def _fill(record: Record, data: Any, info: ValidationInfo) -> None:
    """Check `data` against the record's fields and store the values in `record`."""
    cls = type(record)
    spec = _spec(cls)
    for before in spec.before:
        data = _run(before, data, info)
    if not isinstance(data, Mapping):
        raise _fail("model_type", f"Input should be a valid dictionary or instance of "
                    f"{cls.__name__}", data)
    values: dict[str, Any] = {}
    errors: list[ErrorDict] = []
    for name, field in spec.fields.items():
        if name in data:
            try:
                values[name] = spec.checks[name](data[name], info)
            except ValidationError as exc:
                errors += _nested(exc, name)
        elif field.required:
            errors.append({"type": "missing", "loc": (name,), "msg": "Field required",
                           "input": data})
        else:
            values[name] = field.make_default()
    for key in data:
        if key not in spec.fields:
            errors.append({"type": "extra_forbidden", "loc": (key,), "input": data[key],
                           "msg": "Extra inputs are not permitted",
                           "ctx": {"allowed": spec.allowed}})
    if errors:
        raise ValidationError(errors, cls.__name__)
    record.__dict__.update(values)
    for after in spec.after:
        try:
            after(record)
        except ValidationError:
            raise
        except ValueError as exc:
            raise _fail("value_error", str(exc), data) from None


def _values(record: Record) -> tuple[Any, ...]:
    """The field values in order: what equality and hashing compare (not cached properties)."""
    return tuple(record.__dict__[name] for name in _spec(type(record)).fields)


class _ModelFields:
    """`Model.model_fields` and `record.model_fields`: field name -> FieldInfo, in order."""

    def __get__(self, record: Any, owner: type[Record]) -> Mapping[str, FieldInfo]:
        return _spec(owner).fields


class Record:
    """A frozen record: fields from type hints, unknown keys refused, compared by value."""

    model_fields: ClassVar[Mapping[str, FieldInfo]] = _ModelFields()  # type: ignore[assignment]
    # Set on each subclass by _spec() on first use.
    __record_spec__: ClassVar[_Spec | None] = None

    def __init__(self, **data: Any) -> None:
        try:
            _fill(self, data, ValidationInfo())
        except ValidationError as exc:
            exc.title = type(self).__name__
            raise

    @classmethod
    def model_validate(cls, data: Any, *, context: Mapping[str, Any] | None = None) -> Self:
        """A record built from `data` (a mapping, or an instance returned as it is); raises
        ValidationError listing every problem. `context` reaches validators as info.context."""
        try:
            return _validate_record(cls, data, ValidationInfo(context))
        except ValidationError as exc:
            exc.title = cls.__name__
            raise

    def model_copy(self, *, update: Mapping[str, Any] | None = None) -> Self:
        """A copy with some fields replaced; like pydantic, `update` is not validated."""
        fields = _spec(type(self)).fields
        unknown = set(update or ()) - set(fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {', '.join(sorted(unknown))}")
        copy = type(self).__new__(type(self))
        # Fields only: values cached on the instance (cached_property) belong to the original.
        copy.__dict__.update({name: self.__dict__[name] for name in fields}, **(update or {}))
        return copy

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return _values(self) == _values(typing.cast(Record, other))

    def __hash__(self) -> int:
        return hash((type(self), _values(self)))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self.__dict__[name]!r}"
                          for name, field in _spec(type(self)).fields.items() if field.repr)
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen; make a changed copy with "
                             f"model_copy(update={{{name!r}: ...}})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")
