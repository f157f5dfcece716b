"""Week 5 R-CNN: the box-regression head, trained for a few epochs, moves held-out boxes onto their objects.

A tiny model learns from misplaced copies of the ground-truth boxes of a few
dozen two-class scenes, through the lab's own pieces: ``sample_crops``'
targets (of the region box, not of its crop with context), ``region_batches``,
the two losses, the class-specific box head and ``box_regression.refine_boxes``.  Each
class's copies are off in their own direction (digit 0's boxes too far right
and too wide, digit 1's too high and too narrow), plus a little noise, so that
a few epochs are enough to learn the correction (reading an object's exact
place from the pixels takes thousands of regions: the full lab); a head that
does nothing, a sign or scale mistake anywhere in the chain, or the other
class's column leaves the boxes where they were or makes them worse.
"""
import keras
import numpy as np
import pytest

from dlcourse import box_regression, cli, detection, scenes
from labs import rcnn

CROP, CONTEXT = 32, 4
CLASSES = (0, 1)
# Per class: shift of the centre and log-scale of the size, as fractions of the true box.
MISPLACEMENT = {0: ((0.12, 0.0), (0.12, 0.0)), 1: ((0.0, -0.12), (0.0, -0.12))}


def misplaced(boxes, labels, rng, copies, noise=0.03):
    """``copies`` of every box, off in its class's direction (``MISPLACEMENT``) and a little at random."""
    boxes = np.repeat(np.asarray(boxes, dtype="float64"), copies, axis=0)
    labels = np.repeat(labels, copies)
    shift = np.array([MISPLACEMENT[int(label)][0] for label in labels])
    log_scale = np.array([MISPLACEMENT[int(label)][1] for label in labels])
    sizes = boxes[:, 2:] - boxes[:, :2]
    centres = boxes[:, :2] + sizes / 2 + (shift + rng.uniform(-noise, noise, size=sizes.shape)) * sizes
    sizes = sizes * np.exp(log_scale + rng.uniform(-noise, noise, size=sizes.shape))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def proposals_for(split, rng, copies):
    """The misplaced copies plus a few random small boxes (background) for every scene."""
    proposals = []
    for image, boxes, labels in split:
        corners = rng.uniform(0, image.shape[0] - 20, size=(6, 2))
        background = np.concatenate([corners, corners + rng.uniform(10, 20, size=(6, 2))], axis=1)
        proposals.append(np.concatenate([misplaced(boxes, labels, rng, copies), background]))
    return proposals


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    config = cli.make_config(rcnn.parser, classes=CLASSES, context=CONTEXT, max_positives=10, max_negatives=3,
                             batch_size=32, seed=0)
    train = scenes.make_scene_set(24, seed=5, classes=CLASSES)
    crops, labels, targets = rcnn.sample_crops(train, proposals_for(train, rng, 9), config, rng,
                                               box_targets=True)
    model = rcnn.build_model(len(CLASSES), width=0.125, crop_size=CROP, head_units=64, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=rcnn.LOSSES)
    history = model.fit(rcnn.region_batches(crops, labels, targets, config, shuffle=True), epochs=4, verbose=0)
    # The box loss of a head that leaves every box where it is (all deltas 0).
    staying = keras.ops.convert_to_numpy(box_regression.smooth_l1_loss(targets, np.zeros((len(targets), 8))))
    return model, history.history, float(np.mean(staying))


def test_regression_tightens_held_out_boxes(trained):
    model, history, staying_loss = trained
    assert history["box_loss"][-1] < 0.5 * staying_loss
    rng = np.random.default_rng(1)
    before, own, other = [], [], []
    for image, boxes, labels in scenes.make_scene_set(8, seed=9, split="test", classes=CLASSES):
        starts = misplaced(boxes, labels, rng, 4)
        truth, classes = np.repeat(boxes, 4, axis=0), np.repeat(labels, 4)
        deltas = rcnn.classify_crops(model, rcnn.region_crops(image, starts, CROP, CONTEXT))["box"]
        moved = box_regression.refine_boxes(starts, deltas, image.shape)
        rows = np.arange(len(starts))
        before.append(np.diag(detection.iou(starts, truth)))
        own.append(np.diag(detection.iou(moved[rows, classes], truth)))
        other.append(np.diag(detection.iou(moved[rows, 1 - classes], truth)))
    before, own, other = (np.concatenate(values) for values in (before, own, other))
    print(f"mean IoU of {len(before)} misplaced held-out boxes with their objects: {before.mean():.3f}, "
          f"regressed {own.mean():.3f} (with the other class's deltas {other.mean():.3f})")
    assert own.mean() > before.mean() + 0.04 and np.mean(own > before) > 0.75
    assert own.mean() > other.mean() + 0.05
