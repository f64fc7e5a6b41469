"""daemon.records: frozen records checked against their type hints (what replaced pydantic)."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Annotated, Any, Literal

import pytest

from daemon.records import (
    AfterValidator,
    BeforeValidator,
    Field,
    Record,
    Secret,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)


class Scalars(Record):
    number: int = 0
    ratio: float = 0.0
    flag: bool = False
    text: str = ""
    day: date = date(2026, 1, 1)
    choice: Literal["tls", "starttls", "none"] = "tls"


def errors(model: type[Record], data: Any) -> list[tuple[tuple[Any, ...], str, str]]:
    """(loc, type, msg) of every error validating `data`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return [(e["loc"], e["type"], e["msg"]) for e in caught.value.errors()]


def only_error(model: type[Record], data: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    [error] = caught.value.errors()
    return dict(error)


# ------------------------------------------------------------------ scalars, lax like pydantic

@pytest.mark.parametrize(("field", "given", "expected"), [
    ("number", "993", 993), ("number", " 7 ", 7), ("number", 2.0, 2), ("number", -3, -3),
    ("ratio", "0.5", 0.5), ("ratio", 1, 1.0), ("ratio", " 2 ", 2.0),
    ("flag", "yes", True), ("flag", "Off", False), ("flag", 1, True), ("flag", "0", False),
    ("flag", True, True),
    ("text", "x", "x"),
    ("day", "2026-12-25", date(2026, 12, 25)), ("day", date(2027, 1, 1), date(2027, 1, 1)),
    ("choice", "starttls", "starttls"),
])
def test_scalars_coerce_as_environment_strings_need(field: str, given: Any, expected: Any) -> None:
    value = getattr(Scalars.model_validate({field: given}), field)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("field", "given", "kind", "message"), [
    ("number", "high", "int_parsing",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("number", "1.5", "int_parsing",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("number", 1.5, "int_from_float",
     "Input should be a valid integer, got a number with a fractional part"),
    # A bool is an int to Python; `port: true` is still a mistake.
    ("number", True, "int_type", "Input should be a valid integer"),
    ("number", None, "int_type", "Input should be a valid integer"),
    ("number", "٣", "int_parsing",
     "Input should be a valid integer, unable to parse string as an integer"),
    ("ratio", "half", "float_parsing",
     "Input should be a valid number, unable to parse string as a number"),
    ("ratio", False, "float_type", "Input should be a valid number"),
    ("flag", "maybe", "bool_parsing", "Input should be a valid boolean, unable to interpret input"),
    ("flag", 2, "bool_parsing", "Input should be a valid boolean, unable to interpret input"),
    ("flag", [], "bool_type", "Input should be a valid boolean"),
    ("text", 5, "string_type", "Input should be a valid string"),
    ("day", "xmas", "date_type", "Input should be a valid date (YYYY-MM-DD)"),
    ("choice", "ssl", "literal_error", "Input should be 'tls', 'starttls' or 'none'"),
    ("choice", 5, "literal_error", "Input should be 'tls', 'starttls' or 'none'"),
])
def test_scalar_errors_name_field_type_and_input(field: str, given: Any, kind: str,
                                                 message: str) -> None:
    error = only_error(Scalars, {field: given})
    assert (error["loc"], error["type"], error["msg"], error["input"]) == (
        (field,), kind, message, given)


def test_literal_compares_types_too() -> None:
    class One(Record):
        value: Literal[1]

    assert One.model_validate({"value": 1}).value == 1
    assert only_error(One, {"value": True})["type"] == "literal_error"


# ------------------------------------------------------------------ containers, unions, nesting

class Inner(Record):
    n: Annotated[int, Field(ge=1)]
    label: str = "x"


class Outer(Record):
    items: dict[str, Inner] = {}
    tags: tuple[str, ...] = ()
    names: list[str] = []
    kinds: frozenset[str] = frozenset()
    inner: Inner | None = None
    teams: Literal["all"] | tuple[str, ...] = "all"


def test_containers_convert_yaml_lists() -> None:
    outer = Outer.model_validate({"tags": ["a", "b"], "names": ("c",), "kinds": ["d", "d"],
                                  "items": {"k": {"n": "2"}}})
    assert outer.tags == ("a", "b") and outer.names == ["c"] and outer.kinds == frozenset({"d"})
    assert outer.items == {"k": Inner(n=2)}


def test_nested_errors_carry_their_path() -> None:
    found = errors(Outer, {"items": {"a": {"n": 0}, "b": {"n": 1, "label": 5}},
                           "tags": ["ok", 7], "inner": {"n": "x"}})
    assert found == [
        (("items", "a", "n"), "greater_than_equal", "Input should be greater than or equal to 1"),
        (("items", "b", "label"), "string_type", "Input should be a valid string"),
        (("tags", 1), "string_type", "Input should be a valid string"),
        (("inner", "n"), "int_parsing",
         "Input should be a valid integer, unable to parse string as an integer"),
    ]


def test_container_type_errors() -> None:
    assert errors(Outer, {"tags": "ab", "items": [1], "inner": 5}) == [
        (("items",), "dict_type", "Input should be a valid dictionary"),
        (("tags",), "tuple_type", "Input should be a valid tuple"),
        (("inner",), "model_type", "Input should be a valid dictionary or instance of Inner"),
    ]


def test_bad_dict_keys_are_reported_at_the_key() -> None:
    class Keyed(Record):
        hours: dict[Literal["mon", "tue"], int]

    assert errors(Keyed, {"hours": {"monday": 1, "tue": "x"}}) == [
        (("hours", "monday"), "literal_error", "Input should be 'mon' or 'tue'"),
        (("hours", "tue"), "int_parsing",
         "Input should be a valid integer, unable to parse string as an integer"),
    ]


def test_unions_take_the_first_member_that_fits() -> None:
    assert Outer.model_validate({"inner": None}).inner is None
    assert Outer.model_validate({"teams": "all"}).teams == "all"
    assert Outer.model_validate({"teams": ["t1"]}).teams == ("t1",)


def test_union_errors_come_from_the_member_that_fit_the_shape() -> None:
    # A list fits the tuple member: its item error is the news, not "should be 'all'".
    assert errors(Outer, {"teams": ["t1", 5]}) == [
        (("teams", 1), "string_type", "Input should be a valid string")]
    # Nothing fits: every member says what it wanted; "or None" is never said.
    assert errors(Outer, {"teams": 5}) == [
        (("teams",), "literal_error", "Input should be 'all'"),
        (("teams",), "tuple_type", "Input should be a valid tuple")]
    assert errors(Outer, {"inner": "x"}) == [
        (("inner",), "model_type", "Input should be a valid dictionary or instance of Inner")]


# ------------------------------------------------------------------ keys: extra, missing, defaults

def test_unknown_and_missing_keys_are_all_reported_with_the_allowed_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        Inner.model_validate({"lable": "y", "colour": "red"})
    missing, *extra = caught.value.errors()
    assert (missing["loc"], missing["type"], missing["msg"]) == (("n",), "missing",
                                                                 "Field required")
    assert [(e["loc"], e["type"], e["input"]) for e in extra] == [
        (("lable",), "extra_forbidden", "y"), (("colour",), "extra_forbidden", "red")]
    assert extra[0]["ctx"] == {"allowed": ("n", "label")}


def test_defaults_and_factories_are_fresh_per_record() -> None:
    class Defaults(Record):
        mapping: dict[str, int] = {}
        made: list[int] = Field(default_factory=lambda: [1])

    first, second = Defaults(), Defaults()
    assert first.mapping == {} and first.made == [1]
    assert first.mapping is not second.mapping and first.made is not second.made


def test_not_a_mapping() -> None:
    assert errors(Inner, ["n", 1]) == [
        ((), "model_type", "Input should be a valid dictionary or instance of Inner")]


def test_an_instance_is_taken_as_it_is() -> None:
    inner = Inner(n=3)
    assert Inner.model_validate(inner) is inner
    assert Outer.model_validate({"inner": inner}).inner is inner


# ------------------------------------------------------------------ constraints and validators

class Limited(Record):
    port: Annotated[int, Field(ge=1, le=65535)] = 1
    share: Annotated[float, Field(gt=0, lt=1)] | None = None
    name: Annotated[str, Field(pattern=r"^[a-z]+$")] = "a"
    some: Annotated[tuple[str, ...], Field(min_length=1)] = ("x",)
    count: int = Field(default=10, ge=0)


@pytest.mark.parametrize(("data", "kind", "message"), [
    ({"port": 0}, "greater_than_equal", "Input should be greater than or equal to 1"),
    ({"port": 70000}, "less_than_equal", "Input should be less than or equal to 65535"),
    ({"share": 0}, "greater_than", "Input should be greater than 0"),
    ({"share": 1.5}, "less_than", "Input should be less than 1"),
    ({"name": "Bad name"}, "string_pattern_mismatch", "String should match pattern '^[a-z]+$'"),
    ({"some": []}, "too_short", "Tuple should have at least 1 item after validation, not 0"),
    ({"count": -1}, "greater_than_equal", "Input should be greater than or equal to 0"),
])
def test_constraints(data: dict[str, Any], kind: str, message: str) -> None:
    error = only_error(Limited, data)
    assert (error["type"], error["msg"]) == (kind, message)


def test_a_constraint_error_shows_the_input_as_written() -> None:
    """An environment variable is a string: the admin should see the string they set."""
    assert only_error(Limited, {"port": "0"})["input"] == "0"


def _split(value: object) -> object:
    return tuple(value.split(",")) if isinstance(value, str) else value


def _not_root(value: str) -> str:
    if value == "root":
        raise ValueError("root may not log in; use a named account")
    return value


def _from_context(value: str, info: ValidationInfo) -> str:
    return f"{(info.context or {}).get('prefix', '')}{value}"


class Validated(Record):
    users: Annotated[tuple[Annotated[str, AfterValidator(_not_root)], ...],
                     BeforeValidator(_split)] = ()
    path: Annotated[str, AfterValidator(_from_context)] = ""
    low: int = 0
    high: int = 0

    @field_validator("low", "high")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"{value} is odd; use an even number")
        return value

    @model_validator(mode="before")
    @classmethod
    def _fill_high(cls, data: object) -> object:
        if isinstance(data, dict) and "high" not in data and "low" in data:
            return {**data, "high": data["low"]}
        return data

    @model_validator(mode="after")
    def _ordered(self) -> Validated:
        if self.low > self.high:
            raise ValueError("low is above high")
        return self


def test_validators_run_in_order() -> None:
    record = Validated.model_validate({"users": "ann,bob", "path": "x.ics", "low": 2},
                                      context={"prefix": "/etc/"})
    assert record.users == ("ann", "bob") and record.path == "/etc/x.ics"
    assert (record.low, record.high) == (2, 2)


def test_validator_errors_keep_their_message_and_place() -> None:
    assert errors(Validated, {"users": "ann,root", "low": 3}) == [
        (("users", 1), "value_error", "root may not log in; use a named account"),
        (("low",), "value_error", "3 is odd; use an even number"),
        (("high",), "value_error", "3 is odd; use an even number"),
    ]
    assert errors(Validated, {"low": 4, "high": 2}) == [((), "value_error", "low is above high")]


def test_field_validator_may_be_a_plain_function() -> None:
    def strip(value: str) -> str:
        return value.strip()

    class Plain(Record):
        text: str = ""
        _strip = field_validator("text")(strip)

    assert Plain(text=" a ").text == "a"


def test_field_validator_for_an_unknown_field_is_a_programming_error() -> None:
    class Typo(Record):
        text: str = ""
        _check = field_validator("txt")(lambda value: value)

    with pytest.raises(TypeError, match="'txt'"):
        Typo()


# ------------------------------------------------------------------ frozen records

class Person(Record):
    name: str
    address: str = Field(default="", repr=False)
    password: Secret = Secret("")

    @cached_property
    def initial(self) -> str:
        return self.name[:1]


def test_records_are_frozen() -> None:
    person = Person(name="Ann")
    with pytest.raises(AttributeError, match="frozen"):
        person.name = "Bob"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del person.name
    assert person.name == "Ann"


def test_equality_and_hashing_by_value() -> None:
    ann = Person(name="Ann")
    assert ann == Person(name="Ann") and ann != Person(name="Bob")
    assert ann.initial == "A"  # a cached property is no part of the value
    assert ann == Person(name="Ann") and hash(ann) == hash(Person(name="Ann"))
    assert len({ann, Person(name="Ann"), Person(name="Bob")}) == 2
    assert Inner(n=1) != Limited()  # other type


def test_model_copy_changes_only_the_copy() -> None:
    ann = Person(name="Ann", address="ann@example.com")
    assert ann.initial == "A"
    bob = ann.model_copy(update={"name": "Bob"})
    assert (bob.name, bob.address, bob.initial) == ("Bob", "ann@example.com", "B")
    assert ann.name == "Ann" and ann.model_copy() == ann
    with pytest.raises(TypeError, match="no field nmae"):
        ann.model_copy(update={"nmae": "Bob"})


def test_model_fields_in_declaration_order_bases_first() -> None:
    class Base(Record):
        b: int = 0
        a: int = 0

    class Child(Base):
        c: int = 0

    assert list(Child.model_fields) == ["b", "a", "c"]
    assert list(Child().model_fields) == ["b", "a", "c"]
    assert Person.model_fields["name"].required and not Person.model_fields["address"].required


def test_repr_hides_secrets_and_repr_false_fields() -> None:
    person = Person(name="Ann", address="ann@example.com", password="hunter2")
    assert repr(person) == "Person(name='Ann', password=Secret('**********'))"
    assert person.password.get_secret_value() == "hunter2"
    assert str(person.password) == "**********" and repr(Secret("")) == "Secret('')"


def test_a_bad_secret_is_not_echoed() -> None:
    error = only_error(Person, {"name": "Ann", "password": 12345678})
    assert "input" not in error and "12345678" not in str(error)
    assert error["msg"] == "Input should be a valid string, not a number"


def test_validation_error_summary() -> None:
    with pytest.raises(ValidationError) as caught:
        Inner.model_validate({"n": 0, "x": 1})
    text = str(caught.value)
    assert text.startswith("2 validation errors for Inner\nn\n  Input should be greater")
    assert "[input=0]" in text and "x\n  Extra inputs are not permitted" in text


def test_hints_may_name_classes_defined_later() -> None:
    assert Early.model_validate({"late": {"value": "1"}}).late == Late(value=1)


class Early(Record):
    late: Late


class Late(Record):
    value: int
