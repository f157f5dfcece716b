"""Object-detection building blocks for the R-CNN lab (week 5).

Box convention, used everywhere in this module and in ``dlcourse.scenes``:
a box is ``(x1, y1, x2, y2)`` in pixels, with ``x2 > x1`` and ``y2 > y1``.
The corners are *edges*, not pixel centres: the box covers pixel columns
``x1 … x2-1`` and rows ``y1 … y2-1``, exactly the NumPy slice
``image[y1:y2, x1:x2]``.  Its area is therefore ``(x2 - x1) * (y2 - y1)``
(no "+1" as in the Pascal VOC devkit, which counted pixel centres), and two
boxes that only share an edge do not overlap at all.

R-CNN in four steps, one function each:

1. propose regions that might hold an object (``selective_search``);
2. label proposals by their overlap with the ground truth (``iou``,
   ``sample_regions``) and cut them out to a fixed size (``crop_and_resize``)
   to train a classifier;
3. keep the best of overlapping detections (``nms``, per class in
   ``select_detections``), timing each stage with a ``StageClock``;
4. score the detector (``average_precision``, ``mean_average_precision``).
"""
import os
import time

import numpy as np


def validate_boxes(boxes):
    """``boxes`` as a float64 array of shape (N, 4), or ValueError naming the first bad box.

    Every function here calls it first, so a box with its corners swapped or
    a NaN coordinate fails loudly instead of giving a silently wrong IoU.
    An empty list is fine: it is zero boxes, shape (0, 4).
    """
    array = np.asarray(boxes, dtype="float64")
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as (x1, y1, x2, y2), got shape {array.shape}")
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise ValueError(f"box {row} {array[row].tolist()} has a coordinate that is not finite")
    ordered = (array[:, 2] > array[:, 0]) & (array[:, 3] > array[:, 1])
    if not ordered.all():
        row = int(np.argmin(ordered))
        raise ValueError(f"box {row} {array[row].tolist()} needs x2 > x1 and y2 > y1 "
                         "(boxes are (x1, y1, x2, y2), not (x, y, width, height)?)")
    return array


def box_area(boxes):
    """Areas ``(x2 - x1) * (y2 - y1)`` of boxes (N, 4), shape (N,)."""
    boxes = validate_boxes(boxes)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def iou(boxes_a, boxes_b):
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``: (N, M).

    Broadcasting (N, 1) against (1, M) computes all pairs at once, with no
    Python loop: this matters when 2 000 proposals meet the ground truth.
    """
    a, b = validate_boxes(boxes_a), validate_boxes(boxes_b)
    # The intersection is the box between the larger top-left corner and the
    # smaller bottom-right corner; it is empty when they cross (clip at 0).
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = box_area(a)[:, None] + box_area(b)[None, :] - intersection
    return intersection / union


def nms(boxes, scores, iou_threshold=0.3):
    """Greedy non-maximum suppression: indices of the boxes kept, best score first.

    A detector fires on many shifted copies of the same object.  Take the
    highest-scoring box, drop every remaining box that overlaps it by IoU
    *more than* ``iou_threshold`` (a box at exactly the threshold is kept),
    and repeat with what is left.  Equal scores are taken in index order,
    so the result never depends on how the sort breaks ties.
    """
    boxes = validate_boxes(boxes)
    scores = np.asarray(scores, dtype="float64")
    if scores.shape != (len(boxes),):
        raise ValueError(f"need one score per box: {len(boxes)} boxes, scores of shape {scores.shape}")
    # A stable sort of the negated scores: descending, ties in index order.
    order = np.argsort(-scores, kind="stable")
    overlaps = iou(boxes, boxes)
    keep = []
    suppressed = np.zeros(len(boxes), dtype=bool)
    for index in order:
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= overlaps[index] > iou_threshold
    return np.array(keep, dtype="int64")


class StageClock:
    """Seconds between calls of ``lap``: ``lap("nms")`` appends the time since the last lap (or
    since the clock was made) to ``timings["nms"]``.  ``timings=None`` times nothing, so a
    detector's code reads the same whether it is being measured or not."""

    def __init__(self, timings=None):
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        if self.timings is not None:
            self.timings.setdefault(stage, []).append(now - self.last)
        self.last = now


def select_detections(boxes, probabilities, score_threshold=0.65, nms_iou=0.3):
    """``(boxes, scores, labels)``: per class, the regions above the threshold that survive NMS.

    ``boxes`` are the proposals (N, 4), the same for every class, or one box
    per proposal and class (N, classes, 4, ``box_regression.refine_boxes``):
    NMS of class c then compares the boxes that class c's regression made.
    ``probabilities`` has column 0 for background; detection labels are
    class indices (column - 1).  Best score first.
    """
    boxes = np.asarray(boxes, dtype="float64")
    per_class = boxes.ndim == 3
    found_boxes, scores, labels = [], [], []
    for column in range(1, probabilities.shape[1]):
        class_boxes = boxes[:, column - 1] if per_class else boxes
        candidates = np.flatnonzero(probabilities[:, column] > score_threshold)
        candidate_boxes = validate_boxes(class_boxes[candidates])
        kept = candidates[nms(candidate_boxes, probabilities[candidates, column], nms_iou)]
        found_boxes.append(class_boxes[kept].reshape(-1, 4))
        scores.append(probabilities[kept, column])
        labels.append(np.full(len(kept), column - 1, dtype="int64"))
    if not found_boxes:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype="int64")
    found_boxes, scores, labels = np.concatenate(found_boxes), np.concatenate(scores), np.concatenate(labels)
    order = np.argsort(-scores, kind="stable")
    return found_boxes[order].reshape(-1, 4), scores[order].astype("float64"), labels[order]


# ---------------------------------------------------------------------------
# Evaluation: average precision (Pascal VOC)
# ---------------------------------------------------------------------------

def average_precision(recall, precision):
    """Area under the precision-recall curve, Pascal VOC "all points" interpolation.

    ``recall`` and ``precision`` are the values after each detection, in
    descending score order.  The raw curve zig-zags (each false positive
    lowers precision), so each precision is first replaced by the best
    precision reached at that recall *or any higher recall*; the area under
    that staircase is the AP.  The curve is extended to recall 0 and 1, so
    recall never reached adds nothing.
    """
    recall = np.concatenate([[0.0], np.asarray(recall, dtype="float64"), [1.0]])
    precision = np.concatenate([[0.0], np.asarray(precision, dtype="float64"), [0.0]])
    # Running maximum from the right: the "envelope" of the curve.
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    # Sum of width × height of the steps; a step of width 0 adds nothing.
    return float(np.sum(np.diff(recall) * envelope[1:]))


def _class_average_precision(detections, ground_truths, label, iou_threshold):
    """AP of one class over the whole data set (see ``mean_average_precision``)."""
    gt_boxes = [validate_boxes(boxes)[np.asarray(labels) == label] for boxes, labels in ground_truths]
    num_gt = sum(len(boxes) for boxes in gt_boxes)
    # Every detection of this class, as (score, image index, box).
    found = []
    for image, (boxes, scores, labels) in enumerate(detections):
        mine = np.asarray(labels) == label
        found += [(score, image, box) for score, box
                  in zip(np.asarray(scores, dtype="float64")[mine], validate_boxes(boxes)[mine])]
    if not found:
        return 0.0
    # Best score first over the whole data set; ties keep their order.
    found.sort(key=lambda item: -item[0])
    matched = [np.zeros(len(boxes), dtype=bool) for boxes in gt_boxes]
    true_positive = np.zeros(len(found))
    for rank, (_, image, box) in enumerate(found):
        if len(gt_boxes[image]) == 0:
            continue
        overlaps = iou(box[None], gt_boxes[image])[0]
        best = int(np.argmax(overlaps))
        # VOC rule: only the best-overlapping ground truth counts; once it is
        # taken, a second detection of the same object is a false positive.
        if overlaps[best] >= iou_threshold and not matched[image][best]:
            matched[image][best] = True
            true_positive[rank] = 1
    hits = np.cumsum(true_positive)
    recall = hits / num_gt
    precision = hits / np.arange(1, len(found) + 1)
    return average_precision(recall, precision)


def mean_average_precision(detections, ground_truths, iou_threshold=0.5, num_classes=None):
    """Pascal VOC mean average precision of a detector over a data set.

    ``detections``: one ``(boxes, scores, labels)`` per image; ``ground_truths``:
    one ``(boxes, labels)`` per image, in the same order.  For each class,
    detections from all images are ranked by score; each, in turn, is a true
    positive when its best-overlapping ground-truth box of that class (in its
    image) has IoU ≥ ``iou_threshold`` and was not matched before, else a
    false positive (so a duplicate detection of one object counts against
    the detector).  Classes are the labels in the ground truth, or
    ``range(num_classes)``; a class with no ground-truth box is skipped, and a
    class with no detections has AP 0.

    Returns ``{"map": mean AP, "per_class": {label: AP}}``.
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} images of detections but {len(ground_truths)} of ground truth")
    for image, (boxes, scores, labels) in enumerate(detections):
        if not len(validate_boxes(boxes)) == len(scores) == len(labels):
            raise ValueError(f"image {image}: detections need as many scores and labels as boxes")
    gt_labels = [np.asarray(labels, dtype="int64").reshape(-1) for _, labels in ground_truths]
    for image, ((boxes, _), labels) in enumerate(zip(ground_truths, gt_labels)):
        if len(validate_boxes(boxes)) != len(labels):
            raise ValueError(f"image {image}: ground truth needs one label per box")
    present = np.unique(np.concatenate(gt_labels)) if gt_labels else np.array([], dtype="int64")
    classes = present if num_classes is None else [c for c in range(num_classes) if c in present]
    if len(classes) == 0:
        raise ValueError("there is no ground-truth box, so mean average precision is undefined")
    per_class = {int(label): _class_average_precision(detections, ground_truths, label, iou_threshold)
                 for label in classes}
    return {"map": float(np.mean(list(per_class.values()))), "per_class": per_class}


# ---------------------------------------------------------------------------
# Region proposals and training regions
# ---------------------------------------------------------------------------

SELECTIVE_SEARCH_MODES = ("fast", "quality")


def selective_search(image, mode="fast", max_proposals=2000, min_size=4, base_k=100):
    """Class-agnostic region proposals from OpenCV's selective search: (N, 4) int64 boxes.

    Selective search over-segments the image by colour (graph-based
    segmentation) and then greedily merges neighbouring segments by colour,
    texture, size and fill similarity; every segment ever formed is one
    proposal.  "quality" uses more colour spaces and strategies: more
    proposals and better recall, about four times slower.

    ``image`` is uint8 RGB (H, W, 3) or grayscale (H, W).  ``base_k`` sets the
    size of the first segments (larger k, larger segments).  OpenCV's
    default, 150, is tuned for photos of several hundred pixels; on the
    128-pixel lab scenes 100 finds about 5 % more of the digits (a proposal
    with IoU > 0.7: 89 % instead of 84 %) at the same speed.  Boxes
    narrower or shorter than ``min_size`` pixels are dropped (too small to
    recognise anything in); the ``max_proposals`` largest are kept.
    """
    import cv2

    if mode not in SELECTIVE_SEARCH_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(SELECTIVE_SEARCH_MODES)}")
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) grayscale, got shape {image.shape}")
    search = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    # It converts the image to HSV, Lab, … assuming OpenCV's BGR channel order.
    search.setBaseImage(np.ascontiguousarray(image[:, :, ::-1]))
    if mode == "fast":
        search.switchToSelectiveSearchFast(base_k=base_k, inc_k=base_k)
    else:
        search.switchToSelectiveSearchQuality(base_k=base_k, inc_k=base_k)
    rects = search.process().astype("int64").reshape(-1, 4)
    # OpenCV gives (x, y, width, height).
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    boxes = boxes[(rects[:, 2] >= min_size) & (rects[:, 3] >= min_size)]
    # OpenCV ranks proposals pseudo-randomly, favouring late-merged (large)
    # regions, and the order changes from call to call.  Largest first, ties
    # by position, keeps that preference and makes every run the same.
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], -area))
    return boxes[order][:max_proposals]


def selective_search_many(images, mode="fast", max_proposals=2000, workers=None, progress=None):
    """``selective_search`` of every image, ``workers`` images at a time: a list of (N, 4) boxes.

    OpenCV releases Python's lock while it searches, so threads run on
    separate cores: on two cores the training scenes' proposals take about
    half the time.  ``workers`` defaults to the cores this process may use;
    ``progress``, a ``tqdm`` bar (or None), advances by one per image.
    """
    from concurrent.futures import ThreadPoolExecutor

    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

    def search(image):
        boxes = selective_search(image, mode=mode, max_proposals=max_proposals)
        if progress is not None:
            progress.update(1)
        return boxes

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(search, images))


def best_matches(proposals, gt_boxes):
    """For each proposal, the ground-truth box it overlaps most: ``(index (P,) int64, IoU (P,))``;
    index 0 and IoU 0 for every proposal when there is no box (everything is background)."""
    proposals, gt_boxes = validate_boxes(proposals), validate_boxes(gt_boxes)
    if not len(gt_boxes):
        return np.zeros(len(proposals), dtype="int64"), np.zeros(len(proposals))
    overlaps = iou(proposals, gt_boxes)               # (P, G)
    best_gt = np.argmax(overlaps, axis=1)
    return best_gt.astype("int64"), overlaps[np.arange(len(proposals)), best_gt]


def sample_regions(proposals, gt_boxes, gt_labels=None, max_proposals=2000, max_positives=30,
                   max_negatives=30, positive_iou=0.7, negative_iou=0.3, include_ground_truth=True,
                   rng=None, return_matches=False, near_negatives=0.0, near_iou=0.1):
    """Training regions for the R-CNN classifier: ``(boxes (K, 4) float64, labels (K,) int64)``.

    Only the first ``max_proposals`` proposals are used.  Each is compared
    with every ground-truth box:

    * positive when its IoU with *any* ground-truth box is > ``positive_iou``;
      its label is that best-overlapping box's class + 1 (``gt_labels`` None
      means one class, label 1);
    * background (label 0) when its IoU with *every* ground-truth box is
      < ``negative_iou``;
    * otherwise unused: a half-covered object is neither a clean example of
      the object nor of background.

    Why "any" and "every": in an image with objects A and B, a proposal
    sitting exactly on B has IoU 0 with A.  Judged against A alone it would
    look like background, and the classifier would be taught that B is not
    an object (the course's first version had this bug).  So a region is
    background only if it misses *all* objects.

    ``include_ground_truth`` adds the ground-truth boxes themselves as
    positives, as the R-CNN paper does: they are the best-centred examples
    there are, and they guarantee positives when no proposal fits well.
    They are always kept; proposals fill up to ``max_positives`` positives,
    and up to ``max_negatives`` negatives, chosen at random with ``rng``
    (a ``np.random.Generator``, a seed, or None) when there are more.
    Positives come first, then negatives, each in proposal order.

    ``near_negatives`` (a fraction) of the ``max_negatives`` are drawn first
    from the background regions that still touch an object (best IoU in
    [``near_iou``, ``negative_iou``): a stroke or a corner of a digit), the
    rest from all background regions.  Drawn uniformly, most background is
    empty clutter, and a part of one digit that looks like another (the
    stem of a 4 and a 1) is seldom shown as background; R-CNN's hard-negative
    mining and Fast R-CNN's background range [0.1, 0.5) answer the same problem.

    ``return_matches=True`` adds a third array: for each region the index of
    the ground-truth box it was matched with (−1 for background), which
    bounding-box regression needs (``dlcourse.box_regression``).
    """
    rng = np.random.default_rng(rng)
    proposals = validate_boxes(proposals)[:max_proposals]
    gt_boxes = validate_boxes(gt_boxes)
    if gt_labels is None:
        gt_labels = np.zeros(len(gt_boxes), dtype="int64")
    gt_labels = np.asarray(gt_labels, dtype="int64").reshape(-1)
    if len(gt_labels) != len(gt_boxes):
        raise ValueError(f"{len(gt_boxes)} ground-truth boxes but {len(gt_labels)} labels")

    best_gt, best_iou = best_matches(proposals, gt_boxes)
    # best_iou > t  ⇔  IoU with ANY box > t;  best_iou < t  ⇔  IoU with EVERY box < t.
    positive = np.flatnonzero(best_iou > positive_iou)
    negative = np.flatnonzero(best_iou < negative_iou)

    def at_most(indices, count):
        if count <= 0:
            return indices[:0]
        if len(indices) <= count:
            return indices
        return np.sort(rng.choice(indices, size=count, replace=False))

    kept_gt = np.arange(len(gt_boxes)) if include_ground_truth else np.array([], dtype="int64")
    kept_gt = at_most(kept_gt, max_positives)
    positive = at_most(positive, max_positives - len(kept_gt))
    near = at_most(negative[best_iou[negative] >= near_iou], round(near_negatives * max_negatives))
    others = at_most(np.setdiff1d(negative, near), max_negatives - len(near))
    negative = np.sort(np.concatenate([near, others])).astype("int64")
    boxes = np.concatenate([gt_boxes[kept_gt], proposals[positive], proposals[negative]])
    labels = np.concatenate([gt_labels[kept_gt] + 1, gt_labels[best_gt[positive]] + 1,
                             np.zeros(len(negative), dtype="int64")])
    if return_matches:
        matches = np.concatenate([kept_gt, best_gt[positive], np.full(len(negative), -1)])
        return boxes.reshape(-1, 4), labels.astype("int64"), matches.astype("int64")
    return boxes.reshape(-1, 4), labels.astype("int64")


def crop_and_resize(image, boxes, size):
    """Each box cut out of ``image`` and resized to ``size`` × ``size``: (N, size, size, C).

    The crops keep the image's dtype, normally uint8 in 0…255: 2 000
    proposals at 224 × 224 take 300 MB as uint8 but 1.2 GB as float32, so
    scale to [0, 1] inside the model (``keras.layers.Rescaling(1 / 255)``).
    A grayscale (H, W) image gives C = 1.  Like R-CNN's "warp", the aspect
    ratio is not kept.  Boxes are rounded outwards to whole pixels and
    clipped to the image; a box entirely outside it becomes the nearest
    one-pixel strip at the border.
    """
    import cv2

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    boxes = validate_boxes(boxes)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, width - 1).astype(int)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, height - 1).astype(int)
    x2 = np.clip(np.ceil(boxes[:, 2]), x1 + 1, width).astype(int)
    y2 = np.clip(np.ceil(boxes[:, 3]), y1 + 1, height).astype(int)
    crops = np.empty((len(boxes), size, size, channels), dtype=image.dtype)
    for index in range(len(boxes)):
        crop = cv2.resize(image[y1[index]:y2[index], x1[index]:x2[index]], (size, size),
                          interpolation=cv2.INTER_LINEAR)
        crops[index] = crop.reshape(size, size, channels)
    return crops
