"""Fast R-CNN (Girshick 2015) for the week-5 scenes: the CNN runs once per image, not once per region.

R-CNN warps every proposal to a crop and runs the whole VGG16 on each: an
image with 130 proposals costs 130 forward passes.  Fast R-CNN runs the
convolutional part once on the whole image, then for every proposal pools
the part of the feature map under its box into a small fixed grid
(``dlcourse.roi_pooling``) and runs only the dense head per region:

    "features", once per image:
        uint8 image → [0, 1] → VGG16's conv blocks, without their last two poolings → feature map (stride 8)
    "heads", on every proposal of the image at once:
        feature map + proposals (image pixels) → RoIAlign P×P → flatten → dense → dense
            → softmax over background + classes     ("class")
            → 4 box deltas per class                  ("box")

The two parts are two sub-models, ``features`` and ``heads``, so that the
detector can time them apart and run the heads on all proposals of an image
in one call.  One network learns both outputs: cross-entropy on the classes
plus smooth-L1 on the true class's box deltas (``dlcourse.box_regression``).

Why stride 8: VGG16 without its last pooling has stride 16, so a 25-pixel
digit covers under two feature cells.  Measured on 300 training / 100
held-out ten-digit scenes: mAP@0.5 at the lab's 0.65 threshold, and how many
times less time "features" + "heads" take per image than R-CNN's crops +
classification of the same ~136 proposals (medians, interleaved, on the same
loaded 2-core CPU):

                                                   grid   mAP@0.5   faster
    stride 16, the image as it is (8×8 map)         4×4    0.00      4.8×
    stride 16, the image enlarged ×2 (16×16 map)    4×4    0.15      2.3×
    stride 8: block4_pool left out (16×16 map)      2×2    0.25      5.1×
                                                    4×4    0.26      4.1×
    R-CNN, 32×32 crops                                     0.32      1

(the first two trained for 750 steps of 4 images, the stride-8 models for
3000 of 2, R-CNN for 8 epochs.)  Enlarging the image makes every layer pay
for the finer map; leaving out block4_pool makes only block 5 pay for it.
With 600 training scenes R-CNN gains more (mAP 0.53, Fast R-CNN at 4×4
0.33): each warped crop shows its object at one size and place, while Fast
R-CNN must learn every size and offset on the feature grid, from fewer images.

Training examples are whole images, each with a fixed number of sampled
regions (``training_examples``): positives (the objects' own boxes, then
proposals with IoU ≥ 0.5), then background (IoU < 0.5, preferably ≥ 0.1),
and ``PADDING`` rows (label −1) when an image has too few; both losses
ignore those rows.  These are Fast R-CNN's ranges, not R-CNN's (> 0.7 and
< 0.3): one head both classifies and regresses here, and a region with IoU
0.5–0.7 is what the regression must learn to move.  On the lab's default
scenes (7 epochs) they raised mAP@0.75 from 0.347 to 0.464 and mAP@0.5 from
0.681 to 0.716 (R-CNN at its defaults: 0.822 and 0.905).

Fast R-CNN's backbone sees each training image once an epoch, R-CNN's sees
~50 crops of it, so Fast R-CNN needs more epochs; its epochs are about half
as long.  With ``draws`` the regions of an image are drawn several times and
each epoch trains on one draw (``backend.batches(..., variants=VARIANTS)``),
as the paper samples anew for every minibatch.  On the default scenes
(mAP@0.5 / @0.75, one run each): 7 epochs 0.716 / 0.464, 12 epochs 0.840 /
0.596, 20 epochs 0.825 / 0.599 (overfitted: training region accuracy 0.99,
validation 0.94); 8 draws: 12 epochs 0.862 / 0.648, 20 epochs 0.878 / 0.699
(``labs.rcnn.EPOCHS``, ``--region-draws``).  Most of what it still missed
were digits boxed but given another digit's class; a backbone first trained
to classify MNIST's digits (``dlcourse.digit_pretraining``, the lab's
default for Fast R-CNN, 6 epochs) gave 0.904 and 0.929 at IoU 0.5 on two
seeds, R-CNN's 0.905 and 0.903, and 0.69 and 0.79 at 0.75 (R-CNN 0.82).
"""

import keras
import numpy as np

from dlcourse import detection
from dlcourse.box_regression import detections, matched_boxes, regression_targets, smooth_l1_loss
from dlcourse.roi_pooling import RoIAlign
from dlcourse.scale_jitter import ScaleJitter
from dlcourse.vgg import vgg16_backbone

IMAGES, ROIS = "images", "rois"            # the model's inputs
CLASS, BOX = "class", "box"                # its outputs
FEATURES, HEADS = "features", "heads"      # its two sub-models
PADDING = -1                               # the label of a padding row
VARIANTS = (ROIS, CLASS, BOX)              # what differs between two draws of an image's regions
DEFAULT_IMAGE_SCALE = 1
DEFAULT_FEATURE_STRIDE = 8
DEFAULT_POOL_SIZE = 2
VGG16_DENSE_UNITS = 4096
STAGES = ("proposals", "features", "heads", "nms")
# Fast R-CNN §2.3: foreground IoU ≥ 0.5 with an object, background IoU in [0.1, 0.5).
POSITIVE_IOU, BACKGROUND_IOU = 0.5, 0.5


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------

def build_features(image_size=128, width=0.125, batch_norm=True, image_scale=DEFAULT_IMAGE_SCALE,
                   feature_stride=DEFAULT_FEATURE_STRIDE):
    """uint8 images (B, S, S, 3) → VGG16's block5_conv3 map (B, S·scale/stride, S·scale/stride, C).

    At stride 16 a 25-pixel digit covers under two feature cells, too coarse
    to pool a grid from.  Two ways to get a finer map: ``image_scale`` enlarges
    the image first (every layer then costs scale² more), ``feature_stride=8``
    leaves out ``block4_pool`` too, so that only block 5 runs on a larger map
    (the same layers and weight shapes, so ImageNet weights would still load).
    """
    if feature_stride not in (8, 16):
        raise ValueError(f"feature_stride must be 8 or 16, got {feature_stride}")
    images = keras.Input((image_size, image_size, 3), dtype="uint8", name=IMAGES)
    pixels = keras.layers.Rescaling(1 / 255, name="rescaling")(images)
    size = round(image_size * image_scale)
    if size != image_size:
        pixels = keras.layers.Resizing(size, size, interpolation="bilinear", name="upscaling")(pixels)
    backbone = vgg16_backbone((size, size, 3), width, batch_norm, last_pool=False)
    if feature_stride == 8:
        backbone = keras.models.clone_model(backbone, clone_function=_without_block4_pool)
    return keras.Model(images, backbone(pixels), name=FEATURES)


def _without_block4_pool(layer):
    """For ``clone_model``: a fresh copy of every layer, except block4_pool, which passes its input on."""
    if layer.name == "block4_pool":
        return keras.layers.Identity(name=layer.name)
    return layer.__class__.from_config(layer.get_config())


def build_heads(num_classes, feature_shape, stride, pool_size=DEFAULT_POOL_SIZE, head_units=512,
                dropout=0.5):
    """Feature map (B, h, w, C) + rois (B, R, 4) in image pixels → {"class": (B, R, classes + 1)
    softmax, "box": (B, R, 4 × classes)}: RoI pooling, then R-CNN's head on every region."""
    feature_map = keras.Input(feature_shape, name="feature_map")
    rois = keras.Input((None, 4), name=ROIS)
    pooled = RoIAlign(pool_size, stride, name="roi_align")([feature_map, rois])
    hidden = keras.layers.Reshape((-1, pool_size * pool_size * feature_shape[-1]), name="flatten")(pooled)
    for index in (1, 2):
        hidden = keras.layers.Dense(head_units, activation="relu", name=f"dense{index}")(hidden)
        hidden = keras.layers.Dropout(dropout, name=f"dropout{index}")(hidden)
    # float32 even under mixed precision: small probabilities and deltas must not round away.
    probabilities = keras.layers.Dense(num_classes + 1, activation="softmax", dtype="float32",
                                       name=CLASS)(hidden)
    # Fast R-CNN starts the box head near zero (std 0.001): "keep the proposal" at first.
    deltas = keras.layers.Dense(4 * num_classes, dtype="float32", name=BOX,
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))(hidden)
    return keras.Model([feature_map, rois], {CLASS: probabilities, BOX: deltas}, name=HEADS)


def build_fast_rcnn(num_classes, image_size=128, width=0.125, batch_norm=True, pool_size=DEFAULT_POOL_SIZE,
                    head_units=None, dropout=0.5, image_scale=DEFAULT_IMAGE_SCALE,
                    feature_stride=DEFAULT_FEATURE_STRIDE, scale_jitter=0.0, seed=None):
    """{"images": uint8 (B, S, S, 3), "rois": (B, R, 4)} → {"class": (B, R, classes + 1), "box": (B, R, 4 × classes)}.

    The same VGG16 layers as the R-CNN lab (``width`` of its channels,
    ``batch_norm``), run once per image without its last pooling (and without
    block4_pool at ``feature_stride=8``, the default: see the module's
    docstring), and the same head (two dense layers of ``head_units``, default
    4096 × width, with ``dropout``) on a ``pool_size`` × ``pool_size`` grid per
    region.  ``model.get_layer("features")`` and ``get_layer("heads")`` are the
    two halves (``FastRCNNDetector``).  ``scale_jitter`` > 0: while training,
    every image and its regions are zoomed by up to that much
    (``dlcourse.scale_jitter``).
    """
    features = build_features(image_size, width, batch_norm, image_scale, feature_stride)
    units = head_units or max(1, round(width * VGG16_DENSE_UNITS))
    heads = build_heads(num_classes, features.output_shape[1:], feature_stride / image_scale, pool_size,
                        units, dropout)
    images = keras.Input((image_size, image_size, 3), dtype="uint8", name=IMAGES)
    rois = keras.Input((None, 4), name=ROIS)
    seen_images, seen_rois = images, rois
    if scale_jitter:
        seen_images, seen_rois = ScaleJitter(scale_jitter, seed, name="scale_jitter")([images, rois])
    outputs = heads([features(seen_images), seen_rois])
    # Named layers at the top, so that model.output_names are "box" and "class", not "heads" twice.
    outputs = {name: keras.layers.Identity(name=name)(outputs[name]) for name in (CLASS, BOX)}
    return keras.Model({IMAGES: images, ROIS: rois}, outputs, name="fast_rcnn_vgg16")


# ---------------------------------------------------------------------------
# Losses and metric: padding rows (label −1) count for nothing
# ---------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="dlcourse")
def box_loss(y_true, y_pred):
    """``box_regression.smooth_l1_loss`` averaged over the real regions of the batch (background
    included, as in Fast R-CNN), not over the padding rows too: padding leaves it unchanged."""
    ops = keras.ops
    per_region = smooth_l1_loss(y_true, y_pred)
    real = ops.cast(y_true[..., 0] >= 0, "float32")
    # Keras divides the sum by the number of rows; this makes it a division by the real ones.
    return per_region * ops.cast(ops.size(real), "float32") / ops.maximum(ops.sum(real), 1.0)


def losses():
    """The loss of each output, for ``model.compile(loss=...)``: cross-entropy that skips padding
    (``ignore_class``: averaged over the real regions) and ``box_loss``."""
    return {CLASS: keras.losses.SparseCategoricalCrossentropy(ignore_class=PADDING), BOX: box_loss}


@keras.saving.register_keras_serializable(package="dlcourse")
class RegionAccuracy(keras.metrics.Metric):
    """Classification accuracy over the rows with a class: padding rows (label −1) left out, and
    R-CNN's box-only regions, which carry the same label (``labs.rcnn.BOX_ONLY``)."""

    def __init__(self, name="accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable((), initializer="zeros", name="correct")
        self.count = self.add_variable((), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        ops = keras.ops
        labels = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        real = ops.cast(labels != PADDING, "float32")
        hits = ops.cast(ops.argmax(y_pred, axis=-1) == labels, "float32") * real
        self.correct.assign_add(ops.sum(hits))
        self.count.assign_add(ops.sum(real))

    def result(self):
        return keras.ops.divide_no_nan(self.correct, self.count)


def metrics(model):
    """For ``model.compile(metrics=...)``: region accuracy of the class output, as a list in the
    order of ``model.output_names`` (which ``training.Run.compile`` passes on unchanged)."""
    return [[RegionAccuracy()] if name == CLASS else [] for name in model.output_names]


# ---------------------------------------------------------------------------
# Training data: images, their sampled regions and targets
# ---------------------------------------------------------------------------

def image_regions(proposals, boxes, labels, regions_per_image=64, max_positives=16, max_proposals=2000,
                  rng=None, near_negatives=0.0):
    """One image's ``(regions (R, 4), targets (R, 5))``: ``[label, t_x, t_y, t_w, t_h]`` rows.

    Up to ``max_positives`` positives (the objects' boxes first, then
    proposals with IoU ≥ ``POSITIVE_IOU``), background (IoU <
    ``BACKGROUND_IOU``) filling the rest of the ``regions_per_image`` (Fast
    R-CNN: 64 per image, a quarter foreground), padding rows (label −1, a dummy
    box) if the image has too little background.  ``near_negatives``: the share
    of the background drawn from regions that touch an object, IoU in
    [0.1, 0.5) (``detection.sample_regions``).
    """
    rng = np.random.default_rng(rng)
    # sample_regions keeps IoU > its threshold: just under 0.5 keeps IoU = 0.5 too.
    regions, region_labels, matches = detection.sample_regions(
        proposals, boxes, labels, max_proposals=max_proposals, max_positives=max_positives,
        max_negatives=regions_per_image, positive_iou=np.nextafter(POSITIVE_IOU, 0),
        negative_iou=BACKGROUND_IOU, rng=rng, return_matches=True, near_negatives=near_negatives)
    positive = np.flatnonzero(region_labels > 0)[:regions_per_image]
    background = np.flatnonzero(region_labels == 0)
    background = np.sort(rng.permutation(background)[:regions_per_image - len(positive)])
    chosen = np.concatenate([positive, background])
    targets = regression_targets(regions[chosen], region_labels[chosen],
                                 matched_boxes(regions[chosen], boxes, matches[chosen]))
    padding = regions_per_image - len(chosen)
    padded_regions = np.concatenate([regions[chosen], np.zeros((padding, 4))]).astype("float32")
    padding_rows = np.zeros((padding, 5), dtype="float32")
    padding_rows[:, 0] = PADDING
    return padded_regions, np.concatenate([targets, padding_rows])


def training_examples(split, proposals, regions_per_image=64, max_positives=16, max_proposals=2000,
                      rng=None, near_negatives=0.0, draws=1):
    """``(inputs, targets)`` for ``model.fit`` from ``split`` ([(image, boxes, labels)]) and the
    proposals of its images: ``{"images": uint8 (N, S, S, 3), "rois": (N, R, 4)}`` and
    ``{"class": (N, R) int32, −1 for padding, "box": (N, R, 5)}`` (``image_regions``).

    ``draws`` > 1: that many independent draws of every image's regions, on a
    second axis — rois (N, draws, R, 4), targets (N, draws, R) and (N, draws,
    R, 5) — for ``backend.batches(..., variants=VARIANTS)``, which trains each
    epoch on one draw per image.
    """
    rng = np.random.default_rng(rng)
    rois, targets = zip(*[zip(*[image_regions(candidates, boxes, labels, regions_per_image, max_positives,
                                              max_proposals, rng, near_negatives) for _ in range(draws)])
                          for (_, boxes, labels), candidates in zip(split, proposals)])
    rois, targets = np.array(rois, dtype="float32"), np.array(targets, dtype="float32")
    if draws == 1:
        rois, targets = rois[:, 0], targets[:, 0]
    inputs = {IMAGES: np.stack([image for image, _, _ in split]).astype("uint8"), ROIS: rois}
    return inputs, {CLASS: targets[..., 0].astype("int32"), BOX: targets}


# ---------------------------------------------------------------------------
# Detection: features once, heads on every proposal, per-class boxes, NMS
# ---------------------------------------------------------------------------

class FastRCNNDetector:
    """A trained Fast R-CNN and the settings that make it a detector: ``labs.rcnn.Detector``'s keys
    (class_names, proposals, max_proposals, score_threshold, nms_iou, box_regression: False
    keeps the proposals' own boxes)."""

    stages = STAGES
    # The proposals of an image are padded to a multiple of 32 boxes: fewer input shapes to trace
    # (TensorFlow) or compile (JAX), at most 31 wasted regions.
    ROI_BUCKET = 32

    def __init__(self, model, settings):
        self.model = model
        self.features = model.get_layer(FEATURES)
        self.heads = model.get_layer(HEADS)
        self.settings = dict(settings)
        self.class_names = tuple(settings["class_names"])
        self.box_regression = bool(self.settings.get("box_regression", True))
        self.image_shape = tuple(self.features.input_shape[1:])
        # Trace both halves before anything is timed.
        feature_map = self.image_features(np.zeros(self.image_shape, dtype="uint8"))
        for count in (self.ROI_BUCKET, 2 * self.ROI_BUCKET):
            self.region_outputs(feature_map, np.tile([[0, 0, 8, 8]], (count, 1)))

    def propose(self, image):
        return detection.selective_search(image, mode=self.settings["proposals"],
                                          max_proposals=self.settings["max_proposals"])

    def image_features(self, image):
        """The feature map (1, h, w, C) of one uint8 image."""
        return np.asarray(self.features.predict_on_batch(image[None]))

    def region_outputs(self, feature_map, proposals):
        """``(probabilities (N, classes + 1), deltas (N, 4 × classes))`` of all N proposals of one
        image, in one call of the heads."""
        count = len(proposals)
        padded = np.zeros((max(1, -(-count // self.ROI_BUCKET)) * self.ROI_BUCKET, 4), dtype="float32")
        padded[:count] = proposals
        outputs = self.heads.predict_on_batch([feature_map, padded[None]])
        return np.asarray(outputs[CLASS])[0, :count], np.asarray(outputs[BOX])[0, :count]

    def detect(self, image, timings=None, proposals=None):
        """``(boxes, scores, labels)`` of one uint8 RGB image; ``timings`` (a dict) collects the
        seconds of each stage in ``STAGES`` ("nms" includes applying the box deltas);
        ``proposals`` given skip selective search."""
        return self.detect_with_and_without_regression(image, timings, proposals=proposals)[0]

    def detect_with_and_without_regression(self, image, timings=None, proposals=None, score_threshold=None):
        """``detect``'s detections, and those of the same probabilities on the proposals' own
        boxes (the second NMS is not timed), as ``labs.rcnn.Detector`` gives them;
        ``score_threshold`` replaces the settings' for this image."""
        clock = detection.StageClock(timings)
        if proposals is None:
            proposals = self.propose(image)
            clock.lap("proposals")
        proposals = detection.validate_boxes(proposals)
        feature_map = self.image_features(image)
        clock.lap("features")
        probabilities, deltas = self.region_outputs(feature_map, proposals)
        clock.lap("heads")
        deltas = deltas if self.box_regression else None
        if score_threshold is None:
            score_threshold = self.settings["score_threshold"]
        settings = image.shape, score_threshold, self.settings["nms_iou"]
        found = detections(proposals, probabilities, deltas, *settings)
        clock.lap("nms")
        return found, found if deltas is None else detections(proposals, probabilities, None, *settings)
