"""Week 5 R-CNN lab: detection post-processing and box regression by hand, batching, VGG16 topology,
the CLI end to end (ten classes with box regression by default, one class without)."""
import json

import cv2
import h5py
import keras
import numpy as np
import pytest

from dlcourse import box_regression, cli, detection, digit_pretraining, fast_rcnn, scenes
from labs import rcnn
from tests.conftest import read_metrics, run_lab

DETECT_ERROR = "python -m labs.rcnn detect: error:"


# --- post-processing and crops, by hand ---------------------------------------------

def test_threshold_then_nms_per_class():
    proposals = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [40, 40, 50, 50]]
    probabilities = np.array([  # background, class 0, class 1
        [0.10, 0.90, 0.00],     # best class-0 box
        [0.20, 0.80, 0.00],     # overlaps it (IoU 0.82): suppressed
        [0.30, 0.00, 0.70],     # class 1, above 0.65
        [0.40, 0.60, 0.00],     # below the threshold
    ])
    boxes, scores, labels = detection.select_detections(proposals, probabilities, 0.65, 0.3)
    assert boxes.tolist() == [[0, 0, 10, 10], [20, 20, 30, 30]]
    assert scores.tolist() == [0.9, 0.7] and labels.tolist() == [0, 1]
    # Overlapping boxes of different classes do not suppress each other.
    probabilities[1] = [0.1, 0.0, 0.9]
    boxes, _, labels = detection.select_detections(proposals, probabilities, 0.65, 0.3)
    assert len(boxes) == 3 and sorted(labels.tolist()) == [0, 1, 1]
    empty = detection.select_detections(np.zeros((0, 4)), np.zeros((0, 3)))
    assert [len(part) for part in empty] == [0, 0, 0]


def test_each_class_is_selected_among_its_own_regressed_boxes():
    proposals = [[0, 0, 20, 20], [40, 40, 60, 60]]
    # Class 0's head moves the first proposal right by a quarter of its width (t_x = 0.25,
    # × 10 as trained); class 1's leaves it.  The second proposal is twice as wide for class 1.
    deltas = np.zeros((2, 8))
    deltas[0, 0] = 0.25 * box_regression.TRAINING_WEIGHTS[0]
    deltas[1, 4 + 2] = np.log(2) * box_regression.TRAINING_WEIGHTS[2]
    boxes = box_regression.refine_boxes(proposals, deltas, image_shape=(64, 64, 3))
    assert boxes.shape == (2, 2, 4)
    np.testing.assert_allclose(boxes[0], [[5, 0, 25, 20], [0, 0, 20, 20]])
    np.testing.assert_allclose(boxes[1], [[40, 40, 60, 60], [30, 40, 64, 60]])   # clipped at x = 64
    probabilities = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    found, scores, labels = detection.select_detections(boxes, probabilities, 0.65, 0.3)
    assert labels.tolist() == [0, 1] and scores.tolist() == [0.8, 0.8]
    np.testing.assert_allclose(found, [[5, 0, 25, 20], [30, 40, 64, 60]])
    # Off the image altogether: still a box (one pixel wide), so NMS and IoU accept it.
    far = box_regression.refine_boxes([[50, 0, 60, 10]], [[30.0, 0, 0, 0]], image_shape=(64, 64, 3))[0, 0]
    assert far[2] - far[0] >= 1 and far[0] <= 64


def test_box_targets_move_each_region_onto_its_ground_truth():
    image, truth, labels = np.zeros((64, 64, 3), dtype=np.uint8), np.array([[10.0, 10, 40, 44]]), np.array([7])
    shifted = truth + [3, -2, 4, 1]                              # IoU 0.76: a positive
    proposals = np.concatenate([shifted, [[50, 50, 60, 60]]])    # and a background region
    config = cli.make_config(rcnn.parser, context=4, max_negatives=1)
    crops, region_labels, targets = rcnn.sample_crops([(image, truth, labels)], [proposals], config,
                                                      rng=0, box_targets=True)
    # Regions: the ground-truth box itself, the shifted proposal, the background one.
    assert crops.shape == (3, 32, 32, 3) and region_labels.tolist() == [8, 8, 0]
    np.testing.assert_array_equal(targets[:, 0], region_labels)
    np.testing.assert_allclose(targets[0, 1:], 0, atol=1e-6)
    # The targets are of the region box, not of the larger box its crop shows (the context).
    moved = box_regression.decode(shifted, targets[1:2, 1:], box_regression.TRAINING_WEIGHTS)
    np.testing.assert_allclose(moved, truth, atol=1e-3)
    np.testing.assert_array_equal(targets[2, 1:], 0)             # background: ignored by the loss
    two = rcnn.sample_crops([(image, truth, labels)], [proposals], config, rng=0)
    assert len(two) == 2 and (two[1] == region_labels).all()    # without box_targets: as before
    # A loose proposal (IoU 0.5-0.7) trains the box head only: class label BOX_ONLY, which the class
    # loss skips, and a box target of its digit's class.
    loose = truth + [0, 0, 0, 20]                                # 1020 / 1620 ≈ 0.63
    crops, region_labels, targets = rcnn.sample_crops([(image, truth, labels)], [np.concatenate([proposals, loose])],
                                                      config, rng=0, box_targets=True)
    assert region_labels.tolist() == [8, 8, 0, rcnn.BOX_ONLY] and targets[3, 0] == 8
    moved = box_regression.decode(loose, targets[3:, 1:], box_regression.TRAINING_WEIGHTS)
    np.testing.assert_allclose(moved, truth, atol=1e-3)
    probabilities = np.full((4, 11), 0.01, dtype="float32")
    probabilities[np.arange(3), [8, 8, 0]] = 0.9
    class_loss = float(rcnn.LOSSES["class"](region_labels, probabilities))
    assert class_loss == pytest.approx(-np.log(0.9), rel=1e-4)     # the loose row counts for nothing
    without = rcnn.sample_crops([(image, truth, labels)], [np.concatenate([proposals, loose])],
                                cli.make_config(rcnn.parser, context=4, max_negatives=1, loose_regions=0),
                                rng=0, box_targets=True)
    assert without[1].tolist() == [8, 8, 0]


def test_context_enlarges_the_box_about_its_centre():
    # 32-pixel crops with 4 pixels of context: the box fills the middle 24, so it grows by 32/24.
    np.testing.assert_allclose(rcnn.with_context([[10, 20, 34, 44]], 32, 4), [[6, 16, 38, 48]])
    np.testing.assert_allclose(rcnn.with_context([[10, 20, 34, 44]], 32, 0), [[10, 20, 34, 44]])
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    image[20:44, 10:34] = 255                                   # the box itself is white
    crop = rcnn.region_crops(image, [[10, 20, 34, 44]], 32, context=4)[0]
    assert (crop[6:26, 6:26] == 255).all() and (crop[:3] == 0).all() and (crop[:, -3:] == 0).all()


def test_square_crops_keep_a_thin_region_thin_and_pad_outside_the_image():
    # A "1"-like bar, 6 × 24: warped, it fills the crop's width; squared, it keeps its shape.
    image = np.full((64, 64, 3), 40, dtype=np.uint8)
    image[20:44, 29:35] = 255
    square = rcnn.with_context([[29, 20, 35, 44]], 32, 4, square=True)
    np.testing.assert_allclose(square, [[16, 16, 48, 48]])         # 24 × 24 about (32, 32), then 32/24
    warped = rcnn.region_crops(image, [[29, 20, 35, 44]], 32, context=4)[0]
    kept = rcnn.region_crops(image, [[29, 20, 35, 44]], 32, context=4, square=True)[0]
    assert (warped[16, 6:26] == 255).all()                          # stretched across the middle 24
    ink_columns = np.flatnonzero(kept[16, :, 0] > 150)
    assert 5 <= len(ink_columns) <= 8 and abs(ink_columns.mean() - 15.5) < 1
    # At the image's edge the square reaches outside: that part is the image's mean colour, and
    # the bar still keeps its shape instead of being stretched into what is left.
    image[20:44, 0:6] = 255
    edge = rcnn.region_crops(image, [[0, 20, 6, 44]], 32, context=4, square=True)[0]
    mean = image.reshape(-1, 3).mean(axis=0)
    assert np.abs(edge[16, 0].astype(float) - mean).max() <= 1
    assert 5 <= len(np.flatnonzero(edge[16, :, 0] > 150)) <= 8


# --- batched classification is the same as one crop at a time ------------------------

@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(0)
    return rcnn.build_model(num_classes=2, width=0.125, crop_size=32)   # with the box head


def test_the_box_head_is_a_second_output_and_optional(small_model):
    assert set(small_model.output) == {"class", "box"} and rcnn.has_box_head(small_model)
    assert small_model.output["class"].shape == (None, 3) and small_model.output["box"].shape == (None, 8)
    # The classifier reads the dense layers over pool5 (1×1 on a 32×32 crop); the box head reads
    # block 5's 2×2 map before that pool, which still says where in the crop the digit lies.
    assert small_model.get_layer("flatten").input.shape == (None, 1, 1, 64)
    assert small_model.get_layer("box_features").input.shape == (None, 2, 2, 64)
    # Where pool5 keeps a layout (VGG16 at 224: 7×7) the box head reads pool5 itself, as R-CNN's.
    large = rcnn.with_layout_output(rcnn.vgg16_backbone((64, 64, 3), width=0.125))
    assert [tuple(output.shape) for output in large.outputs] == [(None, 2, 2, 64)] * 2
    classifier = rcnn.build_model(num_classes=2, width=0.125, crop_size=32, box_head=False)
    assert classifier.output_shape == (None, 3) and not rcnn.has_box_head(classifier)
    assert rcnn.class_columns(classifier) == rcnn.class_columns(small_model) == 3


def test_batched_classification_equals_one_crop_at_a_time(small_model):
    image, _, _ = scenes.make_scene_set(1, seed=3, split="test")[0]
    proposals = rcnn.detection.selective_search(image)[:10]
    crops = rcnn.region_crops(image, proposals, 32, context=4)
    calls = []
    original = small_model.predict_on_batch

    def counting(batch):
        calls.append(len(batch))
        return original(batch)

    small_model.predict_on_batch = counting
    try:
        batched = rcnn.classify_crops(small_model, crops, batch_size=4)
    finally:
        del small_model.predict_on_batch
    assert calls == [4, 4, 2]                                   # one call per batch, not per crop
    assert batched["class"].shape == (10, 3) and batched["box"].shape == (10, 8)
    one_by_one = rcnn.classify_one_by_one(small_model, crops[:4])
    for output in ("class", "box"):
        np.testing.assert_allclose(batched[output][:4], one_by_one[output], atol=1e-5)
        assert np.ptp(batched[output][:, 0]) > 0                # different crops, different outputs
    nothing = rcnn.classify_crops(small_model, crops[:0])
    assert nothing["class"].shape == (0, 3) and nothing["box"].shape == (0, 8)


def test_detector_gives_the_same_boxes_batched_or_not(small_model):
    settings = {"class_names": ["0", "1"], "proposals": "fast", "max_proposals": 30, "context": 4,
                "score_threshold": 0.3, "nms_iou": 0.3, "predict_batch": 256}
    detector = rcnn.Detector(small_model, settings)
    image, _, _ = scenes.make_scene_set(1, seed=4, split="test")[0]
    timings = {}
    batched = detector.detect(image, timings)
    assert set(timings) == set(rcnn.STAGES) and all(len(value) == 1 for value in timings.values())
    one_by_one = detector.detect(image, classify=lambda crops: rcnn.classify_one_by_one(small_model, crops))
    np.testing.assert_allclose(batched[0], one_by_one[0], atol=1e-3)  # regressed: float noise of the deltas
    np.testing.assert_array_equal(batched[2], one_by_one[2])
    np.testing.assert_allclose(batched[1], one_by_one[1], atol=1e-5)
    # One classification, two selections: the regressed boxes and the proposals' own.
    proposals = detector.propose(image)
    regressed, plain = detector.detect_with_and_without_regression(image, proposals=proposals)
    assert len(plain[0]) and all(box.tolist() in proposals.tolist() for box in plain[0])
    assert not any(box.tolist() in proposals.tolist() for box in regressed[0])
    np.testing.assert_allclose(regressed[0], batched[0])


# --- the model: VGG16's topology ------------------------------------------------------

def test_full_width_backbone_is_vgg16_and_loads_its_weight_file(tmp_path):
    from keras.src.legacy.saving import legacy_h5_format

    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    ours = rcnn.vgg16_backbone((32, 32, 3), width=1.0, batch_norm=False)
    assert [layer.name for layer in ours.layers[1:]] == [layer.name for layer in reference.layers[1:]]
    assert [w.shape for w in ours.weights] == [w.shape for w in reference.weights]
    assert len(reference.weights) == 26                         # 13 convolutions: kernel + bias

    # A weight file in the format of Keras's ImageNet file (legacy HDF5, by layer name).
    path = tmp_path / "vgg16_notop.h5"
    with h5py.File(path, "w") as store:
        legacy_h5_format.save_weights_to_hdf5_group(store, reference)
    ours.load_weights(path)
    np.testing.assert_array_equal(ours.get_layer("block5_conv3").get_weights()[0],
                                  reference.get_layer("block5_conv3").get_weights()[0])

    # --weights PATH: keras.applications.VGG16 at 224 with that file, the first 15 layers frozen.
    model = rcnn.build_model(num_classes=1, weights=str(path), head_units=8)
    backbone = model.get_layer("vgg16")
    assert model.input_shape == (None, 224, 224, 3)
    np.testing.assert_array_equal(backbone.get_layer("block1_conv1").get_weights()[0],
                                  reference.get_layer("block1_conv1").get_weights()[0])
    assert [layer.trainable for layer in backbone.layers] == [False] * 15 + [True] * 4
    assert backbone.layers[14].name == "block4_pool" and rcnn.class_columns(model) == 2
    assert model.output["box"].shape == (None, 4)

    # Smaller widths keep the layers, with a fraction of the channels.
    narrow = rcnn.vgg16_backbone((32, 32, 3), width=0.125, batch_norm=True)
    assert narrow.get_layer("block5_conv3").filters == 64 and narrow.output_shape == (None, 1, 1, 64)
    assert narrow.get_layer("block1_conv1_bn") is not None


def test_imagenet_weights_are_the_file_keras_applications_downloads():
    # The lab spells out Keras's address instead of importing it from keras.src (private).
    from keras.src.applications import vgg16

    assert rcnn.VGG16_NO_TOP_URL == vgg16.WEIGHTS_PATH_NO_TOP
    assert rcnn.VGG16_NO_TOP_URL.endswith("/" + rcnn.VGG16_NO_TOP_FILE)


def test_a_weight_file_that_is_not_vgg16_is_one_line(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as store:
        store.attrs["layer_names"] = [b"dense"]
    with pytest.raises(rcnn.DataError, match="not a VGG16 weight file"):
        rcnn.build_model(num_classes=1, weights=str(path))


# --- evaluation ranks every detection; the threshold only decides what is shown ---------

class ListedDetections:
    """A stand-in detector whose detections of every image are given (one class, no box head)."""

    stages = ("proposals", "crops", "classification", "nms")
    class_names = ("digit",)
    box_regression = False

    def __init__(self, detections):
        self.settings = {"score_threshold": 0.65}
        self.detections = iter(detections)
        self.thresholds = []

    def propose(self, image):
        return np.array([[5, 5, 20, 20], [30, 30, 50, 50]], dtype="float64")

    def detect_with_and_without_regression(self, image, timings, proposals, score_threshold):
        self.thresholds.append(score_threshold)
        for stage in self.stages[1:]:
            timings.setdefault(stage, []).append(0.001)
        boxes, scores = next(self.detections)
        keep = scores > score_threshold
        found = (boxes[keep], scores[keep], np.zeros(keep.sum(), dtype="int64"))
        return found, found


def test_map_ranks_every_detection_and_the_threshold_only_decides_what_is_shown():
    truth = np.array([[5, 5, 20, 20], [30, 30, 50, 50]], dtype="float64")
    split = [(np.zeros((64, 64, 3), dtype="uint8"), truth, np.zeros(2, dtype="int64"))] * 2
    # Image 1: both objects found, the second below the course's 0.65; image 2: one confident false
    # positive (scored below the true detections) and one object found at 0.4.
    detections = [(np.array([[5, 5, 20, 20], [30, 30, 50, 50], [0, 40, 10, 60]], dtype="float64"),
                   np.array([0.9, 0.3, 0.02])),
                  (np.array([[40, 0, 60, 20], [5, 5, 20, 20]], dtype="float64"), np.array([0.8, 0.4]))]
    detector = ListedDetections(detections)
    metrics, shown = rcnn.evaluate(detector, split, progress=False)
    assert detector.thresholds == [rcnn.RANKED_SCORE_THRESHOLD] * 2
    # Ranked: TP 0.9, FP 0.8, TP 0.4, TP 0.3 (0.02 is below 0.05) of 4 objects.
    assert metrics["map50"] == pytest.approx(0.25 * 1 + 0.5 * 0.75)
    # Shown (> 0.65): TP 0.9, FP 0.8: recall 1/4 at precision 1.
    assert metrics["map50_shown"] == pytest.approx(0.25)
    assert metrics["map50"] >= metrics["map50_shown"]
    assert [list(scores) for _, scores, _ in shown] == [[0.9], [0.8]]
    assert metrics["recall50"] == 0.25 and metrics["detections_per_image"] == 1.0
    assert (metrics["ranked_score_threshold"], metrics["score_threshold"]) == (0.05, 0.65)


# --- the lab end to end, as a user runs it ------------------------------------------

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``python -m labs.week5 --smoke``: generate → sample → train → evaluate, once for the module."""
    out = tmp_path_factory.mktemp("week5")
    # The training images' proposals in "fast" mode (quicker); the detector keeps the default, "quality".
    result = run_lab("labs.week5", "--smoke", "--epochs", 2, "--training-proposals", "fast", "--out", out)
    return out, result


def test_week5_smoke_run_trains_and_evaluates(smoke_run):
    out, result = smoke_run
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = out / "rcnn"
    metrics = read_metrics(run_dir)
    # The defaults: the ten digits as ten classes, with box regression, scored both ways at two IoUs.
    assert metrics["class_names"] == [str(digit) for digit in range(10)] and metrics["box_regression"] is True
    for name in ("map50", "map75", "map50_no_regression", "map75_no_regression", "map50_shown", "map75_shown"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert metrics["map50"] >= metrics["map50_shown"]   # the shown detections are a top slice of the ranked
    assert metrics["epochs"] == 2
    test_digits = {str(label) for _, _, labels in scenes.make_scene_set(
        rcnn.SMOKE_SCENES["test"], seed=1 + 2, split="test", classes=rcnn.ALL_DIGITS) for label in labels}
    assert set(metrics["ap50_per_class"]) == test_digits       # every class the test images hold
    assert all(0.0 <= value <= 1.0 for value in metrics["ap50_per_class"].values())
    assert set(metrics["latency_ms"]) == {"proposals", "crops", "classification", "nms", "total"}
    assert all(value > 0 for value in metrics["latency_ms"].values())
    assert metrics["proposal_recall50"] > 0.5                  # selective search finds digits
    assert metrics["test_images"] == rcnn.SMOKE_SCENES["test"]
    assert 0.05 < metrics["train_positive_fraction"] < 0.95
    for name in ("checkpoints/best.keras", "detector.json", "curves.png", "detections.png",
                 "proposals/train.npz", "proposals/validation.npz"):
        assert (run_dir / name).is_file(), name
    settings = json.loads((run_dir / "detector.json").read_text())
    assert settings["box_regression"] is True and settings["proposals"] == "quality"
    # --training-proposals fast: the cached proposals of the training images are fast mode's.
    train_images = scenes.make_scene_set(rcnn.SMOKE_SCENES["train"], seed=1, split="train",
                                         classes=rcnn.ALL_DIGITS)
    with np.load(run_dir / "proposals" / "train.npz") as stored:
        first = stored["boxes"][:stored["counts"][0]]
    np.testing.assert_array_equal(first, detection.selective_search(train_images[0][0], mode="fast"))
    history = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"class_loss", "box_loss", "class_accuracy", "val_box_loss"} <= set(history)
    assert "mAP@0.75" in result.stdout and "without box regression" in result.stdout
    row = next(line for line in result.stdout.split("week5: 1 lab(s)")[1].splitlines()
               if line.startswith("rcnn"))
    assert "map50" in row and str(metrics["map50"]) in row


def test_classes_any_makes_every_digit_one_class():
    """``--classes any``, the first lab's one class: every synthetic digit is a "digit"."""
    config = cli.make_config(rcnn.parser, smoke=True, classes="any")
    prepared = rcnn.load_data(config)
    assert list(prepared["class_names"]) == ["digit"]
    labels = np.concatenate([labels for split in prepared["splits"].values() for _, _, labels in split])
    assert len(labels) > 10 and set(labels.tolist()) == {0}


def test_detect_draws_boxes_on_an_image(smoke_run, tmp_path):
    out, _ = smoke_run
    detector = rcnn.load_detector(out / "rcnn")                 # the saved two-output model loads
    assert detector.box_regression and detector.class_names == tuple("0123456789")
    image, _, _ = scenes.make_scene_set(1, seed=11, split="test")[0]
    image_path, boxed = tmp_path / "scene.png", tmp_path / "boxed.png"
    cv2.imwrite(str(image_path), image[:, :, ::-1])
    # A two-epoch model is unsure of everything: a low threshold gives it boxes to draw.
    result = run_lab("labs.rcnn", "detect", image_path, "--run", out / "rcnn", "--out", boxed,
                     "--score-threshold", 0.05)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    count = int(lines[-1].split()[0])
    assert lines[-1].endswith(f"→ {boxed}") and count == len(lines) - 1 and count > 0
    drawn = scenes.read_image(boxed)
    assert drawn.shape == image.shape and (drawn != image).any()


def test_detect_errors_are_one_line(smoke_run, tmp_path, capsys):
    out, _ = smoke_run
    image_path = tmp_path / "scene.png"
    cv2.imwrite(str(image_path), np.zeros((40, 40, 3), dtype=np.uint8))
    cases = [([str(tmp_path / "missing.png"), "--run", str(out / "rcnn")], "could not be read"),
             ([str(image_path), "--run", str(tmp_path / "nope")], "no such run directory"),
             ([str(image_path), "--run", str(tmp_path)], "not a rcnn run directory")]
    for arguments, words in cases:
        assert rcnn.main(["detect", *arguments, "--out", str(tmp_path / "o.png")]) == 1
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith(DETECT_ERROR) and words in error, error
    assert rcnn.main(["detect", str(image_path)]) == 2          # --run is required
    assert "--run" in capsys.readouterr().err


def test_imagenet_weights_offline_is_one_line(tmp_path):
    # No network here (and a proxy that refuses, in case there is): the download must fail cleanly.
    environment = {"KERAS_HOME": str(tmp_path / "keras"), "HTTPS_PROXY": "http://127.0.0.1:9",
                   "https_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}
    result = run_lab("labs.rcnn", "--smoke", "--weights", "imagenet", "--out", tmp_path / "run",
                     env=environment, timeout=120)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("python -m labs.rcnn")]
    assert len(errors) == 1 and "could not download the ImageNet weights" in errors[0]
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


def test_course_format_folder_trains_and_detects(tmp_path, capsys):
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    for index, (image, boxes, _) in enumerate(scenes.make_scene_set(6, seed=21)):
        cv2.imwrite(str(images / f"plane_{index}.png"), image[:, :, ::-1])
        lines = [str(len(boxes))] + [" ".join(map(str, box)) for box in boxes.tolist()]
        (annotations / f"plane_{index}.csv").write_text("\n".join(lines) + "\n")
    run_dir = tmp_path / "run"
    # One class without box regression: the first lab's detector, on the course's folder format.
    arguments = ["--smoke", "--epochs", "1", "--verbose", "0", "--proposals", "fast", "--images", str(images),
                 "--annotations", str(annotations), "--no-box-regression", "--out", str(run_dir)]
    assert rcnn.main(arguments) == 0, capsys.readouterr().err
    metrics = read_metrics(run_dir)
    assert metrics["class_names"] == ["object"] and metrics["box_regression"] is False
    assert (metrics["train_images"], metrics["test_images"]) == (4, 1)
    assert metrics["objects_per_image"] >= 1 and 0.0 <= metrics["map75"] <= metrics["map50"] <= 1.0
    assert "map50_no_regression" not in metrics and "ap50_per_class" not in metrics
    detector = rcnn.load_detector(run_dir)
    assert not detector.box_regression and detector.model.output_shape == (None, 2)
    assert json.loads((run_dir / "detector.json").read_text())["box_regression"] is False
    # A malformed annotation stops the lab with one line naming the file, before any run directory.
    (annotations / "plane_3.csv").write_text("2\n1 2 3 4\n")
    assert rcnn.main([*arguments[:-1], str(tmp_path / "run2")]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "plane_3.csv" in error and not (tmp_path / "run2").exists()


def test_fast_rcnn_method_trains_evaluates_and_detects(tmp_path, capsys):
    """``--method fast``: the same lab, data and evaluation; the CNN runs once per image."""
    run_dir = tmp_path / "run"
    arguments = ["--smoke", "--method", "fast", "--classes", "0,1", "--epochs", "2", "--verbose", "0",
                 "--proposals", "fast", "--out", str(run_dir)]
    assert rcnn.main(arguments) == 0, capsys.readouterr().err
    metrics = read_metrics(run_dir)
    assert metrics["method"] == "fast" and metrics["class_names"] == ["0", "1"] and metrics["epochs"] == 2
    assert set(metrics["latency_ms"]) == {"proposals", "features", "heads", "nms", "total"}
    assert 0.0 <= metrics["map75"] <= metrics["map50"] <= 1.0 and 0.0 <= metrics["map50_no_regression"] <= 1.0
    assert metrics["input_size"] == scenes.SCENE_SIZE and metrics["proposal_recall50"] > 0.5
    # Its default backbone was first trained on digits, and the run keeps those weights.
    assert metrics["weights"] == "digits" and metrics["pretraining_seconds"] > 0
    assert len(digit_pretraining.read_weights(run_dir / rcnn.PRETRAINED_BACKBONE)) == 26
    history = (run_dir / "history.csv").read_text().splitlines()[0].split(",")
    assert {"class_loss", "box_loss", "class_accuracy", "val_class_accuracy"} <= set(history)
    assert json.loads((run_dir / "detector.json").read_text())["method"] == "fast"
    # The saved checkpoint loads as a Fast R-CNN detector, which finds boxes on a new scene.
    detector = rcnn.load_detector(run_dir)
    assert isinstance(detector, fast_rcnn.FastRCNNDetector) and detector.class_names == ("0", "1")
    image, _, _ = scenes.make_scene_set(1, seed=11, split="test", classes=(0, 1))[0]
    detector.settings["score_threshold"] = 0.05
    timings = {}
    boxes, scores, labels = detector.detect(image, timings)
    assert set(timings) == {"proposals", "features", "heads", "nms"}
    assert len(boxes) == len(scores) == len(labels) > 0 and set(labels.tolist()) <= {0, 1}
    assert ((boxes[:, 2:] > boxes[:, :2]).all() and (boxes >= 0).all()
            and (boxes <= scenes.SCENE_SIZE).all())


def test_bad_flags_are_usage_errors(tmp_path, capsys):
    for arguments in (["--images", "x"], ["--classes", "1,1"], ["--context", "16"],
                      ["--score-threshold", "1.5"], ["--weights", "/no/such/file.h5"]):
        config_error = None
        try:
            rcnn.check_config(rcnn.parser.parse_args(arguments))
        except (cli.UsageError, rcnn.DataError) as error:
            config_error = error
        assert config_error is not None, arguments
    # Through the command line: one line, exit code 2, nothing trained or written.
    folder = str(tmp_path)
    for arguments, words in ((["--classes", "any,1"], "--classes"), (["--classes", "ten"], "--classes"),
                             (["--classes", "10"], "--classes"), (["--box-regression", "yes"], "unrecognized"),
                             (["--images", folder, "--annotations", folder, "--classes", "any"], "--classes"),
                             (["--images", folder, "--annotations", folder, "--classes", "0,1"], "--classes"),
                             (["--method", "fast", "--weights", "imagenet"], "--method fast"),
                             (["--method", "fast", "--images", folder, "--annotations", folder], "--method fast"),
                             (["--method", "fast", "--no-box-regression"], "box head"),
                             (["--method", "faster"], "--method"),
                             (["--loose-regions", "-1"], "--loose-regions"),
                             (["--near-negatives", "1.5"], "--near-negatives"),
                             (["--method", "fast", "--region-draws", "0"], "--region-draws"),
                             (["--method", "fast", "--scale-jitter", "-0.2"], "--scale-jitter")):
        assert rcnn.main([*arguments, "--out", str(tmp_path / "run")]) == 2, arguments
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and words in error, (arguments, error)
    assert not (tmp_path / "run").exists()
    # The ten-class default is the synthetic scenes': a course folder (one class) takes the defaults.
    rcnn.check_config(rcnn.parser.parse_args(["--images", folder, "--annotations", folder]))
    assert rcnn.parser.parse_args(["--classes", "any"]).classes == "any"
    assert rcnn.parser.parse_args(["--classes", "3,1"]).classes == (3, 1)


def test_each_method_has_its_own_epochs_and_weights_unless_given():
    """Without --epochs R-CNN trains 7 and Fast R-CNN 20 (its epochs are shorter); without
    --weights R-CNN starts from scratch and Fast R-CNN from the digit-pretrained backbone."""
    def defaults(*arguments):
        config = rcnn.resolve_defaults(rcnn.parser.parse_args(list(arguments)))
        return config.epochs, config.weights
    assert defaults() == (rcnn.EPOCHS["rcnn"], rcnn.WEIGHTS["rcnn"]) == (7, "none")
    assert defaults("--method", "fast") == (rcnn.EPOCHS["fast"], rcnn.WEIGHTS["fast"]) == (20, "digits")
    assert defaults("--method", "fast", "--epochs", "3", "--weights", "none") == (3, "none")
    assert defaults("--epochs", "3", "--weights", "digits") == (3, "digits")
    # Before resolve_defaults too (the notebook builds its model from the parsed config).
    assert rcnn.input_size(rcnn.parser.parse_args([])) == 32
    assert rcnn.weights_of(rcnn.parser.parse_args(["--method", "fast"])) == "digits"
    text = " ".join(rcnn.parser.format_help().split())      # as one line, however it wraps
    assert "training epochs (default: 7; with --method fast 20," in text
    assert "default: none, with --method fast digits." in text
