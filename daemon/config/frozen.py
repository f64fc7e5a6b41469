"""The base of every config model (settings, directory, workflows): a frozen pydantic model
that refuses unknown keys, and the field types where pydantic's lax coercion is narrowed.

Lax coercion stays on because TIERDESK_* overrides are always strings: "993" is a fine port,
"yes" a fine boolean. Three things it would take that we must not: a YAML `true` as the number 1
(`port: true` is a mistake, not port 1), a number as a date (seconds since 1970), and a secret
echoed back in an error message.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr
from pydantic_core import PydanticCustomError

# daemon/config/validation.py never shows the input of an error of this type.
SECRET_TYPE = "secret_type"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def _day(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    # pydantic's own message ("valid date or datetime, input is too short") shows no format.
    raise PydanticCustomError("date_type", "Input should be a valid date (YYYY-MM-DD)")


def _secret_text(value: object) -> object:
    if isinstance(value, str | SecretStr):
        return value
    # Say what kind of value it is, never the value (`password: 123456` is a number to YAML;
    # quoting it makes it a string).
    kind = "null" if value is None else "a boolean" if isinstance(value, bool) \
        else "a number" if isinstance(value, int | float) else f"a {type(value).__name__}"
    raise PydanticCustomError(SECRET_TYPE, "Input should be a valid string, not {kind}",
                              {"kind": kind})


# Every integer field is an Int (tests/config/test_frozen.py checks the models).
Int = Annotated[int, BeforeValidator(_no_bool)]
Day = Annotated[date, BeforeValidator(_day)]
Secret = Annotated[SecretStr, BeforeValidator(_secret_text)]
