"""Bounding-box regression: the paper's targets by hand, encode/decode round trips, the loss."""
import keras
import numpy as np
import pytest

from dlcourse import box_regression


def test_targets_of_a_hand_computed_pair():
    # P: centre (15, 30), 10 × 20.  G: centre (17, 25), 20 × 10.
    proposal, truth = [[10, 20, 20, 40]], [[7, 20, 27, 30]]
    np.testing.assert_allclose(box_regression.encode(proposal, truth),
                               [[0.2, -0.25, np.log(2.0), np.log(0.5)]])
    np.testing.assert_allclose(box_regression.encode(proposal, truth, weights=(10, 10, 5, 5)),
                               [[2.0, -2.5, 5 * np.log(2.0), 5 * np.log(0.5)]])


@pytest.mark.parametrize("weights", [(1, 1, 1, 1), box_regression.TRAINING_WEIGHTS])
def test_decode_undoes_encode(weights):
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 100, size=(50, 2))
    proposals = np.concatenate([corners, corners + rng.uniform(2, 60, size=(50, 2))], axis=1)
    corners = rng.uniform(0, 100, size=(50, 2))
    truths = np.concatenate([corners, corners + rng.uniform(2, 60, size=(50, 2))], axis=1)
    deltas = box_regression.encode(proposals, truths, weights)
    np.testing.assert_allclose(box_regression.decode(proposals, deltas, weights), truths, atol=1e-9)
    np.testing.assert_allclose(box_regression.decode(proposals, np.zeros((50, 4))), proposals)


def test_a_wild_prediction_gives_a_finite_box():
    box = box_regression.decode([[0, 0, 10, 10]], [[0, 0, 500, 500]])
    assert np.isfinite(box).all() and box[0, 2] - box[0, 0] <= 1000 * 10 / 16 + 1e-6


def test_class_deltas_pick_the_detected_class_four():
    deltas = np.arange(2 * 12).reshape(2, 12)  # 3 classes × 4
    np.testing.assert_array_equal(box_regression.class_deltas(deltas, [2, 0]),
                                  [[8, 9, 10, 11], [12, 13, 14, 15]])


def test_loss_trains_the_true_class_of_positives_only():
    targets = box_regression.regression_targets(
        [[0, 0, 10, 10], [0, 0, 10, 10], [5, 5, 9, 9]], [2, 0, 1],
        [[1, 1, 11, 11], [0, 0, 1, 1], [5, 5, 9, 9]])
    assert targets.shape == (3, 5) and targets[1, 1:].tolist() == [0, 0, 0, 0]
    prediction = np.zeros((3, 8), dtype="float32")
    loss = keras.ops.convert_to_numpy(box_regression.smooth_l1_loss(targets, prediction))
    # Region 0, class 2: targets (1, 1, 0, 0) → smooth-L1 0.5 + 0.5; region 2 sits on its box: 0.
    np.testing.assert_allclose(loss, [1.0, 0.0, 0.0], atol=1e-6)
    prediction[0, 4:6] = 1.0              # class 2's t_x, t_y now right
    prediction[0, 0:4] = 9.0              # class 1's columns do not count for a class-2 region
    prediction[1] = 7.0                   # background: anything goes
    loss = keras.ops.convert_to_numpy(box_regression.smooth_l1_loss(targets, prediction))
    np.testing.assert_allclose(loss, [0.0, 0.0, 0.0], atol=1e-6)
    prediction[2, 0] = 3.0                # a large error is L1: 3 − 0.5
    loss = keras.ops.convert_to_numpy(box_regression.smooth_l1_loss(targets, prediction))
    np.testing.assert_allclose(loss, [0.0, 0.0, 2.5], atol=1e-6)


def test_loose_regions_are_the_proposals_between_the_classifier_thresholds():
    truth = np.array([[0, 0, 20, 20], [50, 50, 70, 70]], dtype="float64")
    proposals = np.array([[0, 0, 20, 20],      # IoU 1: a positive of the classifier, not loose
                          [0, 0, 20, 30],      # 400 / 600 ≈ 0.67 with box 0: loose
                          [50, 50, 70, 80],    # ≈ 0.67 with box 1: loose
                          [0, 0, 20, 45],      # 400 / 900 ≈ 0.44: too far to be moved
                          [100, 100, 120, 120]], dtype="float64")
    boxes, labels, matches = box_regression.loose_regions(proposals, truth, [4, 7], count=10, rng=0)
    np.testing.assert_array_equal(boxes, proposals[1:3])
    assert labels.tolist() == [5, 8] and matches.tolist() == [0, 1]   # class + 1, and whose box
    assert len(box_regression.loose_regions(proposals, truth, [4, 7], count=1, rng=0)[0]) == 1
    assert len(box_regression.loose_regions(proposals, truth, [4, 7], count=0)[0]) == 0
    assert len(box_regression.loose_regions(proposals, np.zeros((0, 4)), [], count=10)[0]) == 0
