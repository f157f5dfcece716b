import cv2
import numpy as np
import pytest

from dlcourse import scenes
from dlcourse.data import DataError
from dlcourse.detection import iou


def block_digit(top, left, bottom, right):
    """A 28 × 28 "digit" whose ink is one solid rectangle: its exact box is known."""
    image = np.zeros((28, 28), dtype=np.uint8)
    image[top:bottom, left:right] = 255
    return image


TALL = block_digit(4, 9, 24, 19)       # ink 10 wide, 20 tall
WIDE = block_digit(9, 4, 19, 24)       # ink 20 wide, 10 tall
SQUARE = block_digit(6, 6, 22, 22)     # ink 16 × 16


# ---------------------------------------------------------------------------
# Synthetic scenes
# ---------------------------------------------------------------------------

def test_scene_sets_are_reproducible_by_seed():
    first = scenes.make_scene_set(3, seed=5)
    again = scenes.make_scene_set(3, seed=5)
    other = scenes.make_scene_set(3, seed=6)
    held_out = scenes.make_scene_set(3, seed=5, split="test")
    for (image, boxes, labels), (image_2, boxes_2, labels_2) in zip(first, again):
        np.testing.assert_array_equal(image, image_2)
        np.testing.assert_array_equal(boxes, boxes_2)
        np.testing.assert_array_equal(labels, labels_2)
    assert not np.array_equal(first[0][0], other[0][0])
    assert not np.array_equal(first[0][0], held_out[0][0])
    with pytest.raises(ValueError, match="unknown split"):
        scenes.make_scene_set(1, seed=0, split="validation")


def test_mnist_scenes_have_valid_separate_boxes():
    counts = []
    for image, boxes, labels in scenes.make_scene_set(40, seed=0):
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        assert boxes.dtype == np.int64 and labels.tolist() == [0] * len(boxes)
        counts.append(len(boxes))
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 128).all()
        sizes = boxes[:, 2:] - boxes[:, :2]
        # The ink of a digit scaled to 28…48 pixels: MNIST digits are ~20/28 tall.
        assert (sizes > 0).all() and (sizes <= 48).all() and (sizes[:, 1] >= 8).all()
        overlaps = iou(boxes, boxes)
        np.fill_diagonal(overlaps, 0)
        assert overlaps.max() <= 0.1
        # Some ink in every box stands out from the background around it.
        for x1, y1, x2, y2 in boxes:
            around = image[max(y1 - 2, 0):y2 + 2, max(x1 - 2, 0):x2 + 2].astype(float)
            inside = np.zeros(around.shape[:2], dtype=bool)
            inside[y1 - max(y1 - 2, 0):, x1 - max(x1 - 2, 0):][:y2 - y1, :x2 - x1] = True
            background = np.median(around[~inside], axis=0)
            assert np.linalg.norm(around[inside] - background, axis=1).max() > 60
    assert set(counts) == {1, 2, 3}


@pytest.mark.parametrize("side", [28, 56])
def test_a_box_is_the_tight_box_of_the_ink(side):
    rng = np.random.default_rng(3)
    for _ in range(8):
        image, boxes, _ = scenes.make_scene(rng, TALL[None], np.array([1]), num_objects=(1, 1),
                                            digit_size_range=(side, side))
        (x1, y1, x2, y2), = boxes
        scale = side // 28
        # The ink rectangle is 10 × 20 at scale 1: exactly, or within a pixel once enlarged.
        assert abs((x2 - x1) - 10 * scale) <= scale - 1 and abs((y2 - y1) - 20 * scale) <= scale - 1
        # Inside (away from the blended rim), every pixel is the digit's colour ...
        colour = image[(y1 + y2) // 2, (x1 + x2) // 2].astype(int)
        inner = image[y1 + scale:y2 - scale, x1 + scale:x2 - scale].astype(int)
        assert (np.abs(inner - colour) <= 1).all()
        # ... and the ring of pixels just outside the box is not.
        padded = image[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1].astype(int)
        ring = np.ones(padded.shape[:2], dtype=bool)
        ring[1:-1, 1:-1] = False
        assert np.linalg.norm(padded[ring] - colour, axis=1).mean() > 40


def test_classes_select_digits_and_number_them():
    digits = np.stack([TALL, WIDE, SQUARE])
    digit_labels = np.array([7, 3, 5])
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(10):
        _, boxes, labels = scenes.make_scene(rng, digits, digit_labels, classes=(7, 3),
                                             digit_size_range=(28, 28))
        for (x1, y1, x2, y2), label in zip(boxes, labels):
            # Label 0 is the first class (7, the tall block), label 1 the second (3, wide).
            assert (x2 - x1, y2 - y1) == ((10, 20) if label == 0 else (20, 10))
            seen.add(int(label))
    assert seen == {0, 1}                           # both classes, never the square 5
    _, _, labels = scenes.make_scene(rng, digits, digit_labels, num_objects=(3, 3))
    assert labels.tolist() == [0, 0, 0]             # one class "digit"
    assert scenes.scene_class_names() == ("digit",)
    assert scenes.scene_class_names((7, 3)) == ("7", "3")
    with pytest.raises(ValueError, match=r"digit\(s\) \[4\]"):
        scenes.make_scene(rng, digits, digit_labels, classes=(7, 4))
    with pytest.raises(ValueError, match="digit_size_range"):
        scenes.make_scene(rng, digits, digit_labels, size=32, digit_size_range=(28, 40))


def test_mnist_classes_use_only_those_digits():
    for _, boxes, labels in scenes.make_scene_set(6, seed=1, classes=(0, 1, 2), split="test"):
        assert set(labels.tolist()) <= {0, 1, 2} and len(labels) == len(boxes)


# ---------------------------------------------------------------------------
# The course's annotation files
# ---------------------------------------------------------------------------

def test_annotation_csv_with_spaces_or_commas(tmp_path):
    expected = [[10, 20, 30, 40], [5, 6, 7, 8]]
    for name, text in [("spaces.csv", "2\n10 20 30 40\n5 6 7 8\n"),
                       ("commas.csv", "2\n10,20,30,40\n5, 6, 7, 8\n\n"),
                       ("excel.csv", "\ufeff2,,,\r\n10,20,30,40\r\n5,6,7,8\r\n")]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        boxes = scenes.load_annotation_csv(path)
        assert boxes.dtype == np.int64 and boxes.tolist() == expected
    (tmp_path / "none.csv").write_text("0\n")
    assert scenes.load_annotation_csv(tmp_path / "none.csv").shape == (0, 4)


@pytest.mark.parametrize("text, line, problem", [
    ("", None, "empty file"),
    ("\n  \n", None, "empty file"),
    ("two\n1 2 3 4\n", 1, "number of boxes"),
    ("2\n1 2 3 4\n", 1, "says 2 boxes but 1"),
    ("1\n1 2 3 4\n5 6 7 8\n", 1, "says 1 boxes but 2"),
    ("2\n1 2 3 4\n1 2 3\n", 3, "expected 4 numbers"),
    ("1\n1 2 3.5 4\n", 2, "whole numbers"),
    ("1\n1 2 x 4\n", 2, "whole numbers"),
    ("1\n5 2 3 4\n", 2, "x2 > x1"),
    ("1\n1 9 3 9\n", 2, "y2 > y1"),
])
def test_malformed_annotation_names_file_and_line(tmp_path, text, line, problem):
    path = tmp_path / "image_07.csv"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        scenes.load_annotation_csv(path)
    message = str(caught.value)
    assert "image_07.csv" in message and problem in message and "\n" not in message
    if line is not None:
        assert f"line {line}:" in message or f"line {line} " in message


def test_missing_annotation_file(tmp_path):
    with pytest.raises(DataError, match="nothing.csv: annotation file is missing"):
        scenes.load_annotation_csv(tmp_path / "nothing.csv")


def write_course_folders(tmp_path):
    images, annotations = tmp_path / "images", tmp_path / "annotations"
    images.mkdir()
    annotations.mkdir()
    blue = np.zeros((30, 40, 3), dtype=np.uint8)
    blue[:, :, 0] = 255                                       # BGR: pure blue
    cv2.imwrite(str(images / "b.png"), blue)
    cv2.imwrite(str(images / "a.png"), np.full((20, 20, 3), 128, dtype=np.uint8))
    (images / "notes.txt").write_text("not an image")
    (annotations / "a.csv").write_text("1\n1 2 10 12\n")
    (annotations / "b.csv").write_text("2\n0,0,40,30\n5,5,9,9\n")
    (annotations / "orphan.csv").write_text("0\n")
    return images, annotations


def test_course_dataset_pairs_images_with_annotations(tmp_path):
    images, annotations = write_course_folders(tmp_path)
    dataset = scenes.load_course_dataset(images, annotations)
    assert len(dataset) == 2
    (image_a, boxes_a), (image_b, boxes_b) = dataset            # in file-name order
    assert image_a.shape == (20, 20, 3) and boxes_a.tolist() == [[1, 2, 10, 12]]
    assert image_b.shape == (30, 40, 3) and boxes_b.tolist() == [[0, 0, 40, 30], [5, 5, 9, 9]]
    assert image_b[0, 0].tolist() == [0, 0, 255]                # RGB, not OpenCV's BGR


def test_course_dataset_errors_name_the_file(tmp_path):
    images, annotations = write_course_folders(tmp_path)
    (annotations / "b.csv").write_text("1\n0 0 41 30\n")
    with pytest.raises(DataError, match=r"b\.csv: box \[0, 0, 41, 30\] extends beyond the 40×30 image"):
        scenes.load_course_dataset(images, annotations)
    (annotations / "b.csv").unlink()
    with pytest.raises(DataError, match=r"b\.png: no annotation file .*b\.csv"):
        scenes.load_course_dataset(images, annotations)
    (images / "b.png").write_bytes(b"not really a PNG")
    (annotations / "b.csv").write_text("0\n")
    with pytest.raises(DataError, match=r"b\.png: not a readable image"):
        scenes.load_course_dataset(images, annotations)
    with pytest.raises(DataError, match="folder is missing"):
        scenes.load_course_dataset(tmp_path / "photos", annotations)
    with pytest.raises(DataError, match="no .jpg or .png images"):
        scenes.load_course_dataset(annotations, annotations)


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

def test_draw_boxes_outlines_the_box_edge_only():
    image = np.zeros((40, 50, 3), dtype=np.uint8)
    drawn = scenes.draw_boxes(image, [[10, 12, 20, 25]])
    assert (image == 0).all()                                   # the input is untouched
    changed = (drawn != 0).any(axis=2)
    edge = np.zeros_like(changed)
    edge[12:25, 10:20] = True
    edge[13:24, 11:19] = False                                  # the box's own edge pixels
    np.testing.assert_array_equal(changed, edge)
    assert drawn[12, 15].tolist() == [255, 0, 0]                # red in RGB


def test_draw_boxes_captions_stay_near_the_box():
    image = np.zeros((60, 80), dtype=np.uint8)                  # grayscale becomes RGB
    drawn = scenes.draw_boxes(image, [[10, 30, 30, 50]], labels=[0], scores=[0.93],
                              class_names=("digit",), color=(0, 255, 0))
    assert drawn.shape == (60, 80, 3)
    rows, columns = np.nonzero((drawn != 0).any(axis=2))
    assert rows.min() >= 30 - 15 and rows.max() <= 49            # caption strip just above
    assert columns.min() >= 10 and columns.max() <= 10 + 60
    assert rows.min() < 30                                       # the caption is there
    # A box at the top of the image gets its caption inside.
    top = scenes.draw_boxes(image, [[10, 0, 40, 20]], labels=[0])
    assert not (top[21:] != 0).any()
