import time

import numpy as np
import pytest

from dlcourse import detection
from dlcourse.detection import average_precision, iou, mean_average_precision, nms, sample_regions

# ---------------------------------------------------------------------------
# Boxes and IoU
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("box_a, box_b, expected", [
    ([0, 0, 2, 2], [0, 0, 2, 2], 1.0),            # identical
    ([0, 0, 2, 2], [5, 5, 7, 7], 0.0),            # disjoint
    ([0, 0, 2, 2], [2, 0, 4, 2], 0.0),            # sharing an edge only: no overlap
    ([0, 0, 4, 4], [1, 1, 3, 3], 4 / 16),         # contained: inner area / outer area
    ([0, 0, 2, 2], [1, 0, 3, 2], 1 / 3),          # half of each: 2 / (4 + 4 - 2)
    ([0, 0, 4, 2], [0, 0, 2, 2], 0.5),
])
def test_iou_of_hand_computed_pairs(box_a, box_b, expected):
    assert iou([box_a], [box_b])[0, 0] == pytest.approx(expected)
    assert iou([box_b], [box_a])[0, 0] == pytest.approx(expected)


def test_iou_is_pairwise():
    boxes_a = [[0, 0, 2, 2], [1, 0, 3, 2]]
    boxes_b = [[0, 0, 2, 2], [5, 5, 7, 7], [1, 0, 3, 2]]
    np.testing.assert_allclose(iou(boxes_a, boxes_b), [[1, 0, 1 / 3], [1 / 3, 0, 1]])
    assert iou(boxes_a, []).shape == (2, 0)
    # The area convention is (x2 - x1) * (y2 - y1), no "+1".
    np.testing.assert_allclose(detection.box_area([[0, 0, 2, 3], [1, 1, 1.5, 2]]), [6, 0.5])


def test_validate_boxes_names_the_first_bad_box():
    assert detection.validate_boxes([[0, 0, 1, 1]]).dtype == np.float64
    assert detection.validate_boxes([]).shape == (0, 4)
    with pytest.raises(ValueError, match=r"shape \(N, 4\).*\(3,\)"):
        detection.validate_boxes([0, 0, 1])
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        detection.validate_boxes([[0, 0, 1, 1, 5]])
    with pytest.raises(ValueError, match=r"box 1 .*not finite"):
        detection.validate_boxes([[0, 0, 1, 1], [0, np.nan, 1, 1], [0, 0, np.inf, 1]])
    with pytest.raises(ValueError, match=r"box 2 \[5\.0, 0\.0, 5\.0, 1\.0\].*x2 > x1"):
        detection.validate_boxes([[0, 0, 1, 1], [0, 0, 2, 2], [5, 0, 5, 1], [3, 3, 1, 1]])
    with pytest.raises(ValueError, match=r"box 0 "):
        iou([[0, 5, 1, 4]], [[0, 0, 1, 1]])


# ---------------------------------------------------------------------------
# Non-maximum suppression
# ---------------------------------------------------------------------------

def test_nms_keeps_the_best_of_overlapping_boxes():
    # A and B overlap (IoU 90/110 ≈ 0.82); C is elsewhere.
    boxes = [[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]]
    assert nms(boxes, [0.9, 0.8, 0.95]).tolist() == [2, 0]
    assert nms(boxes, [0.8, 0.9, 0.5]).tolist() == [1, 2]
    # With a threshold above their overlap nothing is suppressed, best first.
    assert nms(boxes, [0.8, 0.9, 0.5], iou_threshold=0.9).tolist() == [1, 0, 2]
    assert nms(np.zeros((0, 4)), []).tolist() == []


def test_nms_threshold_boundary_and_ties():
    boxes = [[0, 0, 2, 2], [0, 0, 4, 2]]                         # IoU exactly 0.5
    assert nms(boxes, [0.9, 0.8], iou_threshold=0.5).tolist() == [0, 1]   # not more than 0.5: kept
    assert nms(boxes, [0.9, 0.8], iou_threshold=0.49).tolist() == [0]
    # Equal scores: the lower index wins, whichever box it is.
    assert nms(boxes, [0.7, 0.7], iou_threshold=0.3).tolist() == [0]
    assert nms(boxes[::-1], [0.7, 0.7], iou_threshold=0.3).tolist() == [0]
    with pytest.raises(ValueError, match="one score per box"):
        nms(boxes, [0.7])


# ---------------------------------------------------------------------------
# Average precision
# ---------------------------------------------------------------------------

GT_1, GT_2 = [0, 0, 10, 10], [20, 20, 30, 30]
ELSEWHERE = [50, 50, 60, 60]


def one_image(boxes, scores, labels=None):
    labels = [0] * len(boxes) if labels is None else labels
    return (np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores, dtype=float), np.array(labels))


def test_average_precision_all_points_interpolation():
    # Detections TP, FP, TP against 2 ground-truth boxes:
    #   recall    0.5, 0.5, 1.0
    #   precision 1,   1/2, 2/3
    # Each precision becomes the best at that recall or beyond: 1, 2/3, 2/3.
    # Area: recall 0 → 0.5 at precision 1, then 0.5 → 1 at 2/3 = 0.5 + 1/3.
    assert average_precision([0.5, 0.5, 1.0], [1, 1 / 2, 2 / 3]) == pytest.approx(5 / 6)
    # Recall never reaching 1 leaves the rest of the area out.
    assert average_precision([0.5], [1.0]) == pytest.approx(0.5)
    assert average_precision([0.25, 0.5], [0.5, 1.0]) == pytest.approx(0.5)
    assert average_precision([], []) == 0.0


def test_map_tp_fp_tp_matches_the_hand_computation():
    detections = [one_image([GT_1, ELSEWHERE, GT_2], [0.9, 0.8, 0.7])]
    truths = [(np.array([GT_1, GT_2]), np.array([0, 0]))]
    result = mean_average_precision(detections, truths)
    assert result["per_class"] == {0: pytest.approx(5 / 6)}
    assert result["map"] == pytest.approx(5 / 6)


def test_a_duplicate_detection_is_a_false_positive():
    truths = [(np.array([GT_1, GT_2]), np.array([0, 0]))]
    # The second detection of GT_1 is TP, FP(duplicate), TP: 5/6, not 1.
    duplicate = [one_image([GT_1, [0, 0, 10, 11], GT_2], [0.9, 0.8, 0.7])]
    assert mean_average_precision(duplicate, truths)["map"] == pytest.approx(5 / 6)
    # Without the duplicate, both hits come first: AP 1.
    clean = [one_image([GT_1, GT_2], [0.9, 0.7])]
    assert mean_average_precision(clean, truths)["map"] == pytest.approx(1.0)


def test_detections_are_ranked_over_the_whole_data_set():
    # Image 0: a hit at 0.6.  Image 1 (no object): a false alarm at 0.9.
    # Ranked together: FP then TP → precision 0, 1/2 at recall 0, 1 → AP 0.5.
    detections = [one_image([GT_1], [0.6]), one_image([ELSEWHERE], [0.9])]
    truths = [(np.array([GT_1]), np.array([0])), (np.zeros((0, 4)), np.zeros(0, dtype=int))]
    assert mean_average_precision(detections, truths)["map"] == pytest.approx(0.5)
    # Ranked the other way round, the hit comes first: AP 1.
    detections[1] = one_image([ELSEWHERE], [0.5])
    assert mean_average_precision(detections, truths)["map"] == pytest.approx(1.0)


def test_map_averages_classes_and_skips_those_without_ground_truth():
    truths = [(np.array([GT_1, GT_2]), np.array([0, 1]))]
    # Class 0: one perfect hit (AP 1).  Class 1: a false alarm first, then the
    # hit (AP 0.5).  Class 2 has no ground truth: skipped, even when detected.
    # A class-1 detection on the class-0 box is a false positive of class 1.
    detections = [one_image([GT_1, GT_1, GT_2, ELSEWHERE], [0.9, 0.8, 0.7, 0.95], [0, 1, 1, 2])]
    for num_classes in (None, 3):
        result = mean_average_precision(detections, truths, num_classes=num_classes)
        assert result["per_class"] == {0: pytest.approx(1.0), 1: pytest.approx(0.5)}
        assert result["map"] == pytest.approx(0.75)


def test_map_without_detections_is_zero():
    truths = [(np.array([GT_1]), np.array([0])), (np.array([GT_2]), np.array([1]))]
    nothing = [one_image([], []), one_image([], [])]
    assert mean_average_precision(nothing, truths) == {"map": 0.0, "per_class": {0: 0.0, 1: 0.0}}
    # A class that is never detected pulls the mean down.
    half = [one_image([GT_1], [0.9]), one_image([], [])]
    assert mean_average_precision(half, truths)["map"] == pytest.approx(0.5)


def test_map_iou_threshold_counts_a_match_at_exactly_the_threshold():
    detections = [one_image([[0, 0, 4, 2]], [0.9])]                  # IoU 0.5 with [0, 0, 2, 2]
    truths = [(np.array([[0, 0, 2, 2]]), np.array([0]))]
    assert mean_average_precision(detections, truths, iou_threshold=0.5)["map"] == pytest.approx(1.0)
    assert mean_average_precision(detections, truths, iou_threshold=0.6)["map"] == 0.0


def test_map_rejects_inconsistent_input():
    truths = [(np.array([GT_1]), np.array([0]))]
    with pytest.raises(ValueError, match="1 of ground truth"):
        mean_average_precision([], truths)
    with pytest.raises(ValueError, match="as many scores"):
        mean_average_precision([one_image([GT_1, GT_2], [0.9])], truths)
    with pytest.raises(ValueError, match="no ground-truth box"):
        mean_average_precision([one_image([], [])], [(np.zeros((0, 4)), np.zeros(0))])


# ---------------------------------------------------------------------------
# Training regions
# ---------------------------------------------------------------------------

BOX_A, BOX_B = [0, 0, 20, 20], [60, 60, 80, 80]


def as_rows(boxes):
    return [list(map(float, box)) for box in boxes]


def test_a_proposal_on_any_object_is_positive_never_background():
    proposals = [
        BOX_B,                  # exactly on B, IoU 0 with A: positive (label of B)
        [0, 0, 20, 40],         # IoU 0.5 with A: neither positive nor background
        [100, 0, 120, 20],      # misses both: background
        [1, 1, 21, 21],         # IoU 361/439 ≈ 0.82 with A: positive (label of A)
    ]
    boxes, labels = sample_regions(proposals, [BOX_A, BOX_B], gt_labels=[3, 5],
                                   include_ground_truth=False, rng=0)
    assert as_rows(boxes) == as_rows([BOX_B, [1, 1, 21, 21], [100, 0, 120, 20]])
    assert labels.tolist() == [6, 4, 0]                # class + 1; background 0
    # One class: every positive is label 1.
    _, labels = sample_regions(proposals, [BOX_A, BOX_B], include_ground_truth=False, rng=0)
    assert labels.tolist() == [1, 1, 0]
    # For box regression: which ground-truth box each region was matched with (−1: background).
    _, _, matches = sample_regions(proposals, [BOX_A, BOX_B], include_ground_truth=True, rng=0,
                                   return_matches=True)
    assert matches.tolist() == [0, 1, 1, 0, -1]


def test_ground_truth_boxes_are_added_as_positives_first():
    boxes, labels = sample_regions([[100, 0, 120, 20]], [BOX_A, BOX_B], gt_labels=[3, 5], rng=0)
    assert as_rows(boxes) == as_rows([BOX_A, BOX_B, [100, 0, 120, 20]])
    assert labels.tolist() == [4, 6, 0]
    # No object in the image: every proposal is background.
    boxes, labels = sample_regions([BOX_A, BOX_B], np.zeros((0, 4)), rng=0)
    assert labels.tolist() == [0, 0] and boxes.shape == (2, 4)


def test_sampling_caps_are_respected_and_random_by_seed():
    rng = np.random.default_rng(1)
    shifts = rng.integers(-1, 2, size=(50, 4))
    near_a = np.array(BOX_A) + shifts                               # IoU > 0.7 with A
    far = np.array([[100, 100, 110, 110]]) + rng.integers(0, 15, size=(100, 1))
    proposals = np.concatenate([near_a, far])
    assert (iou(near_a, [BOX_A]) > 0.7).all()
    boxes, labels = sample_regions(proposals, [BOX_A, BOX_B], max_positives=30, max_negatives=20, rng=7)
    assert (labels > 0).sum() == 30 and (labels == 0).sum() == 20
    assert as_rows(boxes[:2]) == as_rows([BOX_A, BOX_B])            # ground truth always kept
    again, _ = sample_regions(proposals, [BOX_A, BOX_B], max_positives=30, max_negatives=20, rng=7)
    other, _ = sample_regions(proposals, [BOX_A, BOX_B], max_positives=30, max_negatives=20, rng=8)
    np.testing.assert_array_equal(boxes, again)
    assert not np.array_equal(boxes, other)
    # Fewer candidates than the cap: all of them, no sampling.
    _, labels = sample_regions(proposals[:5], [BOX_A], max_positives=30, rng=0)
    assert labels.tolist() == [1] * 6


def test_near_negatives_are_parts_of_objects_drawn_first():
    rng = np.random.default_rng(2)
    # Strokes of A: thin boxes inside it, IoU 0.15-0.25 (background that touches an object) ...
    strokes = np.array([[x, 0, x + 4, 20] for x in range(0, 16)], dtype="float64")
    assert ((iou(strokes, [BOX_A]) >= 0.1) & (iou(strokes, [BOX_A]) < 0.3)).all()
    # ... among ten times as much empty clutter.
    clutter = np.array([[100, 100, 110, 110]]) + rng.integers(0, 30, size=(160, 1))
    proposals = np.concatenate([clutter[:80], strokes, clutter[80:]])
    is_stroke = lambda boxes: (iou(boxes, [BOX_A]).max(axis=1) >= 0.1)  # noqa: E731

    def strokes_among_background(**options):
        boxes, labels = sample_regions(proposals, [BOX_A], max_negatives=20, include_ground_truth=False,
                                       rng=3, **options)
        assert (labels == 0).sum() == 20
        return int(is_stroke(boxes[labels == 0]).sum())

    assert strokes_among_background() <= 6                         # uniform: about 2 of 20
    assert strokes_among_background(near_negatives=0.5) >= 10       # half of them, at least
    assert strokes_among_background(near_negatives=1.0) == 16       # every stroke, then clutter


def test_only_the_first_max_proposals_are_used():
    proposals = [[100, 0, 120, 20]] * 5 + [BOX_A]
    _, labels = sample_regions(proposals, [BOX_A], include_ground_truth=False, max_proposals=5, rng=0)
    assert labels.tolist() == [0] * 5
    _, labels = sample_regions(proposals, [BOX_A], include_ground_truth=False, max_proposals=6, rng=0)
    assert labels.tolist() == [1] + [0] * 5


# ---------------------------------------------------------------------------
# Crops and proposals
# ---------------------------------------------------------------------------

def two_colour_image():
    """20 × 30 RGB: red on the left 10 columns, blue on the right 20, a dark last row."""
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[:, :10] = (255, 0, 0)
    image[:, 10:] = (0, 0, 255)
    image[19] = (9, 9, 9)
    return image


def test_crop_and_resize_cuts_the_box_region():
    image = two_colour_image()
    crops = detection.crop_and_resize(image, [[0, 0, 10, 19], [10, 0, 30, 19], [0, 0, 30, 20]], 8)
    assert crops.shape == (3, 8, 8, 3) and crops.dtype == np.uint8
    assert (crops[0] == (255, 0, 0)).all()                 # only red inside the first box
    assert (crops[1] == (0, 0, 255)).all()
    assert (crops[2, :-1, 0, 0] == 255).all() and (crops[2, :-1, -1, 2] == 255).all()
    assert crops[2, -1].max() < 255                        # blended with the dark last image row


def test_crop_and_resize_rounds_outwards_and_clips():
    image = two_colour_image()
    inside = detection.crop_and_resize(image, [[0.5, 0.5, 9.2, 9.2], [0, 0, 10, 10]], 5)
    np.testing.assert_array_equal(inside[0], inside[1])
    clipped = detection.crop_and_resize(image, [[25, 15, 40, 30], [25, 15, 30, 20], [40, 30, 50, 40]], 4)
    np.testing.assert_array_equal(clipped[0], clipped[1])
    assert (clipped[2] == 9).all()                         # outside: the bottom-right pixel
    gray = detection.crop_and_resize(image[:, :, 2], [[10, 0, 30, 19]], 6)
    assert gray.shape == (1, 6, 6, 1) and (gray == 255).all()


def synthetic_photo():
    """96 × 96 noisy grey with a dark square and a bright disc."""
    import cv2
    rng = np.random.default_rng(0)
    image = rng.normal(128, 6, size=(96, 96, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(image, (10, 12), (39, 41), (20, 30, 200), -1)      # box [10, 12, 40, 42]
    cv2.circle(image, (68, 66), 14, (250, 240, 20), -1)
    return image


def test_selective_search_gives_valid_boxes_around_the_objects():
    image = synthetic_photo()
    boxes = detection.selective_search(image)
    assert boxes.ndim == 2 and boxes.shape[1] == 4 and 0 < len(boxes) <= 2000
    assert np.issubdtype(boxes.dtype, np.integer)
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 96).all() and (boxes[:, 3] <= 96).all()
    assert (boxes[:, 2:] - boxes[:, :2] >= 4).all()                  # min_size
    assert iou(boxes, [[10, 12, 40, 42]]).max() > 0.9                # the square is proposed
    assert iou(boxes, [[54, 52, 83, 81]]).max() > 0.7                # and the disc
    # The same image gives the same proposals in the same order.
    np.testing.assert_array_equal(boxes, detection.selective_search(image))
    assert len(detection.selective_search(image, max_proposals=3)) == 3
    assert len(detection.selective_search(image[:, :, 1])) > 0        # grayscale
    with pytest.raises(ValueError, match="unknown mode"):
        detection.selective_search(image, mode="slow")


def test_selective_search_many_gives_each_image_its_own_proposals_in_order():
    images = [synthetic_photo(), synthetic_photo()[::-1].copy(), synthetic_photo()[:, ::-1].copy()]

    class Bar:
        count = 0

        def update(self, steps):
            self.count += steps

    bar = Bar()
    many = detection.selective_search_many(images, max_proposals=50, workers=2, progress=bar)
    assert bar.count == 3 and len(many) == 3
    for image, boxes in zip(images, many):
        np.testing.assert_array_equal(boxes, detection.selective_search(image, max_proposals=50))
    assert not np.array_equal(many[0], many[1])          # not one image's boxes three times


def test_stage_clock_appends_each_stage_and_times_nothing_without_timings():
    timings = {}
    clock = detection.StageClock(timings)
    time.sleep(0.02)
    clock.lap("proposals")
    clock.lap("nms")
    clock.lap("nms")
    assert list(timings) == ["proposals", "nms"] and len(timings["nms"]) == 2
    assert timings["proposals"][0] >= 0.02 and max(timings["nms"]) < 0.02
    detection.StageClock(None).lap("proposals")  # no dict to fill: nothing to fail
