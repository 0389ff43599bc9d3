"""``napari-wbcseg reproduce``: a card's multi-stage recipe as one command."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from napari_wbcseg.cli import main
from napari_wbcseg.training.engine.recipe import RecipeError, recipe_stages, selection_score

TINY = "--epochs 1 --steps 1 --batch 2 --crop 64 --synthetic 0 --precision fp32"
RECIPE = [
    f"napari-wbcseg train --model wcsegnet-compact --data ../shared/data --name tiny "
    f"--no-install --out RUN1 --lr 1e-3 {TINY}",
    f"napari-wbcseg train --continues RUN1/tiny.safetensors --data ../shared/data "
    f"--name tiny --out=RUN2 --lr 1e-4 {TINY} --source-weights '{{\"folder:data\": 2}}'",
]


def _model_with_recipe(tmp_path, data, commands=RECIPE) -> Path:
    """A trained tiny model whose card records ``commands`` as its recipe."""
    folder = tmp_path / "colleague"
    assert main(["train", "--model", "wcsegnet-compact", "--data", str(data), "--name",
                 "tiny", "--no-install", "--out", str(folder), *TINY.split()]) == 0
    card_path = folder / "tiny.json"
    card = json.loads(card_path.read_text())
    card["training"]["reproduce"] = {"commands": commands}
    card_path.write_text(json.dumps(card))
    return folder / "tiny.safetensors"


def test_reproduce_runs_every_stage_keeps_the_best_on_selection_and_skips_done_ones(
        tmp_path, synthetic_data, monkeypatch, capsys):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    model = _model_with_recipe(tmp_path, synthetic_data)
    out = tmp_path / "rebuilt"
    argv = ["reproduce", str(model), "--data", str(synthetic_data), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "stage 1/2: napari-wbcseg train --model wcsegnet-compact" in printed
    stage_cards = [json.loads((out / f"RUN{k}" / "tiny.json").read_text()) for k in (1, 2)]
    # stage 2 continued stage 1's weights, inside the output folder, with its own settings
    assert f"--continues {out / 'RUN1' / 'tiny.safetensors'}" in stage_cards[1]["notes"]
    assert stage_cards[1]["training"]["settings"]["source_weights"] == {"folder:data": 2}
    assert stage_cards[1]["training"]["settings"]["lr"] == pytest.approx(1e-4)
    assert len(stage_cards[1]["training"]["previous_runs"]) == 1
    assert (out / "checkpoints" / "RUN2" / "last.pt").is_file()
    assert not (tmp_path / "user-models" / "tiny.json").exists()  # nothing installed
    scores = [selection_score(c) for c in stage_cards]
    kept = 1 if scores[0] >= scores[1] else 2
    final = json.loads((out / "tiny.json").read_text())
    done = final["training"]["reproduced"]
    assert done["kept_stage"] == kept and done["of"] == "tiny"
    assert done["command"] == "napari-wbcseg " + " ".join(argv)
    assert [s["stage"] for s in done["stages"]] == [1, 2]
    assert done["minutes"] == pytest.approx(sum(s["minutes"] for s in done["stages"]), abs=0.11)
    assert (out / "tiny.safetensors").read_bytes() == \
        (out / f"RUN{kept}" / "tiny.safetensors").read_bytes()
    assert main(["evaluate", "--model", str(out / "tiny.safetensors"), "--data",
                 str(synthetic_data)]) == 0  # a usable model
    capsys.readouterr()

    # a second call finds both stages finished; a changed command reruns its stage only
    ran = []
    from napari_wbcseg import cli_train

    real = cli_train.cmd_train
    monkeypatch.setattr(cli_train, "cmd_train", lambda a: ran.append(a.argv) or real(a))
    assert main(argv) == 0
    assert ran == [] and capsys.readouterr().out.count("already finished") == 2
    mark = out / "RUN2" / "stage.json"
    mark.write_text(json.dumps({**json.loads(mark.read_text()), "argv": ["train", "old"]}))
    assert main(argv) == 0
    assert len(ran) == 1 and "--continues" in ran[0]


def test_dry_run_prints_the_stages_for_this_machine(tmp_path, capsys):
    assert main(["reproduce", "wbcseg-lite0", "--data", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(l.startswith("napari-wbcseg train ") for l in lines)
    assert f"--data {tmp_path} " in lines[0] and "../shared/data" not in "".join(lines)
    assert f"--continues {tmp_path / 'o' / 'RUN3' / 'wbcseg-lite0.safetensors'}" in lines[3]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command, message", [
    ("napari-wbcseg segment x.png --out RUN1", "not a `napari-wbcseg train`"),
    ("python -c 'import os' --out RUN1", "not a `napari-wbcseg train`"),
    ("napari-wbcseg train --model m --name n --out /tmp/elsewhere", "--out must be RUN1"),
    ("napari-wbcseg train --model m --name n --out ../RUN1", "--out must be RUN1"),
    ("napari-wbcseg train --continues ../x.safetensors --name n --out RUN1", "earlier stage"),
    ("napari-wbcseg train --continues RUN1/n.safetensors --name n --out RUN1", "earlier stage"),
    ("napari-wbcseg train --model m --name n --out RUN1 --resume ck", "placed by reproduce"),
    ("napari-wbcseg train --model m --name n --out RUN1 --checkpoint-dir=/x",
     "placed by reproduce"),
    ("napari-wbcseg train --model m --out RUN1", "needs --name"),
    ("napari-wbcseg train --model m --name ../../x --out RUN1", "plain file name"),
    ("napari-wbcseg train --model m --name 'unclosed", "stage 1"),
])
def test_a_card_recipe_cannot_leave_its_folder_or_run_anything_else(tmp_path, command, message):
    card = {"name": "x", "training": {"reproduce": {"commands": [command]}}}
    with pytest.raises(RecipeError, match=message):
        recipe_stages(card, [tmp_path], tmp_path / "out")


def test_stages_read_the_users_data_and_are_never_installed(tmp_path):
    card = {"training": {"reproduce": {"commands": [
        "napari-wbcseg train --model m --data a b --name n --out RUN1 --epochs 2"]}}}
    (stage,) = recipe_stages(card, ["mine"], tmp_path)
    assert stage.argv == ["train", "--model", "m", "--data", "mine", "--name", "n", "--out",
                          str(tmp_path / "RUN1"), "--epochs", "2", "--no-install",
                          "--checkpoint-dir", str(tmp_path / "checkpoints" / "RUN1")]


@pytest.mark.parametrize("model", ["leukocytemask-compact", "no-such-model"])
def test_a_model_without_recipe_is_one_line_and_exit_2(tmp_path, capsys, model):
    assert main(["reproduce", model, "--data", str(tmp_path), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_bad_stage_names_its_number_and_keeps_the_finished_ones(
        tmp_path, synthetic_data, monkeypatch, capsys):
    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    model = _model_with_recipe(tmp_path, synthetic_data, [
        RECIPE[0], "napari-wbcseg train --continues RUN1/tiny.safetensors --name tiny "
        "--out RUN2 --epochs 1 --steps 1 --batch 2 --crop 64 --synthetic 0 --lr 99"])
    out = tmp_path / "rebuilt"
    capsys.readouterr()
    assert main(["reproduce", str(model), "--data", str(synthetic_data), "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: recipe stage 2: ") and "lr" in err[-1]
    assert (out / "RUN1" / "stage.json").is_file() and not (out / "tiny.json").exists()


def test_classifier_stages_start_from_imagenet_or_scratch_and_are_never_installed(tmp_path):
    card = {"training": {"reproduce": {"commands": [
        "napari-wbcseg train-classifier --data a --name c --out RUN1 --epochs 2"]}}}
    (stage,) = recipe_stages(card, ["mine"], tmp_path)
    assert stage.argv == ["train-classifier", "--data", "mine", "--name", "c", "--out",
                          str(tmp_path / "RUN1"), "--epochs", "2", "--init", "imagenet",
                          "--no-install"]
    for init in ("auto", "someones-classifier"):
        card["training"]["reproduce"]["commands"] = [
            f"napari-wbcseg train-classifier --data a --name c --out RUN1 --init {init}"]
        with pytest.raises(RecipeError, match="imagenet or scratch"):
            recipe_stages(card, ["mine"], tmp_path)
    assert selection_score({"kind": "cell-classifier", "selection": {"accuracy": 0.75}}) == 0.75


def test_reproduce_rebuilds_a_classifier_without_installing_it(tmp_path, monkeypatch, capsys):
    from test_cli_classifier import _layer_folder

    monkeypatch.setenv("NAPARI_WBCSEG_MODELS", str(tmp_path / "user-models"))
    data = _layer_folder(tmp_path / "layers", range(10))
    recipe = ("napari-wbcseg train-classifier --data ../shared/data --name cc --out RUN1 "
              "--init scratch --segmenter truth --epochs 1 --steps 2 --batch 4 --patience 3")
    assert main(["train-classifier", "--data", str(data), "--name", "cc", "--no-install",
                 "--out", str(tmp_path / "colleague"), *recipe.split()[8:]]) == 0
    assert not (tmp_path / "user-models" / "classifiers").exists()
    card_path = tmp_path / "colleague" / "cc.json"
    card = json.loads(card_path.read_text())
    assert card["training"]["settings"]["patience"] == 3
    card["training"]["reproduce"] = {"commands": [recipe]}
    card_path.write_text(json.dumps(card))
    out = tmp_path / "rebuilt"
    assert main(["reproduce", str(tmp_path / "colleague" / "cc.safetensors"), "--data",
                 str(data), "--out", str(out)]) == 0
    assert "stage 1/1: napari-wbcseg train-classifier" in capsys.readouterr().out
    final = json.loads((out / "cc.json").read_text())
    assert final["kind"] == "cell-classifier" and final["training"]["reproduced"]["of"] == "cc"
    assert (out / "cc.safetensors").read_bytes() == (out / "RUN1" / "cc.safetensors").read_bytes()
    assert not (tmp_path / "user-models" / "classifiers").exists()  # nothing installed
