"""The architecture registry: names, info, helpful errors, no torch on import."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from napari_wbcseg.models import (UnknownArchitectureError, architecture_info, create_model,
                                  list_architectures, register_architecture)


def test_registered_names():
    names = list_architectures()
    assert "wcsegnet" in names and "wcsegnet-compact" in names
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("name", list_architectures())
def test_architecture_info(name):
    info = architecture_info(name)
    assert info["name"] == name
    for key in ("family", "paper", "description"):
        assert isinstance(info[key], str) and info[key]
    json.dumps(info["default_config"])
    info["default_config"]["num_classes"] = -1  # a copy: the registry is unchanged
    assert architecture_info(name)["default_config"]["num_classes"] != -1


def test_unknown_name_lists_valid_ones():
    for call in (lambda: create_model("unet-9000"), lambda: architecture_info("unet-9000")):
        with pytest.raises(KeyError) as info:
            call()
        msg = str(info.value)
        assert "unet-9000" in msg
        assert all(name in msg for name in list_architectures())
        assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="wcsegnet-compact"):
        create_model("nope")
    assert issubclass(UnknownArchitectureError, KeyError)


def test_name_is_normalised():
    assert architecture_info("WCSegNet_Compact")["name"] == "wcsegnet-compact"


def test_unknown_config_key_lists_valid_ones():
    with pytest.raises(ValueError, match="filters"):
        create_model("wcsegnet-compact", filterz=[1, 2])


def test_config_overrides():
    m = create_model("wcsegnet-compact", num_classes=7, filters=[4, 8, 16], class_head_level=1)
    assert m.num_classes == 7 and m.config["filters"] == [4, 8, 16]
    assert m.size_multiple == 4 and m.architecture == "wcsegnet-compact"
    with pytest.raises(ValueError, match="norm"):
        create_model("wcsegnet-compact", norm="group")


def test_register_rejects_duplicates_and_bad_targets():
    with pytest.raises(ValueError, match="already registered"):
        register_architecture("wcsegnet", "x:Y", family="f")
    with pytest.raises(ValueError, match="module:Class"):
        register_architecture("new-net", "no_colon", family="f")
    assert "new-net" not in list_architectures()


def test_import_does_not_import_torch():
    code = ("import sys, napari_wbcseg.models as m; m.list_architectures(); "
            "m.architecture_info('wcsegnet'); "
            "assert 'torch' not in sys.modules, sorted(k for k in sys.modules if 'torch' in k)")
    subprocess.run([sys.executable, "-c", code], check=True)
