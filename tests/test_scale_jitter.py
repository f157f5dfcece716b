"""Scale jitter (dlcourse.scale_jitter): images and their regions zoomed together while training."""
import keras
import numpy as np
import pytest

from dlcourse import fast_rcnn
from dlcourse.scale_jitter import ScaleJitter


def squares(count=6, size=128):
    """Black images with one white 20×24 rectangle each, its box, and a whole-image box."""
    images = np.zeros((count, size, size, 3), "uint8")
    images[:, 40:64, 30:50] = 255
    rois = np.tile(np.array([[[30, 40, 50, 64], [0, 0, size, size]]], "float32"), (count, 1, 1))
    return images, rois


def test_every_region_moves_with_its_image():
    """The white rectangle lands where its box went (within a pixel), a different zoom per image,
    and a zoomed-out image stays wholly inside the canvas."""
    images, rois = squares()
    zoomed, moved = (np.asarray(value) for value in ScaleJitter(0.25, seed=1)([images, rois], training=True))
    assert zoomed.shape == images.shape and zoomed.dtype == np.uint8
    sizes = []
    for image, (box, whole) in zip(zoomed, moved):
        rows, columns = np.nonzero(image[:, :, 0] >= 128)
        ink = [columns.min(), rows.min(), columns.max() + 1, rows.max() + 1]
        np.testing.assert_allclose(ink, box, atol=1.0)
        scale = (whole[2] - whole[0]) / 128
        assert 1 / 1.25 - 1e-6 <= scale <= 1.25 + 1e-6
        np.testing.assert_allclose(box[2:] - box[:2], scale * np.array([20, 24]), rtol=1e-5)
        if scale < 1:
            assert whole[0] >= -1e-4 and whole[2] <= 128 + 1e-4
        else:
            assert whole[0] <= 1e-4 and whole[2] >= 128 - 1e-4
        sizes.append(scale)
    assert np.ptp(sizes) > 0.05 and min(sizes) < 1 < max(sizes)


def test_inference_and_zero_zoom_leave_the_inputs_alone():
    images, rois = squares(2)
    for layer, training in ((ScaleJitter(0.3, seed=0), False), (ScaleJitter(0.0, seed=0), True)):
        same_images, same_rois = layer([images, rois], training=training)
        np.testing.assert_array_equal(np.asarray(same_images), images)
        np.testing.assert_array_equal(np.asarray(same_rois), rois)
    with pytest.raises(ValueError, match="max_zoom"):
        ScaleJitter(-0.1)


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras saving on NumPy 2
def test_a_fast_rcnn_with_jitter_predicts_as_without_and_loads(tmp_path):
    """The jitter sits in front of the two halves: prediction (and the detector, which calls the
    halves) never sees it, and a saved model keeps it."""
    keras.utils.set_random_seed(0)
    model = fast_rcnn.build_fast_rcnn(3, head_units=16, scale_jitter=0.2, seed=0)
    images, rois = squares(2)
    inputs = {"images": images, "rois": rois}
    outputs = model.predict_on_batch(inputs)
    features = model.get_layer("features").predict_on_batch(images)
    np.testing.assert_allclose(model.get_layer("heads").predict_on_batch([features, rois])["class"],
                               outputs["class"], atol=1e-6)
    # While training the same weights see another image, so the outputs differ.
    trained_view = model(inputs, training=True)
    assert not np.allclose(np.asarray(trained_view["box"]), outputs["box"], atol=1e-6)
    model.save(tmp_path / "jitter.keras")
    loaded = keras.models.load_model(tmp_path / "jitter.keras", compile=False)
    assert loaded.get_layer("scale_jitter").max_zoom == 0.2
    # (the training call moved batch normalisation's statistics: compare with the model as it is now)
    np.testing.assert_allclose(loaded.predict_on_batch(inputs)["class"], model.predict_on_batch(inputs)["class"],
                               atol=1e-6)
