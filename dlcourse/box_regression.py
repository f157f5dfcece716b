"""Bounding-box regression (R-CNN, Girshick et al. 2014, appendix C): move a proposal onto its object.

A proposal ``P`` and the ground-truth box ``G`` it should become are written
as centre, width and height (``x, y, w, h``; boxes follow ``dlcourse.detection``,
``(x1, y1, x2, y2)``).  The regression targets are

    t_x = (G_x − P_x) / P_w        t_y = (G_y − P_y) / P_h
    t_w = log(G_w / P_w)           t_h = log(G_h / P_h)

— a shift measured in proposal widths and a scale on a log axis, so one
target means the same for a small and a large box.  A head predicts ``d`` for
a proposal and the refined box is the inverse map:

    Ĝ_x = P_w · d_x + P_x     Ĝ_y = P_h · d_y + P_y     Ĝ_w = P_w · exp(d_w)     Ĝ_h = P_h · exp(d_h)

``weights`` multiply the targets (and divide the predictions back): the raw
targets of well-placed proposals are about ±0.1, and Fast R-CNN scales them
to roughly unit spread (10, 10, 5, 5) so that the smooth-L1 loss sees errors
of the size it was designed for.  ``encode``/``decode`` with the default
``weights=(1, 1, 1, 1)`` are the paper's equations.

The head is class-specific, as in the paper: ``4 × classes`` outputs, of
which the true class's four are trained (``smooth_l1_loss``) and, at
detection time, the detected class's four are applied (``class_deltas``).
"""
import keras
import numpy as np

from dlcourse.detection import best_matches, select_detections, validate_boxes

TRAINING_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# exp(d_w) is clipped here so that a wild prediction cannot make an infinite box (log(1000/16)).
MAX_LOG_SCALE = float(np.log(1000.0 / 16))


def centre_size(boxes):
    """``(x, y, w, h)`` columns of boxes (N, 4): centre and size."""
    boxes = validate_boxes(boxes)
    sizes = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + sizes / 2, sizes], axis=1)


def encode(proposals, targets, weights=(1.0, 1.0, 1.0, 1.0)):
    """Regression targets ``(t_x, t_y, t_w, t_h)`` (N, 4) that move each proposal onto its target box."""
    proposal, target = centre_size(proposals), centre_size(targets)
    if len(proposal) != len(target):
        raise ValueError(f"{len(proposal)} proposals but {len(target)} target boxes")
    deltas = np.concatenate([(target[:, :2] - proposal[:, :2]) / proposal[:, 2:],
                             np.log(target[:, 2:] / proposal[:, 2:])], axis=1)
    return deltas * np.asarray(weights, dtype="float64")


def decode(proposals, deltas, weights=(1.0, 1.0, 1.0, 1.0)):
    """The boxes (N, 4) that ``deltas`` (N, 4, from ``encode`` or a head) make of the proposals."""
    proposal = centre_size(proposals)
    deltas = np.asarray(deltas, dtype="float64").reshape(-1, 4) / np.asarray(weights, dtype="float64")
    if len(deltas) != len(proposal):
        raise ValueError(f"{len(proposal)} proposals but {len(deltas)} rows of deltas")
    centres = proposal[:, :2] + deltas[:, :2] * proposal[:, 2:]
    sizes = proposal[:, 2:] * np.exp(np.minimum(deltas[:, 2:], MAX_LOG_SCALE))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def refine_boxes(proposals, deltas, image_shape=None, weights=TRAINING_WEIGHTS):
    """(N, classes, 4): each proposal moved by each class's predicted deltas, clipped to the
    image (``image_shape`` (height, width, ...)) when given.

    The head is class-specific, so a proposal has one refined box per class;
    a detection of class c uses the box of column c (as in Fast R-CNN).
    """
    proposals = validate_boxes(proposals)
    deltas = np.asarray(deltas)
    classes = deltas.shape[-1] // 4
    boxes = decode(np.repeat(proposals, classes, axis=0), deltas.reshape(-1, 4),
                   weights).reshape(len(proposals), classes, 4)
    if image_shape is not None:
        height, width = image_shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        # A box pushed wholly off the image is clipped to a line: keep it one pixel wide.
        boxes[..., 2:] = np.maximum(boxes[..., 2:], boxes[..., :2] + 1)
    return boxes


def detections(proposals, probabilities, deltas, image_shape, score_threshold, nms_iou):
    """A detector's last step, ``(boxes, scores, labels)``: each proposal moved by its class's
    ``deltas`` (``refine_boxes``; ``deltas=None``: the proposals' own boxes), then the classes'
    scores above ``score_threshold`` through per-class NMS (``detection.select_detections``)."""
    boxes = proposals if deltas is None else refine_boxes(proposals, deltas, image_shape)
    return select_detections(boxes, probabilities, score_threshold, nms_iou)


def class_deltas(deltas, labels):
    """Row ``i``'s four deltas for class ``labels[i]`` (0-based, background excluded) from a
    class-specific head's (N, 4 × classes) output."""
    deltas = np.asarray(deltas).reshape(len(deltas), -1, 4)
    labels = np.asarray(labels, dtype="int64")
    return deltas[np.arange(len(deltas)), labels]


def matched_boxes(regions, gt_boxes, matches):
    """The ground-truth box of each region (``matches``: its index from
    ``detection.sample_regions``, −1 for background, whose row is the region itself: the loss
    ignores it)."""
    matched = validate_boxes(regions).copy()
    matches = np.asarray(matches, dtype="int64")
    found = matches >= 0
    matched[found] = validate_boxes(gt_boxes)[matches[found]]
    return matched


def loose_regions(proposals, gt_boxes, gt_labels, count, low=0.5, high=0.7, max_proposals=2000, rng=None):
    """Up to ``count`` proposals (of the first ``max_proposals``) whose best IoU with a
    ground-truth box lies in [``low``, ``high``]: ``(boxes (K, 4), labels (K,) class + 1,
    matches (K,) index of that box)``.

    Too loose to be taught as the class (the classifier's positives overlap by
    more than ``high``) but close enough to be moved onto it: these are the
    detections a regression could lift over IoU 0.75, and the positives alone
    are already within a pixel or so of their box.  R-CNN trained its
    regression on proposals with IoU ≥ 0.6, Fast R-CNN on ≥ 0.5.
    """
    rng = np.random.default_rng(rng)
    proposals, gt_boxes = validate_boxes(proposals)[:max_proposals], validate_boxes(gt_boxes)
    best_gt, best_iou = best_matches(proposals, gt_boxes)
    chosen = np.flatnonzero((best_iou >= low) & (best_iou <= high))   # none without a box
    if count <= 0:
        chosen = chosen[:0]
    elif len(chosen) > count:
        chosen = np.sort(rng.choice(chosen, size=count, replace=False))
    labels = np.asarray(gt_labels, dtype="int64").reshape(-1)[best_gt[chosen]] + 1
    return proposals[chosen], labels, best_gt[chosen]


def regression_targets(proposals, labels, matched_boxes, weights=TRAINING_WEIGHTS):
    """What the training pipeline feeds the loss: (N, 5) rows ``[label, t_x, t_y, t_w, t_h]``.

    ``labels`` are 0 for background and class + 1 otherwise (as
    ``detection.sample_regions`` gives them); ``matched_boxes`` the
    ground-truth box each region is matched with (any box for background: its
    targets are ignored by the loss).
    """
    labels = np.asarray(labels, dtype="int64").reshape(-1)
    targets = np.zeros((len(labels), 4))
    positive = labels > 0
    if positive.any():
        targets[positive] = encode(np.asarray(proposals)[positive], np.asarray(matched_boxes)[positive],
                                   weights)
    return np.concatenate([labels[:, None].astype("float64"), targets], axis=1).astype("float32")


@keras.saving.register_keras_serializable(package="dlcourse")
def smooth_l1_loss(y_true, y_pred):
    """Smooth-L1 (Huber with δ = 1) between the true class's predicted deltas and the targets,
    summed over the four, averaged over the regions of the batch; background rows count zero.

    ``y_true`` (..., 5) is ``[label, t_x, t_y, t_w, t_h]`` (``regression_targets``),
    ``y_pred`` (..., 4 × classes) the class-specific head.  Averaging over *all*
    regions, background included, is Fast R-CNN's normalisation: a batch with
    few positives does not get a larger regression step per positive.
    """
    ops = keras.ops
    labels = ops.cast(y_true[..., 0], "int32")
    targets = y_true[..., 1:]
    classes = y_pred.shape[-1] // 4
    per_class = ops.reshape(ops.cast(y_pred, "float32"), (-1, classes, 4))
    chosen = ops.one_hot(ops.reshape(ops.maximum(labels - 1, 0), (-1,)), classes, dtype="float32")
    predicted = ops.reshape(ops.sum(per_class * chosen[:, :, None], axis=1), ops.shape(targets))
    error = ops.abs(predicted - targets)
    huber = ops.where(error < 1.0, 0.5 * error * error, error - 0.5)
    positive = ops.cast(labels > 0, "float32")
    return ops.sum(huber, axis=-1) * positive
