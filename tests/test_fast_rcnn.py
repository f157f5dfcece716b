"""Fast R-CNN (dlcourse.fast_rcnn): shapes, training examples, padding, post-processing, a tiny detector."""
import keras
import numpy as np
import pytest

from dlcourse import backend, box_regression, detection, fast_rcnn, scenes

CLASSES = tuple(range(10))


@pytest.fixture(scope="module")
def tiny_scenes():
    split = scenes.make_scene_set(24, seed=5, split="train", classes=CLASSES)
    return split, [detection.selective_search(image) for image, _, _ in split]


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return fast_rcnn.build_fast_rcnn(10, head_units=64)      # the default: stride 8, 2×2 grids


def test_model_shapes_and_its_two_halves(small_model):
    images = np.random.default_rng(0).integers(0, 256, size=(2, 128, 128, 3)).astype("uint8")
    rois = np.tile(np.array([[0, 0, 40, 40], [30, 20, 90, 60], [64, 64, 128, 128]], "float32"), (2, 1, 1))
    outputs = small_model.predict_on_batch({"images": images, "rois": rois})
    assert outputs["class"].shape == (2, 3, 11) and outputs["box"].shape == (2, 3, 40)
    np.testing.assert_allclose(outputs["class"].sum(axis=-1), 1.0, rtol=1e-5)
    features = small_model.get_layer("features").predict_on_batch(images)
    assert features.shape == (2, 16, 16, 64)                    # stride 8 at width 0.125
    heads = small_model.get_layer("heads").predict_on_batch([features, rois])
    np.testing.assert_allclose(heads["class"], outputs["class"], atol=1e-6)
    vgg = small_model.get_layer("features").get_layer("vgg16")
    assert isinstance(vgg.get_layer("block4_pool"), keras.layers.Identity)
    # VGG16 at stride 16 on the image enlarged twice: the same map size, the same weights.
    larger = fast_rcnn.build_fast_rcnn(3, image_scale=2, feature_stride=16, pool_size=3)
    assert larger.get_layer("features").output_shape == (None, 16, 16, 64)
    assert larger.get_layer("heads").get_layer("roi_align").stride == 8
    assert not isinstance(larger.get_layer("features").get_layer("vgg16").get_layer("block4_pool"),
                          keras.layers.Identity)
    assert [w.shape for w in vgg.weights] == [w.shape for w in larger.get_layer("features").weights]
    assert {name: tuple(output.shape) for name, output in larger.output.items()} == {
        "class": (None, None, 4), "box": (None, None, 12)}


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # Keras saving on NumPy 2
def test_a_saved_model_loads_with_its_two_halves(small_model, tmp_path):
    """What ``training.Run.fit`` does with the best checkpoint: save, load without compiling."""
    small_model.save(tmp_path / "best.keras")
    loaded = keras.models.load_model(tmp_path / "best.keras", compile=False)
    inputs = {"images": np.full((1, 128, 128, 3), 100, "uint8"), "rois": np.array([[[8, 8, 60, 50]]], "float32")}
    np.testing.assert_allclose(loaded.predict_on_batch(inputs)["box"], small_model.predict_on_batch(inputs)["box"],
                               atol=1e-6)
    assert loaded.get_layer("heads").get_layer("roi_align").pool_size == 2
    assert loaded.output_names == small_model.output_names == ["box", "class"]


def test_training_examples_are_positives_then_background_then_padding(tiny_scenes):
    split, proposals = tiny_scenes
    inputs, targets = fast_rcnn.training_examples(split[:6], proposals[:6], regions_per_image=48,
                                                  max_positives=8, rng=0)
    assert inputs["images"].shape == (6, 128, 128, 3) and inputs["images"].dtype == np.uint8
    assert inputs["rois"].shape == (6, 48, 4) and targets["box"].shape == (6, 48, 5)
    np.testing.assert_array_equal(targets["class"], targets["box"][..., 0])
    loose_positives = 0
    for (_, boxes, labels), rois, label_row, target_rows in zip(split, inputs["rois"], targets["class"],
                                                                targets["box"]):
        positive = label_row > 0
        count = int(positive.sum())
        assert 1 <= count <= 8 and positive[:count].all()           # positives first
        # Each image's objects come first, with their own labels and zero deltas.
        np.testing.assert_array_equal(rois[:len(boxes)], boxes)
        np.testing.assert_array_equal(label_row[:len(boxes)], labels + 1)
        np.testing.assert_allclose(target_rows[:len(boxes), 1:], 0.0, atol=1e-6)
        # The deltas of every positive lead to an object's box.
        refined = box_regression.decode(rois[positive], target_rows[positive, 1:],
                                        box_regression.TRAINING_WEIGHTS)
        assert np.allclose(detection.iou(refined, boxes).max(axis=1), 1.0, atol=1e-5)
        # Fast R-CNN's ranges: foreground IoU >= 0.5, background below 0.5.
        positive_iou = detection.iou(rois[positive], boxes).max(axis=1)
        assert (positive_iou >= 0.5).all()
        assert (detection.iou(rois[label_row == 0], boxes) < 0.5).all()
        loose_positives += int(((positive_iou >= 0.5) & (positive_iou <= 0.7)).sum())
        padding = label_row == fast_rcnn.PADDING
        assert (target_rows[padding, 1:] == 0).all() and (np.flatnonzero(padding) >= 48 - padding.sum()).all()
    assert loose_positives > 0          # R-CNN's rule (IoU > 0.7) would have left these out
    # An image without enough background is padded: here its only proposal is one corner.
    _, boxes, labels = split[0]
    rois, rows = fast_rcnn.image_regions([[0, 0, 4, 4]], boxes, labels, regions_per_image=16, rng=0)
    assert rois.shape == (16, 4) and rows.shape == (16, 5)
    assert (rows[:len(boxes), 0] > 0).all() and rows[len(boxes), 0] == 0
    assert (rows[len(boxes) + 1:, 0] == fast_rcnn.PADDING).all()


def test_region_draws_are_independent_draws_of_each_image(tiny_scenes):
    """``draws=3``: three draws on a second axis, each one as ``training_examples`` makes it; the
    objects' own boxes open every draw, the rest of the regions differ between draws."""
    split, proposals = tiny_scenes
    inputs, targets = fast_rcnn.training_examples(split[:4], proposals[:4], regions_per_image=32,
                                                  max_positives=8, rng=0, draws=3)
    assert inputs["images"].shape == (4, 128, 128, 3)
    assert inputs["rois"].shape == (4, 3, 32, 4) and targets["box"].shape == (4, 3, 32, 5)
    assert targets["class"].shape == (4, 3, 32)
    np.testing.assert_array_equal(targets["class"], targets["box"][..., 0])
    for (_, boxes, labels), rois, label_rows in zip(split, inputs["rois"], targets["class"]):
        for draw in range(3):
            np.testing.assert_array_equal(rois[draw, :len(boxes)], boxes)
            np.testing.assert_array_equal(label_rows[draw, :len(boxes)], labels + 1)
    assert not np.array_equal(inputs["rois"][:, 0], inputs["rois"][:, 1])
    assert not np.array_equal(inputs["rois"][:, 1], inputs["rois"][:, 2])


def test_padded_regions_do_not_change_the_loss(small_model, tiny_scenes):
    split, proposals = tiny_scenes
    inputs, targets = fast_rcnn.training_examples(split[:4], proposals[:4], regions_per_image=40, rng=1)
    extra = 24
    padded_inputs = {"images": inputs["images"],
                     "rois": np.concatenate([inputs["rois"], np.tile([[0, 0, 0, 0], [5, 9, 60, 80]],
                                                                     (4, extra // 2, 1))], axis=1)}
    padding_rows = np.zeros((4, extra, 5), "float32")
    padding_rows[..., 0] = fast_rcnn.PADDING
    padded_box = np.concatenate([targets["box"], padding_rows], axis=1)
    padded_targets = {"class": padded_box[..., 0].astype("int32"), "box": padded_box}
    small_model.compile(optimizer="adam", loss=fast_rcnn.losses(), metrics=fast_rcnn.metrics(small_model))
    plain = small_model.evaluate(inputs, targets, batch_size=4, verbose=0, return_dict=True)
    padded = small_model.evaluate(padded_inputs, padded_targets, batch_size=4, verbose=0, return_dict=True)
    assert plain["box_loss"] > 0 and plain["class_loss"] > 0
    for key in ("loss", "class_loss", "box_loss", "class_accuracy"):
        assert padded[key] == pytest.approx(plain[key], rel=1e-5), key
    # The plain smooth-L1 would count padding rows in its mean: box_loss is what keeps it.
    predictions = small_model.predict_on_batch(padded_inputs)["box"]
    mean_of_all = keras.ops.convert_to_numpy(box_regression.smooth_l1_loss(padded_box, predictions)).mean()
    assert mean_of_all < 0.9 * plain["box_loss"]


def test_per_class_boxes_and_selection():
    proposals = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [40, 40, 50, 50]], "float64")
    probabilities = np.array([[0.10, 0.90, 0.00], [0.20, 0.80, 0.00], [0.30, 0.00, 0.70], [0.40, 0.60, 0.00]])
    shared = np.repeat(proposals[:, None], 2, axis=1)
    # As test_rcnn's hand-computed case: box 1 overlaps box 0 (IoU 0.82), box 3 is below 0.65.
    boxes, scores, labels = detection.select_detections(shared, probabilities, 0.65, 0.3)
    assert boxes.tolist() == [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert scores.tolist() == [0.9, 0.7] and labels.tolist() == [0, 1]
    # Zero deltas keep the proposals; a class's own deltas move its box only; the image clips.
    deltas = np.zeros((4, 8))
    np.testing.assert_allclose(box_regression.refine_boxes(proposals, deltas, (48, 48, 3))[:3], shared[:3])
    deltas[2, 4:] = box_regression.encode([[20, 20, 30, 30]], [[22, 20, 32, 30]],
                                          box_regression.TRAINING_WEIGHTS)[0]
    refined = box_regression.refine_boxes(proposals, deltas, (48, 48, 3))
    np.testing.assert_allclose(refined[2], [[20, 20, 30, 30], [22, 20, 32, 30]], atol=1e-9)
    np.testing.assert_allclose(refined[3, 0], [40, 40, 48, 48])
    # Boxes moved onto each other by regression are suppressed, unlike their proposals.
    moved = shared.copy()
    moved[1, 0] = moved[0, 0]
    assert len(detection.select_detections(moved, probabilities, 0.65, 0.0)[0]) == 2
    assert len(detection.select_detections(shared, probabilities, 0.65, 0.9)[0]) == 3


def test_detector_heads_give_the_training_models_probabilities(small_model, tiny_scenes):
    split, proposals = tiny_scenes
    settings = {"class_names": [str(c) for c in CLASSES], "proposals": "fast", "max_proposals": 100,
                "score_threshold": 0.0, "nms_iou": 0.3}
    detector = fast_rcnn.FastRCNNDetector(small_model, settings)
    image, candidates = split[1][0], proposals[1][:70]                     # padded to 96
    probabilities, deltas = detector.region_outputs(detector.image_features(image), candidates)
    expected = small_model.predict_on_batch({"images": image[None], "rois": candidates[None].astype("float32")})
    np.testing.assert_allclose(probabilities, expected["class"][0], atol=1e-5)
    np.testing.assert_allclose(deltas, expected["box"][0], atol=1e-5)
    timings = {}
    (boxes, scores, labels), unmoved = detector.detect_with_and_without_regression(image, timings,
                                                                                   proposals=candidates)
    assert set(timings) == {"features", "heads", "nms"} and len(boxes) == len(scores) == len(labels) > 0
    # Without the deltas, every detection is one of the proposals.
    assert (detection.iou(unmoved[0], candidates).max(axis=1) > 1 - 1e-9).all()
    assert not (detection.iou(boxes, candidates).max(axis=1) > 1 - 1e-9).all()


def tiny_map(model, split, proposals):
    settings = {"class_names": [str(c) for c in CLASSES], "proposals": "fast", "max_proposals": 2000,
                "score_threshold": 0.05, "nms_iou": 0.3}
    detector = fast_rcnn.FastRCNNDetector(model, settings)
    found = [detector.detect(image, proposals=candidates) for (image, _, _), candidates in zip(split, proposals)]
    return detection.mean_average_precision(found, [(boxes, labels) for _, boxes, labels in split], 0.5,
                                            num_classes=len(CLASSES))["map"]


def test_a_few_epochs_on_a_few_scenes_detect_digits(tiny_scenes):
    split, proposals = tiny_scenes[0][:16], tiny_scenes[1][:16]
    keras.utils.set_random_seed(1)
    model = fast_rcnn.build_fast_rcnn(10, image_scale=1, feature_stride=8, pool_size=2, head_units=128,
                                      dropout=0.0)
    # 80 steps only: batch normalisation's moving averages (momentum 0.99: ~460 steps to forget
    # their start) would lag far behind the batch statistics the model trained with.
    for layer in model.get_layer("features").get_layer("vgg16").layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.9
    untrained = tiny_map(model, split, proposals)
    inputs, targets = fast_rcnn.training_examples(split, proposals, rng=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss=fast_rcnn.losses(), metrics=fast_rcnn.metrics(model))
    history = model.fit(backend.batches(inputs, targets, 2, shuffle=True, seed=0), epochs=10, verbose=0)
    assert history.history["class_accuracy"][-1] > 0.9
    trained = tiny_map(model, split, proposals)                             # the scenes it saw
    print(f"mAP@0.5 on its 16 training scenes: {untrained:.3f} untrained, {trained:.3f} trained")
    assert untrained < 0.05 < 0.2 < trained, (untrained, trained)
