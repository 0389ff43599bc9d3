"""``napari-wbcseg train``: a user model that the rest of the product sees at once."""
from __future__ import annotations

import json
import shutil

import pytest

from napari_wbcseg.cli import main


@pytest.fixture
def small_data(synthetic_data):
    """Eight small synthetic smears in a plain image + mask folder named ``data``."""
    return synthetic_data


DATASET = "folder:data"  # the source name of that folder


def test_train_writes_a_user_model_listed_at_once(tmp_path, small_data, monkeypatch, capsys):
    from napari_wbcseg.training.engine import loop
    from napari_wbcseg.training.data.datasets import split_by_group
    from napari_wbcseg.training.data.sources import load_data_folders

    seen = []
    real = loop.train_steps
    monkeypatch.setattr(loop, "train_steps", lambda train, val, *a, **kw: (
        seen.append({s.name for s in train + val}) or real(train, val, *a, **kw)))
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    rc = main(["train", "--model", "wcsegnet-compact", "--data", str(small_data),
               "--epochs", "1", "--steps", "2", "--batch", "2", "--crop", "64",
               "--synthetic", "0", "--name", "my-net", "--out", str(tmp_path / "export"),
               "--precision", "fp32"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "saved model 'my-net'" in out and "validation (selection-free): {" in out
    card = json.loads((tmp_path / "user-models" / "my-net.json").read_text())
    assert card["architecture"] == "wcsegnet-compact"
    assert card["training"]["settings"]["precision"] == "fp32"
    data = card["training"]["data"]
    counts = data["samples"][DATASET]
    assert counts["train"] > 0 and counts["selection"] > 0 and counts["val"] > 0
    assert sum(counts.values()) == 8
    assert data["split_spec"] == {"seed": 0, "val_fraction": 0.2, "inner_fraction": 0.15,
                                  "data": ["data"]}
    # the best epoch was picked on the inner split; the validation split was scored once
    assert card["selection"]["selection_free"] is False
    assert card["selection"]["per_dataset"][DATASET]["n"] == counts["selection"]
    assert card["validation"]["selection_free"] is True
    assert card["validation"]["per_dataset"][DATASET]["n"] == counts["val"]
    assert "cell_dice" in card["validation"]["summary"]
    validation = {s.name for s in split_by_group(load_data_folders([small_data]), 0.2)[1]}
    assert len(seen) == 1 and len(seen[0]) == 8 - len(validation)
    assert not seen[0] & validation  # the loop (epoch selection) never sees validation
    assert (tmp_path / "export" / "my-net.safetensors").is_file()
    import napari_wbcseg

    assert "my-net" in napari_wbcseg.list_models()
    assert main(["models"]) == 0
    assert "my-net" in capsys.readouterr().out


def test_train_imagenet_offline_says_so_and_continues(tmp_path, small_data, monkeypatch, capsys):
    import napari_wbcseg.models.smp_unet as smp_unet
    from napari_wbcseg.models.pretrained import PretrainedUnavailableError

    def offline(url, timeout=5.0):
        raise PretrainedUnavailableError("ImageNet weights are not reachable (test); "
                                         "the encoder keeps its random initialisation")

    monkeypatch.setattr(smp_unet, "check_reachable", offline)
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    rc = main(["train", "--model", "unet-mobilenetv2", "--data", str(small_data),
               "--epochs", "1", "--steps", "1", "--batch", "2", "--crop", "64",
               "--synthetic", "0", "--name", "mnv2", "--init", "imagenet"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "random initialisation" in captured.out + captured.err
    assert (tmp_path / "user-models" / "mnv2.safetensors").is_file()


@pytest.mark.parametrize("args, message", [
    (["--model", "unet-9000", "--data", "."], "valid architectures"),
    (["--model", "wcsegnet-compact", "--data", "/no/such/folder"], "no such folder"),
    (["--model", "wcsegnet-compact", "--data", "{tmp}"], "no project.json, segmentation_WBC"),
])
def test_train_bad_input_is_one_line(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_evaluate_prints_tables_and_writes_csv(tmp_path, small_data, capsys):
    rc = main(["evaluate", "--data", str(small_data), "--split", "all",
               "--csv", str(tmp_path / "eval.csv")])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"{DATASET} (8 images)" in out
    assert "DICE" in out and "cytoplasm" in out and "confusion" in out
    assert (tmp_path / "eval.csv").read_text().startswith("dataset,region,metric,value")


def test_evaluate_uses_the_card_split_and_refuses_other_seeds(tmp_path, small_data,
                                                              monkeypatch, capsys):
    """A model trained with --seed 3 is scored on its seed-3 validation images only."""
    from napari_wbcseg.training.evaluation import report
    from napari_wbcseg.training.data.datasets import split_by_group
    from napari_wbcseg.training.data.sources import load_data_folders

    scored = []
    real = report.evaluate_datasets
    monkeypatch.setattr(report, "evaluate_datasets", lambda predict, samples, *a, **kw: (
        scored.append([s.name for s in samples]) or real(predict, samples, *a, **kw)))
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    assert main(["train", "--model", "wcsegnet-compact", "--data", str(small_data), *TINY,
                 "--seed", "3", "--name", "s3"]) == 0
    capsys.readouterr()
    samples = load_data_folders([small_data])
    val3 = [s.name for s in split_by_group(samples, 0.2, seed=3)[1]]
    assert {s.name for s in split_by_group(samples, 0.2, seed=0)[1]} - set(val3)  # its training

    assert main(["evaluate", "--model", "s3", "--data", str(small_data)]) == 0
    captured = capsys.readouterr()
    assert scored == [val3] and "validation split (seed 3, 20%)" in captured.out
    assert f"{DATASET} ({len(val3)} images)" in captured.out
    assert "warning" not in captured.err

    from napari_wbcseg.training.evaluation.protocol import SplitSpec, three_way_split

    sel3 = [s.name for s in three_way_split(samples, SplitSpec(3))[1]]
    assert sel3 and not set(sel3) & set(val3)
    assert main(["evaluate", "--model", "s3", "--data", str(small_data),
                 "--split", "selection"]) == 0
    captured = capsys.readouterr()
    assert scored[-1] == sel3 and "inner selection split (seed 3, 15%" in captured.out
    assert "warning" not in captured.err

    assert main(["evaluate", "--model", "s3", "--data", str(small_data), "--seed", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trained with seed 3" in err and "training images" in err

    assert main(["evaluate", "--model", "s3", "--data", str(small_data), "--seed", "0",
                 "--split", "all"]) == 0
    captured = capsys.readouterr()
    assert f"{DATASET} (8 images)" in captured.out
    assert "warning: --split all" in captured.err and "not held out" in captured.err

    renamed = tmp_path / "renamed"
    shutil.copytree(small_data, renamed)
    assert main(["evaluate", "--model", "s3", "--data", str(renamed)]) == 0
    captured = capsys.readouterr()
    assert "differs from the folders s3 was trained on (data)" in captured.err
    assert "seed 3" in captured.out


def test_evaluate_bad_input_is_one_line(tmp_path, small_data, capsys):
    assert main(["evaluate", "--model", "no-such-model", "--data", str(small_data)]) == 2
    assert main(["evaluate", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "no-such-model" in err and "no such folder" in err


def test_train_init_bundled_fine_tunes_the_bundled_weights(tmp_path, small_data, monkeypatch,
                                                           capsys):
    from napari_wbcseg.models.weights import load_weights

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    args = ["--data", str(small_data), "--epochs", "1", "--steps", "1", "--batch", "2",
            "--crop", "64", "--synthetic", "0", "--lr", "1e-6"]
    assert main(["train", "--model", "wcsegnet-compact", "--name", "tuned",
                 "--init", "bundled", *args]) == 0
    assert main(["train", "--model", "wcsegnet-compact", "--name", "fresh", *args]) == 0
    from napari_wbcseg.io.model_store import find_model

    bundled, _ = load_weights(find_model("wcsegnet-compact").weights)
    tuned, _ = load_weights(tmp_path / "user-models" / "tuned.safetensors")
    fresh, _ = load_weights(tmp_path / "user-models" / "fresh.safetensors")
    key = next(k for k, v in bundled.items() if v.ndim == 4)
    # one step at lr 1e-6 barely moves the bundled weights; a fresh start is far from them
    assert (tuned[key] - bundled[key]).abs().max() < 1e-3
    assert (fresh[key] - bundled[key]).abs().max() > 1e-2
    assert main(["train", "--model", "unet-vgg19", "--name", "x", "--init", "bundled",
                 *args]) == 2
    assert "no bundled model of 'unet-vgg19'" in capsys.readouterr().err


TINY = ["--epochs", "1", "--steps", "1", "--batch", "2", "--crop", "64", "--synthetic", "0"]


def test_presets_are_the_cli_choices():
    from napari_wbcseg.cli_train import PRESETS
    from napari_wbcseg.training.engine import presets

    assert PRESETS == presets.PRESETS


def test_train_paper_preset_flags_override_and_settings_line(tmp_path, small_data,
                                                              monkeypatch, capsys):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    rc = main(["train", "--model", "wcsegnet-compact", "--data", str(small_data), "--preset",
               "paper", *TINY, "--name", "paper-net", "--mosaic", "--ahe-retinex",
               "--patience", "3"])
    assert rc == 0
    out = capsys.readouterr().out
    line = [x for x in out.splitlines() if x.startswith("settings: ")]
    assert len(line) == 1
    for text in ("preset paper", "adam lr 0.0001 constant",
                 "1 epochs x 1 batches, batch 2, crop 64 px", "patience 3", "mosaics 0.5", "preprocess ahe-retinex", "shift 0.2"):
        assert text in line[0], text
    card = json.loads((tmp_path / "user-models" / "paper-net.json").read_text())
    settings = card["training"]["settings"]
    assert settings["optimizer"] == "adam" and settings["lr"] == 1e-4
    assert settings["epochs"] == 1 and settings["batch_size"] == 2  # flags won
    assert settings["augment"]["rotate"] == 40 and settings["augment"]["flips"] == "h"
    assert card["preprocessing"]["method"] == "ahe-retinex"  # inference will do the same
    assert (tmp_path / "user-models" / "checkpoints" / "paper-net" / "last.pt").is_file()


def test_train_resume_continues_the_checkpoint(tmp_path, small_data, monkeypatch, capsys):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    ckpt = tmp_path / "ckpt"
    assert main(["train", "--model", "wcsegnet-compact", "--data", str(small_data), *TINY,
                 "--epochs", "2", "--minutes", "1e-9", "--checkpoint-dir", str(ckpt),
                 "--name", "run"]) == 0
    out = capsys.readouterr().out
    assert "(user, best epoch 1)" in out and f"--resume {ckpt / 'last.pt'}" in out
    assert main(["train", "--data", str(small_data), "--resume", str(ckpt),
                 "--synthetic", "0"]) == 0
    captured = capsys.readouterr()
    assert "resuming after epoch 1" in captured.out + captured.err
    assert "epoch 2: train loss" in captured.out + captured.err
    assert "saved model 'ckpt' (finished" in captured.out  # the checkpoint folder's name
    import torch

    assert torch.load(ckpt / "last.pt", weights_only=True)["epoch"] == 2


@pytest.mark.parametrize("extra, message", [
    (["--resume", "{tmp}/garbage.pt"], "not a readable training checkpoint"),
    (["--resume", "{tmp}/missing.pt"], "no checkpoint at"),
    (["--resume", "{tmp}/garbage.pt", "--preset", "paper"], "leave out --preset"),
    (["--preset", "paper", "--lr", "-1"], "lr must be a positive number"),
])
def test_train_bad_checkpoint_or_setting_is_one_line(tmp_path, small_data, capsys, extra,
                                                     message):
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    assert main(["train", "--model", "wcsegnet-compact", "--data", str(small_data),
                 *TINY, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_train_non_finite_loss_is_one_line_and_no_model(tmp_path, small_data, monkeypatch,
                                                        capsys):
    import torch

    from napari_wbcseg.training.engine import loop

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    monkeypatch.setattr(loop, "batch_loss", lambda m, b, **kw: (
        torch.tensor(float("nan"), requires_grad=True), {}))
    rc = main(["train", "--model", "wcsegnet-compact", "--data", str(small_data), *TINY,
               "--name", "nan-net"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "non-finite loss" in err and "epoch 1, step 1" in err and "lower learning rate" in err
    assert not (tmp_path / "user-models" / "nan-net.safetensors").exists()


def test_train_on_a_plain_image_mask_folder(tmp_path, monkeypatch, capsys):
    """--data takes a plain folder of image + mask pairs (here X.png + X_mask.png)."""
    import cv2
    import numpy as np

    from napari_wbcseg.core.synthetic import synthetic_smear

    folder = tmp_path / "pairs"
    folder.mkdir()
    for seed in range(4):
        sm = synthetic_smear((128, 160), n_wbc=2, seed=seed)
        mask = np.where(sm.nucleus > 0, 2, np.where(sm.cytoplasm > 0, 1, 0)).astype(np.uint8)
        cv2.imwrite(str(folder / f"s{seed}.png"), np.ascontiguousarray(sm.image[..., ::-1]))
        cv2.imwrite(str(folder / f"s{seed}_mask.png"), mask)
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    rc = main(["train", "--model", "wcsegnet-compact", "--data", str(folder), "--epochs", "1",
               "--steps", "1", "--batch", "2", "--crop", "64", "--synthetic", "0",
               "--name", "from-pairs"])
    assert rc == 0
    card = json.loads((tmp_path / "user-models" / "from-pairs.json").read_text())
    counts = card["training"]["data"]["samples"]["folder:pairs"]
    assert counts["train"] + counts["selection"] + counts["val"] == 4
    capsys.readouterr()
    assert main(["train", "--model", "wcsegnet-compact", "--data", str(tmp_path / "user-models"),
                 "--epochs", "1", "--steps", "1", "--synthetic", "0"]) == 2
    assert "no project.json" in capsys.readouterr().err


def test_train_continues_a_model_and_rebuilds_a_bundled_one_without_installing(
        tmp_path, small_data, monkeypatch, capsys):
    """The maintainer path that replaced scripts/train_default_model.py: --continues warm
    starts from a model and chains its run history; --no-install writes only to --out, so
    a bundled model's own name is allowed there and nothing lands in the user folder."""
    from napari_wbcseg.models.weights import load_weights

    users = tmp_path / "user-models"
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(users))
    args = ["--data", str(small_data), *TINY, "--lr", "1e-6", "--precision", "fp32",
            "--source-weights", '{"folder:data": 2}', "--freeze-encoder", "0"]
    assert main(["train", "--model", "wcsegnet-compact", "--name", "first", *args]) == 0
    first_card = json.loads((users / "first.json").read_text())
    out = tmp_path / "rebuilt"
    assert main(["train", "--continues", "first", "--name", "wcsegnet-compact",
                 "--no-install", "--out", str(out), *args]) == 0
    assert sorted(p.name for p in users.glob("*.json")) == ["first.json"]
    card = json.loads((out / "wcsegnet-compact.json").read_text())
    training = card["training"]
    assert card["architecture"] == "wcsegnet-compact"
    assert training["settings"]["source_weights"] == {"folder:data": 2}
    assert [r["seconds"] for r in training["previous_runs"]] == [first_card["training"]["seconds"]]
    assert training["total_seconds"] == pytest.approx(
        first_card["training"]["seconds"] + training["seconds"], abs=0.11)
    assert "napari-wbcseg train --continues first" in card["notes"]
    first, _ = load_weights(users / "first.safetensors")
    rebuilt, _ = load_weights(out / "wcsegnet-compact.safetensors")
    key = next(k for k, v in first.items() if v.ndim == 4)
    assert (rebuilt[key] - first[key]).abs().max() < 1e-3  # warm-started, barely moved
    capsys.readouterr()


@pytest.mark.parametrize("extra, message", [
    (["--continues", "no-such-model"], "--continues"),
    (["--continues", "wcsegnet-compact", "--model", "wbc-net-compact"], "not 'wbc-net-compact'"),
    (["--continues", "wcsegnet-compact", "--init", "scratch"], "leave out --resume and --init"),
    (["--model", "wcsegnet-compact", "--name", "wcsegnet-compact"], "bundled"),
    (["--model", "wcsegnet-compact", "--no-install"], "give --out"),
    (["--model", "wcsegnet-compact", "--source-weights", "[1]"], "JSON object"),
    (["--model", "wcsegnet-compact", "--source-weights", '{"a": -1}'], "source_weights"),
    (["--model", "wcsegnet-compact", "--model-config", "{"], "JSON object"),
])
def test_train_continue_and_install_flags_refuse_bad_input(tmp_path, small_data, monkeypatch,
                                                           capsys, extra, message):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    rc = main(["train", "--data", str(small_data), *TINY, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "user-models").exists() or not list(
        (tmp_path / "user-models").glob("*.json"))
