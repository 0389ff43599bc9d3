"""Bad-input corpus of the training API (issue 13): settings out of bounds, empty masks,
model names that would escape the model folder or hide a bundled model."""
import dataclasses
import math

import numpy as np
import pytest

from napari_wbcseg.training.engine.loop import TrainConfig, train_steps
from napari_wbcseg.training.engine.names import check_model_name
from napari_wbcseg.training.engine.presets import check_config


@pytest.mark.parametrize("kwargs", [
    {"crop": 100000}, {"crop": 4}, {"patience": -1}, {"seed": -1}, {"seed": 2**40},
    {"lr": math.nan}, {"lr": math.inf}, {"lr": 100.0}, {"lr": 0.0}, {"epochs": 0},
    {"epochs": -3}, {"batch_size": 0}, {"batch_size": 10**6}, {"steps_per_epoch": -1},
    {"epochs": 2.5}, {"weight_decay": math.nan}, {"momentum": 2.0}, {"threads": 0},
    {"mosaic_fraction": math.nan}, {"scale_jitter": math.inf}, {"class_weight": -1.0},
    {"freeze_encoder_fraction": 1.5},
])
def test_out_of_bounds_settings_raise(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        check_config(TrainConfig(**kwargs))


def test_default_settings_pass():
    check_config(TrainConfig())
    check_config(TrainConfig(steps_per_epoch=0, patience=0, seed=2**32 - 1, crop=2048))


def _empty_samples():
    from napari_wbcseg.training.data.datasets import synthetic_samples

    return [dataclasses.replace(s, semantic=np.zeros_like(s.semantic),
                                cell_class=np.zeros_like(s.cell_class))
            for s in synthetic_samples(2)]


def test_training_on_empty_masks_is_refused():
    gen = train_steps(_empty_samples(), [], TrainConfig(epochs=1, steps_per_epoch=1))
    with pytest.raises(ValueError, match="no labelled cell"):
        next(gen)


def test_ignored_pixels_are_no_labels():
    from napari_wbcseg.training.engine.names import has_labelled_cell

    samples = _empty_samples()
    assert not has_labelled_cell(samples)
    ignored = dataclasses.replace(samples[0], semantic=np.full_like(samples[0].semantic, 255))
    assert not has_labelled_cell([ignored])
    one = samples[0].semantic.copy()
    one[3, 3] = 2
    assert has_labelled_cell([dataclasses.replace(samples[0], semantic=one)])


@pytest.mark.parametrize("name", ["../escaped", "a/b", "a\\b", ".hidden", "x\x00y", "bad\nname",
                                  "", "..", "x" * 101, "wcsegnet-compact", "WBC-NET-COMPACT"])
def test_bad_model_names_raise(name):
    with pytest.raises(ValueError, match="model name"):
        check_model_name(name)


@pytest.mark.parametrize("name", ["my-model", "wcsegnet-compact-v2", "run_3.1+ft"])
def test_good_model_names_pass(name):
    assert check_model_name(name) == name
