"""COVIDX-Net: Hemdan, Shouman, Karar (2020), arXiv:2003.11055.

Seven Keras backbones compared on 25 COVID-19 + 25 "normal" images (Cohen + Rosebrock).
"""

from covidlab.models import Head
from covidlab.papers.spec import ModelSpec, PaperSpec

# The paper does not describe the head; we use global average pooling + Dense(softmax)
# on a frozen base (see ``choices``). The chapter completes this entry.
_HEAD = Head(pooling="avg")

SPEC = PaperSpec(
    key="covidx_net",
    short_name="COVIDX-Net",
    citation="hemdan2020covidxnet",
    title="COVIDX-Net: A Framework of Deep Learning Classifiers to Diagnose COVID-19 in X-Ray Images",
    task="COVID-19 vs normal",
    classes=("normal", "covid"),
    input_size=(224, 224),
    resize="stretch",
    optimizer="sgd",
    learning_rate=1e-3,
    batch_size=7,
    epochs=50,
    protocol="holdout",
    test_fraction=0.2,
    models={
        name: ModelSpec(backbone=backbone, head=_HEAD)
        for name, backbone in [
            ("VGG19", "VGG19"),
            ("DenseNet201", "DenseNet201"),
            ("InceptionV3", "InceptionV3"),
            ("ResNetV2", "ResNet50V2"),
            ("InceptionResNetV2", "InceptionResNetV2"),
            ("Xception", "Xception"),
            ("MobileNetV2", "MobileNetV2"),
        ]
    },
    recipe={"normal": 25, "covid": 25},
    recipe_sources={"normal": ("rosebrock",), "covid": ("cohen",)},
)
