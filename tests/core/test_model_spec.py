"""Model specs: files, packages, factories, and every way they go wrong, with clear messages."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import paramedit
from paramedit.core.errors import ModelSpecError
from paramedit.core.model.spec import build_model, parse_model_kwargs


def test_class_factory_and_kwargs(models_py):
    assert isinstance(build_model(f"{models_py}:Net"), nn.Module)
    m = build_model(f"{models_py}:make_net", {"width": 7})
    assert m.fc.out_features == 7
    assert parse_model_kwargs('{"width": 7}') == {"width": 7}


def test_package_module_spec():
    m = build_model("torch.nn:Linear", {"in_features": 2, "out_features": 3})
    assert isinstance(m, nn.Linear)


def test_module_instance_passes_through():
    lin = nn.Linear(2, 2)
    assert paramedit.open_session(lin).model is lin


@pytest.mark.parametrize(
    ("spec", "kwargs", "match"),
    [
        ("{d}/missing.py:Net", None, "does not exist"),
        ("{d}/models.py:Nope", None, "has no attribute 'Nope'"),
        ("{d}/models.py:not_a_module", None, "returned a int, not a torch.nn.Module"),
        ("{d}/models.py:raises", None, "constructor exploded"),
        ("{d}/models.py:Net", {"bogus": 1}, "bogus"),
        ("no_such_package_xyz:Net", None, "no module named"),
        ("just-a-name", None, "not of the form"),
    ],
)
def test_bad_specs_name_the_spec(models_py, spec, kwargs, match):
    spec = spec.format(d=models_py.parent)
    with pytest.raises(ModelSpecError, match=match) as info:
        build_model(spec, kwargs)
    assert spec in info.value.message


def test_import_error_keeps_traceback_in_details(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\nraise ValueError('broken at import')\n")
    with pytest.raises(ModelSpecError, match="broken at import") as info:
        build_model(f"{bad}:Net")
    assert "Traceback" in info.value.details


def test_bad_model_kwargs_json():
    with pytest.raises(ModelSpecError, match="not valid JSON"):
        parse_model_kwargs("{width: 8}")
    with pytest.raises(ModelSpecError, match="JSON object"):
        parse_model_kwargs("[1]")


def test_example_inputs_hook_in_model_file(models_py):
    s = paramedit.open_session(f"{models_py}:Net")
    assert s.example_inputs is not None and s.example_inputs[0].shape == (2, 5)
    assert s.run_backward().ok


def test_example_input_array_attribute():
    model = nn.Linear(3, 2)
    model.example_input_array = torch.randn(4, 3)
    s = paramedit.open_session(model)
    assert s.run_backward().ok
