"""The five-class table and the tiny classifier settings shared by the classifier tests."""
from napari_wbcseg.training.engine.classifier import ClassifierConfig

CODES = (1, 2, 3, 4, 5)
CLASSES = [{"code": c, "name": n, "color": "#ffffff"} for c, n in
           zip(CODES, ("neutrophil", "lymphocyte", "monocyte", "eosinophil", "basophil"))]


def tiny_config(epochs: int) -> ClassifierConfig:
    """A from-scratch 64 px classifier of two batches of 4 an epoch, in fp32."""
    return ClassifierConfig(crop_size=64, epochs=epochs, steps_per_epoch=2, batch_size=4,
                            imagenet=False, precision="fp32")
