"""Week 5's digit-pretrained backbone: the patches it learns from, the file it keeps, and its
weights arriving in both detectors (a whole run with it: ``--method fast`` in test_rcnn.py)."""
import numpy as np
import pytest

from dlcourse import digit_pretraining, fast_rcnn, scenes
from dlcourse.data import DataError, load_mnist
from labs import rcnn

CONVOLUTIONS = 13       # VGG16's, each with its batch normalisation


def test_digit_patches_are_the_same_for_a_seed_and_show_the_digit():
    digits = load_mnist()[0][0][:6]
    patches = digit_pretraining.digit_patches(digits, seed=3, progress=False)
    assert patches.shape == (6, 32, 32, 3) and patches.dtype == np.uint8
    assert np.array_equal(patches, digit_pretraining.digit_patches(digits, seed=3, progress=False))
    assert not np.array_equal(patches, digit_pretraining.digit_patches(digits, seed=4, progress=False))
    # The same background and place with and without the ink: only the digit's pixels differ, by a lot.
    with_digit = scenes.make_digit_patch(np.random.default_rng(5), digits[0], side_range=(28, 28))
    faint = (digits[0] > 0).astype("uint8")     # ink of value 1: blends 1/255 of the colour in
    without = scenes.make_digit_patch(np.random.default_rng(5), faint, side_range=(28, 28))
    changed = np.abs(with_digit.astype(int) - without.astype(int)).max(axis=-1) > 40
    assert 30 < changed.sum() < 28 * 28
    # A digit larger than the patch is cut to its middle, not refused.
    large = scenes.make_digit_patch(np.random.default_rng(0), digits[0], side_range=(40, 40))
    assert large.shape == (32, 32, 3)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    path = tmp_path_factory.mktemp("pretraining") / "digits_vgg16.npz"
    return path, digit_pretraining.pretrain(path, smoke=True, verbose=0)


def test_pretraining_keeps_every_convolution_and_is_not_repeated(pretrained, monkeypatch):
    path, result = pretrained
    assert result["seconds"] > 0 and 0.0 <= result["accuracy"] <= 1.0
    weights = digit_pretraining.read_weights(path)
    assert len(weights) == 2 * CONVOLUTIONS and {"block1_conv1", "block5_conv3_bn"} <= set(weights)
    assert weights["block1_conv1"][0].shape == (3, 3, 3, 8)      # width 0.125: 8 filters
    # A second run (a resumed one) keeps the file: it does not even read MNIST.
    monkeypatch.setattr(digit_pretraining, "load_mnist", lambda: pytest.fail("pretrained again"))
    stamp = path.stat().st_mtime_ns
    assert digit_pretraining.pretrain(path, smoke=True, verbose=0) == {"seconds": None, "accuracy": None}
    assert path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("method", ["rcnn", "fast"])
def test_both_detectors_start_from_the_pretrained_weights(pretrained, method):
    path, _ = pretrained
    config = rcnn.parser.parse_args(["--method", method, "--weights", "digits"])
    model = rcnn.model_for(config, 10)
    backbone = digit_pretraining.backbone_layers(model)
    others = [layer for layer in _all_layers(model) if layer.name not in backbone and layer.weights]
    before = [[weight.copy() for weight in layer.get_weights()] for layer in others]
    assert digit_pretraining.load_backbone(model, path) == 2 * CONVOLUTIONS
    weights = digit_pretraining.read_weights(path)
    for name, layer in backbone.items():
        for loaded, stored in zip(layer.get_weights(), weights[name], strict=True):
            np.testing.assert_array_equal(loaded, stored)
    # The rest of the detector (its heads) still starts where it was built.
    assert others and all(np.array_equal(old, new) for layer, weights_before in zip(others, before)
                          for old, new in zip(weights_before, layer.get_weights()))


def _all_layers(model):
    for layer in model.layers:
        yield from _all_layers(layer) if hasattr(layer, "layers") else (layer,)

def test_a_damaged_or_mismatched_file_is_one_line(pretrained, tmp_path):
    path, _ = pretrained
    wider = fast_rcnn.build_fast_rcnn(10, width=0.25)
    with pytest.raises(DataError, match="another --width"):
        digit_pretraining.load_backbone(wider, path)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="missing or damaged") as error:
        digit_pretraining.load_backbone(wider, damaged)
    assert "\n" not in str(error.value)
    # A file cut off by a kill is not kept: pretraining writes it again.
    assert digit_pretraining.read_weights(damaged) is None

