"""The selection-free protocol: three disjoint parts, the card's split spec, evaluate's plan."""
import numpy as np
import pytest

from napari_wbcseg.training.data.datasets import split_by_group
from napari_wbcseg.training.evaluation.protocol import (SplitSpec, data_names, evaluation_plan,
                                             three_way_split)
from napari_wbcseg.training.data.sample import Sample


def _samples():
    """Light samples: several sources and classes, duplicate pairs and crop + field groups."""
    z = np.zeros((4, 4), np.uint8)
    img = np.zeros((4, 4, 3), np.uint8)
    out = []
    for i in range(60):
        source = ("segmentation_WBC-1", "segmentation_WBC-2", "folder:mine")[i % 3]
        group = f"{source}-{i // 2 if i < 20 else i}"  # the first ten groups are pairs
        out.append(Sample(img, z, z, source, group, f"{source}/{i:03d}", image_class=1 + i % 5))
    for i in range(12):  # a BCISC crop shares its group with its field
        for source in ("BCISC-sub", "BCISC-field"):
            out.append(Sample(img, z, z, source, f"bcisc-{i}", f"{source}/{i}",
                              image_class=1 + i % 2))
    return out


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_three_way_split_is_disjoint_by_group_and_keeps_the_validation_split(seed):
    samples = _samples()
    inner_train, inner_val, validation = three_way_split(samples, SplitSpec(seed))
    parts = [{s.group for s in p} for p in (inner_train, inner_val, validation)]
    assert all(parts)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(inner_train) + len(inner_val) + len(validation) == len(samples)
    assert [s.name for s in validation] == [s.name for s in split_by_group(samples, 0.2,
                                                                            seed=seed)[1]]
    # the inner fraction never moves an image into or out of validation
    other = three_way_split(samples, SplitSpec(seed, inner_fraction=0.4))[2]
    assert [s.name for s in other] == [s.name for s in validation]


def test_split_spec_round_trips_and_reads_older_cards(tmp_path):
    spec = SplitSpec(3, data=data_names([tmp_path / "a" / "data", tmp_path / "data"], 20))
    assert spec.data == ("data", "synthetic:20") and spec.folders == ("data",)
    card = {"training": {"data": {"split_spec": spec.to_card()}}}
    assert SplitSpec.from_card(card) == spec
    old = SplitSpec.from_card({"training": {"data": {"split": "group-aware 80/20, seed 4"}}})
    assert (old.seed, old.val_fraction, old.data, old.inner_fraction) == (4, 0.2, (), 0.0)
    assert "unknown" in old.note
    widget = {"training": {"data": {"split": "group-aware, validation fraction 0.25, seed 2"}}}
    assert (SplitSpec.from_card(widget).seed, SplitSpec.from_card(widget).val_fraction) == \
        (2, 0.25)
    assert SplitSpec.from_card({"architecture": "x"}) is None


def _card(seed=3, folders=("data",), sources=("segmentation_WBC-2",)):
    return {"name": "net", "training": {"data": {
        "split_spec": SplitSpec(seed, data=folders).to_card(),
        "samples": {s: {"train": 4, "selection": 2, "val": 2} for s in sources}}}}


def test_evaluation_plan_uses_the_card_seed_and_refuses_overlapping_other_seeds():
    src = {"segmentation_WBC-2"}
    plan = evaluation_plan(_card(), ["/x/data"], src)
    assert (plan.seed, plan.val_fraction, plan.warnings, plan.refusal) == (3, 0.2, [], None)
    refused = evaluation_plan(_card(), ["/x/data"], src, seed=0)
    assert "seed 3" in refused.refusal and "training images" in refused.refusal
    # overlap by source alone (folder renamed) is still refused
    assert evaluation_plan(_card(), ["/y/copy"], src, seed=0).refusal
    # new data, other seed: only a warning
    new = evaluation_plan(_card(), ["/y/other"], {"folder:other"}, seed=0)
    assert new.refusal is None and new.seed == 0
    assert any("differs from the seed 3" in w for w in new.warnings)
    assert any("none of them was seen" in w for w in new.warnings)
    every = evaluation_plan(_card(), ["/x/data"], src, seed=0, split="all")
    assert every.refusal is None and any("not held out" in w for w in every.warnings)
    renamed = evaluation_plan(_card(), ["/y/copy"], src)
    assert renamed.refusal is None and any("differs from the folders" in w
                                           for w in renamed.warnings)


def test_evaluation_plan_without_split_info_warns_and_uses_seed_0():
    plan = evaluation_plan({"name": "imported"}, ["/x/data"], {"segmentation_WBC-2"})
    assert plan.seed == 0 and plan.refusal is None
    assert any("no training split" in w for w in plan.warnings)
    old = {"name": "bundled", "training": {"data": {
        "split": "group-aware 80/20, seed 0", "samples": {"segmentation_WBC-2": {"train": 62,
                                                                                 "val": 18}}}}}
    plan = evaluation_plan(old, ["/x/data"], {"segmentation_WBC-2"})
    assert plan.seed == 0 and plan.refusal is None and "unknown" in plan.warnings[0]
    assert evaluation_plan(old, ["/x/data"], {"segmentation_WBC-2"}, seed=1).refusal


def test_selection_plan_takes_the_card_inner_fraction_and_warns_for_older_cards():
    src = {"segmentation_WBC-2"}
    card = _card()
    card["training"]["data"]["split_spec"]["inner_fraction"] = 0.3
    plan = evaluation_plan(card, ["/x/data"], src, split="selection")
    assert (plan.seed, plan.inner_fraction, plan.warnings) == (3, 0.3, [])
    assert evaluation_plan(card, ["/x/data"], src, seed=0, split="selection").refusal
    old = {"name": "bundled", "training": {"data": {"split": "group-aware 80/20, seed 0"}}}
    plan = evaluation_plan(old, ["/x/data"], src, split="selection")
    assert plan.inner_fraction == SplitSpec.inner_fraction == 0.15
    assert any("among its training images" in w for w in plan.warnings)
    assert not any("among its training images" in w
                   for w in evaluation_plan(old, ["/x/data"], src).warnings)
