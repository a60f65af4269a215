"""edgecl.errors: every error is an EdgeclError and the builtin a caller would catch, and
names the CLI exit code of its family."""

from __future__ import annotations

import pytest

import edgecl.errors as E

FAMILIES = [
    # (class, builtins it must also be, CLI exit code)
    (E.BundleError, (ValueError,), 3),
    (E.BudgetError, (), 4),
    (E.ExportError, (ValueError,), 5),
    (E.DataFormatError, (ValueError,), 2),
    (E.CheckpointError, (ValueError,), 1),
    (E.TargetExistsError, (FileExistsError, OSError), 2),
    (E.UnknownClassError, (KeyError, LookupError), 2),
    (E.ClassExistsError, (ValueError,), 2),
    (E.InvalidValueError, (ValueError,), 2),
    (E.InvalidTypeError, (TypeError,), 2),
]


@pytest.mark.parametrize(
    ("cls", "builtins", "code"), FAMILIES, ids=lambda v: getattr(v, "__name__", str(v))
)
def test_each_family_is_an_edgecl_error_and_its_builtin(cls, builtins, code):
    assert issubclass(cls, E.EdgeclError)
    for b in builtins:
        assert issubclass(cls, b)
    assert cls.exit_code == code
    assert cls.__name__ in E.__all__


def test_every_public_error_is_in_the_table():
    named = {c.__name__ for c, _, _ in FAMILIES} | {"EdgeclError"}
    assert set(E.__all__) == named


def test_unknown_class_error_reads_as_its_message():
    err = E.UnknownClassError("expected a learned class, got 'x' (classes: ['a'])")
    assert str(err) == "expected a learned class, got 'x' (classes: ['a'])"  # no KeyError quotes
    with pytest.raises(KeyError):
        raise err
