"""ConfigError.from_validation: the one line every config parser reports."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from pipeline.errors import ConfigError


class _Inner(BaseModel):
    rate: float


class _Outer(BaseModel):
    inner: _Inner


def test_first_problem_names_the_file_and_the_dotted_path() -> None:
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate({"inner": {"rate": "fast"}})
    error = ConfigError.from_validation("params.yaml", caught.value)
    assert str(error).startswith("params.yaml: inner.rate: ")
    assert "\n" not in str(error) and error.exit_code == 3
