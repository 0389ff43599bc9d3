"""bf16 only where the CPU has it and the architecture was measured to gain."""
import pytest

from napari_wbcseg.inference import precision as prec


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.delenv("NAPARI_WBCSEG_PRECISION", raising=False)
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: True)


def test_auto_picks_bf16_for_measured_families_on_a_bf16_cpu(bf16_cpu):
    assert prec.resolve_precision("auto", "cpu", "wbcseg-lite0") == "bf16"
    assert prec.resolve_precision("auto", "cpu", "unet-resnet18") == "bf16"
    assert prec.resolve_precision("auto", "cpu", "leukocytemask-compact") == "fp32"
    # measured for prediction only: trained in fp32, predicted in bf16
    assert prec.resolve_precision("auto", "cpu", "wcsegnet-compact") == "bf16"
    assert prec.resolve_precision("auto", "cpu", "wcsegnet-compact", "training") == "fp32"
    assert prec.resolve_precision("auto", "cpu", "wbcseg-lite0", "training") == "bf16"
    assert prec.resolve_precision("auto", "cpu", "cell-classifier-lite0") == "fp32"
    assert prec.resolve_precision("auto", "cuda", "wbcseg-lite0") == "fp32"


def test_cpus_without_bf16_keep_fp32(monkeypatch):
    monkeypatch.delenv("NAPARI_WBCSEG_PRECISION", raising=False)
    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: False)
    assert prec.resolve_precision("auto", "cpu", "wbcseg-lite0") == "fp32"


def test_environment_and_explicit_choices(bf16_cpu, monkeypatch):
    monkeypatch.setenv("NAPARI_WBCSEG_PRECISION", "fp32")
    assert prec.resolve_precision("auto", "cpu", "wbcseg-lite0") == "fp32"
    assert prec.resolve_precision("bf16", "cpu", "wcsegnet-compact") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        prec.resolve_precision("fp16", "cpu", "wbcseg-lite0")
    with pytest.raises(ValueError, match="for CPUs"):
        prec.resolve_precision("bf16", "cuda", "wbcseg-lite0")


def test_bf16_prediction_stays_close_to_fp32():
    import torch

    from napari_wbcseg.models import create_model

    torch.manual_seed(0)
    model = create_model("wbcseg-lite0").eval()
    x = torch.rand(1, 3, 64, 64)
    ref = model.predict(x)["semantic"]
    model.precision = "bf16"
    low = model.predict(x)["semantic"]
    assert low.dtype == torch.float32 and low.shape == ref.shape
    assert float((ref - low).abs().max()) < 0.1


def test_cpu_flag_detection_reads_cpuinfo(monkeypatch, tmp_path):
    import builtins

    fake = tmp_path / "cpuinfo"
    fake.write_text("processor: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda p, *a, **k: real_open(
        fake if str(p) == "/proc/cpuinfo" else p, *a, **k))
    prec.cpu_has_bf16.cache_clear()
    try:
        assert prec.cpu_has_bf16() is True
        fake.write_text("processor: 0\nflags\t\t: fpu sse avx2\n")
        prec.cpu_has_bf16.cache_clear()
        assert prec.cpu_has_bf16() is False
    finally:
        prec.cpu_has_bf16.cache_clear()


def test_forced_bf16_on_a_cpu_without_it_warns_once(monkeypatch):
    import warnings

    monkeypatch.setattr(prec, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(prec, "_warned", [])
    with pytest.warns(UserWarning, match="no native bf16"):
        assert prec.resolve_precision("bf16", "cpu", "wbcseg-lite0") == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prec.resolve_precision("bf16", "cpu", "wbcseg-lite0") == "bf16"  # once
        monkeypatch.setattr(prec, "_warned", [])
        monkeypatch.setattr(prec, "cpu_has_bf16", lambda: True)
        assert prec.resolve_precision("bf16", "cpu", "wbcseg-lite0") == "bf16"  # native
