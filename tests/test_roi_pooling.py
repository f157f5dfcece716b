"""RoI pooling (dlcourse.roi_pooling) against a plain NumPy loop, by hand, and on JAX."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from dlcourse import backend
from dlcourse.roi_pooling import RoIAlign, roi_align
from tests.conftest import REPO
from tests.test_backends import environment, needs_jax


def reference_roi_align(features, boxes, pool_size, stride, sampling_ratio):
    """RoIAlign one sample point at a time: clamp the box to the map, then for every bin average
    ``sampling_ratio²`` points, each interpolated from its four nearest cell centres."""
    batch, height, width, channels = features.shape
    out = np.zeros((batch, boxes.shape[1], pool_size, pool_size, channels))
    for b in range(batch):
        for r in range(boxes.shape[1]):
            x1, y1, x2, y2 = boxes[b, r] / stride
            x1, x2 = np.clip([x1, x2], 0, width)
            y1, y2 = np.clip([y1, y2], 0, height)
            x2, y2 = max(x2, x1), max(y2, y1)
            bin_w, bin_h = (x2 - x1) / pool_size, (y2 - y1) / pool_size
            for p in range(pool_size):
                for q in range(pool_size):
                    total = np.zeros(channels)
                    for sy in range(sampling_ratio):
                        for sx in range(sampling_ratio):
                            y = y1 + (p + (sy + 0.5) / sampling_ratio) * bin_h - 0.5
                            x = x1 + (q + (sx + 0.5) / sampling_ratio) * bin_w - 0.5
                            y, x = min(max(y, 0), height - 1), min(max(x, 0), width - 1)
                            top, left = int(np.floor(y)), int(np.floor(x))
                            bottom, right = min(top + 1, height - 1), min(left + 1, width - 1)
                            dy, dx = y - top, x - left
                            total += ((1 - dy) * (1 - dx) * features[b, top, left]
                                      + (1 - dy) * dx * features[b, top, right]
                                      + dy * (1 - dx) * features[b, bottom, left]
                                      + dy * dx * features[b, bottom, right])
                    out[b, r, p, q] = total / sampling_ratio ** 2
    return out


def random_case(seed, batch=2, height=5, width=6, channels=3, rois=7, stride=16):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(batch, height, width, channels)).astype("float32")
    corners = rng.uniform(-20, stride * max(height, width) + 20, size=(batch, rois, 2, 2))
    boxes = np.concatenate([corners.min(axis=2), corners.max(axis=2)], axis=-1)  # some outside the map
    boxes[:, -1] = 0.0                                                          # a padding box
    return features, boxes.astype("float32")


@pytest.mark.parametrize("pool_size, sampling_ratio", [(2, 1), (3, 2), (4, 3)])
def test_matches_the_numpy_loop_on_random_boxes(pool_size, sampling_ratio):
    features, boxes = random_case(pool_size)
    pooled = keras.ops.convert_to_numpy(roi_align(features, boxes, pool_size, 16, sampling_ratio))
    assert pooled.shape == (2, 7, pool_size, pool_size, 3)
    np.testing.assert_allclose(pooled, reference_roi_align(features, boxes, pool_size, 16, sampling_ratio),
                               atol=1e-5)


def test_hand_computed_cases():
    constant = np.full((1, 4, 4, 2), 3.0, dtype="float32")
    boxes = np.array([[[0, 0, 64, 64], [10, 5, 30, 50], [-40, -40, 200, 90], [0, 0, 0, 0]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(roi_align(constant, boxes, 3, 16)), 3.0,
                               atol=1e-6)
    # A box that is exactly cell (row 2, column 1), pooled to one point at its centre: that cell.
    features = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    one_cell = np.array([[[16, 32, 32, 48]]], "float32")
    assert keras.ops.convert_to_numpy(roi_align(features, one_cell, 1, 16, 1)).item() == 9.0
    # On a map whose value is the column index, linear interpolation is exact: each bin gets the
    # column of its centre, in cells, minus the half cell of the cell centres.
    columns = np.tile(np.arange(8, dtype="float32"), (1, 8, 1))[..., None]
    pooled = keras.ops.convert_to_numpy(roi_align(columns, np.array([[[24, 24, 88, 40]]], "float32"), 4, 16))
    np.testing.assert_allclose(pooled[0, 0, 0, :, 0], [24 / 16 + (q + 0.5) * 1.0 - 0.5 for q in range(4)],
                               atol=1e-6)


def test_gradient_reaches_the_cells_under_the_box():
    feature_map = keras.Variable(np.random.default_rng(0).normal(size=(1, 4, 4, 2)).astype("float32"))
    one_cell = np.array([[[16, 32, 32, 48]]], "float32")
    [gradient] = backend.gradients(lambda: keras.ops.sum(roi_align(feature_map, one_cell, 1, 16, 1)),
                                   [feature_map])
    expected = np.zeros((1, 4, 4, 2))
    expected[0, 2, 1] = 1.0
    np.testing.assert_allclose(gradient, expected)
    # A larger box spreads it out; every sample's weights sum to one, so the total is P² per channel.
    box = np.array([[[5, 7, 50, 41]]], "float32")
    [gradient] = backend.gradients(lambda: keras.ops.sum(roi_align(feature_map, box, 3, 16)), [feature_map])
    assert (gradient > 0).sum() > 4
    np.testing.assert_allclose(gradient.sum(axis=(0, 1, 2)), [9.0, 9.0], rtol=1e-5)


def test_layer_in_a_functional_model_takes_any_number_of_boxes():
    features = keras.Input((4, 4, 8))
    boxes = keras.Input((None, 4))
    pooled = RoIAlign(pool_size=2, stride=16, name="roi")([features, boxes])
    assert tuple(pooled.shape) == (None, None, 2, 2, 8)
    model = keras.Model([features, boxes], pooled)
    rng = np.random.default_rng(1)
    feature_map = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    for count in (3, 5):
        rois = rng.uniform(0, 30, size=(2, count, 4)).astype("float32")
        rois[..., 2:] += rois[..., :2]
        assert model.predict_on_batch([feature_map, rois]).shape == (2, count, 2, 2, 8)
    config = model.get_layer("roi").get_config()
    assert RoIAlign.from_config(config).get_config() == config


JAX_SCRIPT = """
import numpy as np, keras
from dlcourse.roi_pooling import roi_align
from tests.test_roi_pooling import random_case, reference_roi_align
assert keras.backend.backend() == "jax"
features, boxes = random_case(0)
np.testing.assert_allclose(np.asarray(roi_align(features, boxes, 3, 16, 2)),
                           reference_roi_align(features, boxes, 3, 16, 2), atol=1e-5)
print("same on jax")
"""


@needs_jax
def test_same_on_jax():
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **environment("jax")}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "same on jax" in result.stdout
