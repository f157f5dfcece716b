"""Images with boxed objects for the R-CNN lab (week 5).

Two sources:

* synthetic scenes (``make_scene``, ``make_scene_set``): MNIST digits pasted
  on a cluttered, textured canvas.  They need no download, every box is
  exact, and a seed reproduces the same data set on every machine;
* the course's own photos (``load_course_dataset``): a folder of images and a
  folder of annotation CSV files, one per image (``load_annotation_csv``).

Boxes follow ``dlcourse.detection``: ``(x1, y1, x2, y2)`` in pixels, the
slice ``image[y1:y2, x1:x2]``.  Images are uint8 RGB.
"""
import pathlib
import re

import numpy as np

from dlcourse.data import DataError, load_mnist
from dlcourse.detection import iou

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# A pixel of a scaled digit is "ink" (inside its box) from half intensity up.
INK_THRESHOLD = 128
SCENE_SIZE = 128  # pixels a side of every synthetic scene (make_scene's default)
# How many random placements to try for each object before giving up on it.
PLACEMENT_TRIES = 50


def scene_class_names(classes=None):
    """Names of the scene labels: ``("digit",)`` for one class, else the digits as text."""
    return ("digit",) if classes is None else tuple(str(digit) for digit in classes)


# ---------------------------------------------------------------------------
# Synthetic scenes
# ---------------------------------------------------------------------------

def _background(rng, size):
    """A smooth colour gradient with a mottled texture, float (size, size, 3).

    A flat canvas would make detection trivial (any non-background pixel is
    an object); the gradient and texture make colour alone unreliable.
    """
    import cv2

    corners = rng.uniform(30, 225, size=(2, 2, 3))
    ramp = np.linspace(0.0, 1.0, size)
    y, x = ramp[:, None, None], ramp[None, :, None]
    canvas = (corners[0, 0] * (1 - y) * (1 - x) + corners[0, 1] * (1 - y) * x
              + corners[1, 0] * y * (1 - x) + corners[1, 1] * y * x)
    coarse = rng.normal(0.0, 15.0, size=(6, 6, 3)).astype("float32")
    return canvas + cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)


def _paste(canvas, ink, left, top, colour):
    """Blend ``colour`` into ``canvas`` (float) with ``ink`` (uint8, 255 = opaque) as the mask."""
    alpha = ink[:, :, None] / 255.0
    region = canvas[top:top + ink.shape[0], left:left + ink.shape[1]]
    region[:] = region * (1 - alpha) + np.asarray(colour, dtype="float64") * alpha


def _random_colour(rng):
    return rng.integers(0, 256, size=3).astype("float64")


def _add_clutter(rng, canvas, digits_images):
    """Lines, rectangles, blobs and fragments of digit strokes: things that are not objects.

    The stroke fragments matter most: they look locally like a digit, so a
    classifier cannot just learn "strokes = object" and must see the whole shape.
    """
    import cv2

    size = canvas.shape[0]

    def point():
        return tuple(int(value) for value in rng.integers(0, size, size=2))

    for _ in range(rng.integers(1, 4)):
        cv2.line(canvas, point(), point(), _random_colour(rng).tolist(), int(rng.integers(1, 3)))
    for _ in range(rng.integers(0, 3)):
        cv2.rectangle(canvas, point(), point(), _random_colour(rng).tolist(), 1)
    for _ in range(rng.integers(1, 4)):
        cv2.circle(canvas, point(), int(rng.integers(3, size // 10 + 4)), _random_colour(rng).tolist(), -1)
    for _ in range(rng.integers(2, 5)):
        digit = digits_images[rng.integers(len(digits_images))]
        top, left = rng.integers(4, 15, size=2)
        piece = digit[top:top + 10, left:left + 10]
        side = int(rng.integers(8, max(9, size // 8)))
        piece = cv2.resize(piece, (side, side), interpolation=cv2.INTER_LINEAR)
        x, y = rng.integers(0, size - side, size=2)
        _paste(canvas, piece, x, y, _random_colour(rng))


def _contrasting_colour(rng, background, ink, tries=30, min_distance=130.0):
    """A random colour far from the mean colour of ``background`` under the ``ink``."""
    weights = ink.reshape(-1).astype("float64")
    mean = weights @ background.reshape(-1, 3) / weights.sum()
    for _ in range(tries):
        colour = _random_colour(rng)
        if np.linalg.norm(colour - mean) >= min_distance:
            return colour
    return 255.0 - mean


def _check_scene_arguments(size, num_objects, digit_size_range, classes, digits_labels):
    low, high = digit_size_range
    if not 1 <= low <= high <= size:
        raise ValueError(f"digit_size_range {digit_size_range} must lie within 1…{size} (the image size)")
    if not 1 <= num_objects[0] <= num_objects[1]:
        raise ValueError(f"num_objects {num_objects} must be (minimum, maximum), 1 ≤ minimum ≤ maximum")
    if classes is not None:
        if len(set(classes)) != len(classes) or not classes:
            raise ValueError(f"classes {classes} must be distinct digits")
        missing = set(classes) - set(np.unique(digits_labels).tolist())
        if missing:
            raise ValueError(f"no images of digit(s) {sorted(missing)} among the digits given")


def make_scene(rng, digits_images, digits_labels, size=SCENE_SIZE, num_objects=(1, 3),
               digit_size_range=(28, 48), classes=None, max_overlap=0.1):
    """One synthetic scene: ``(image uint8 (size, size, 3), boxes (K, 4) int64, labels (K,) int64)``.

    Between ``num_objects[0]`` and ``num_objects[1]`` MNIST digits (28 × 28,
    white ink on black) are scaled to a random side in ``digit_size_range``,
    given a colour that stands out from the canvas beneath and pasted at a
    random place on a cluttered canvas.  A digit's box is the tight box of
    its ink (pixels at least half intensity) after scaling, so the box is
    smaller than the pasted square, as a human annotator would draw it.
    Boxes overlap by IoU ≤ ``max_overlap``; when no free place is found in
    50 tries, the scene has fewer objects.

    ``classes=None``: one class, every digit is label 0 ("digit").  A tuple of
    digits, e.g. ``(0, 1, 2)``: only those digits appear, and a digit's label
    is its position in the tuple.  ``rng`` is a ``np.random.Generator``: the
    same generator state gives the same scene.
    """
    import cv2

    classes = None if classes is None else tuple(int(digit) for digit in classes)
    _check_scene_arguments(size, num_objects, digit_size_range, classes, digits_labels)
    if classes is None:
        candidates = np.arange(len(digits_images))
    else:
        candidates = np.flatnonzero(np.isin(digits_labels, classes))

    canvas = _background(rng, size)
    _add_clutter(rng, canvas, digits_images)
    canvas += rng.normal(0.0, 5.0, size=canvas.shape)       # sensor-like grain
    canvas = np.clip(canvas, 0, 255)

    boxes, labels = [], []
    for _ in range(rng.integers(num_objects[0], num_objects[1] + 1)):
        for _ in range(PLACEMENT_TRIES):
            index = candidates[rng.integers(len(candidates))]
            side = int(rng.integers(digit_size_range[0], digit_size_range[1] + 1))
            ink = cv2.resize(digits_images[index], (side, side), interpolation=cv2.INTER_LINEAR)
            rows = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=1))
            columns = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
            if len(rows) == 0:                               # a blank image: no object to box
                continue
            left, top = (int(value) for value in rng.integers(0, size - side + 1, size=2))
            box = [left + columns[0], top + rows[0], left + columns[-1] + 1, top + rows[-1] + 1]
            if boxes and iou([box], boxes).max() > max_overlap:
                continue
            square = canvas[top:top + side, left:left + side]
            _paste(canvas, ink, left, top, _contrasting_colour(rng, square, ink))
            boxes.append(box)
            labels.append(0 if classes is None else classes.index(int(digits_labels[index])))
            break
    image = np.round(canvas).astype("uint8")
    return image, np.array(boxes, dtype="int64").reshape(-1, 4), np.array(labels, dtype="int64")


def make_digit_patch(rng, digit, size=32, side_range=(26, 35)):
    """One MNIST digit (28 × 28, white ink on black) on a ``size`` × ``size`` patch of scene
    background, uint8 (size, size, 3): the digit scaled to a side in ``side_range`` (cut to the
    patch when larger), in a contrasting colour, at a random place.

    What a region crop of a scene looks like, without the clutter: the images of
    ``dlcourse.digit_pretraining``, which teaches a backbone the digits before detection.
    """
    import cv2

    canvas = _background(rng, size) + rng.normal(0.0, 5.0, size=(size, size, 3))
    side = int(rng.integers(side_range[0], side_range[1] + 1))
    ink = cv2.resize(digit, (side, side), interpolation=cv2.INTER_LINEAR)
    if side > size:                                         # keep the middle of a large digit
        cut = (side - size) // 2
        ink = ink[cut:cut + size, cut:cut + size]
    side = ink.shape[0]
    left, top = (int(value) for value in rng.integers(0, size - side + 1, size=2))
    square = canvas[top:top + side, left:left + side]
    _paste(canvas, ink, left, top, _contrasting_colour(rng, square, ink))
    return np.round(np.clip(canvas, 0, 255)).astype("uint8")


def make_scene_set(count, seed, split="train", size=SCENE_SIZE, num_objects=(1, 3),
                   digit_size_range=(28, 48), classes=None):
    """``count`` scenes from the bundled MNIST, the same for the same ``seed``.

    ``split="train"`` pastes MNIST training digits, ``split="test"`` the test
    digits: held-out scenes then show digits the classifier never saw, not
    just new arrangements of familiar ones.
    """
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    train, test = load_mnist()
    images, labels = train if split == "train" else test
    rng = np.random.default_rng(seed)
    return [make_scene(rng, images, labels, size=size, num_objects=num_objects,
                       digit_size_range=digit_size_range, classes=classes) for _ in range(count)]


# ---------------------------------------------------------------------------
# The course's annotated photos
# ---------------------------------------------------------------------------

def load_annotation_csv(path):
    """Boxes (K, 4) int64 from one annotation file of the course's format.

    The first line is the number of boxes; then one ``x1 y1 x2 y2`` line per
    box, the numbers separated by spaces, tabs and/or commas (so a file saved
    from a spreadsheet works too).  Blank lines are ignored.  Anything else
    raises ``DataError`` naming the file and line: a wrong annotation would
    otherwise silently teach the detector wrong boxes.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file is missing")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file (not UTF-8)") from None
    lines = [(number, [field for field in re.split(r"[,\s]+", line) if field])
             for number, line in enumerate(text.splitlines(), start=1)]
    lines = [(number, fields) for number, fields in lines if fields]
    if not lines:
        raise DataError(f"{path}: empty file (expected the number of boxes on line 1)")
    number, fields = lines[0]
    if len(fields) != 1 or not re.fullmatch(r"\d+", fields[0]):
        raise DataError(f"{path}: line {number}: expected the number of boxes, got {' '.join(fields)!r}")
    count = int(fields[0])
    if len(lines) - 1 != count:
        raise DataError(f"{path}: line {number} says {count} boxes but {len(lines) - 1} box lines follow")
    boxes = []
    for number, fields in lines[1:]:
        if len(fields) != 4:
            raise DataError(f"{path}: line {number}: expected 4 numbers x1 y1 x2 y2, got {len(fields)}")
        if not all(re.fullmatch(r"[+-]?\d+", field) for field in fields):
            raise DataError(f"{path}: line {number}: coordinates must be whole numbers, "
                            f"got {' '.join(fields)!r}")
        x1, y1, x2, y2 = (int(field) for field in fields)
        if min(x1, y1) < 0:
            raise DataError(f"{path}: line {number}: negative coordinate in {x1} {y1} {x2} {y2}")
        if x2 <= x1 or y2 <= y1:
            raise DataError(f"{path}: line {number}: need x2 > x1 and y2 > y1, got {x1} {y1} {x2} {y2}")
        boxes.append((x1, y1, x2, y2))
    return np.array(boxes, dtype="int64").reshape(-1, 4)


def read_image(path):
    """An image file as uint8 RGB (H, W, 3), or ``DataError``.

    Reads the bytes with NumPy and decodes them with ``cv2.imdecode``
    because ``cv2.imread`` cannot open paths with Korean (non-ASCII)
    characters on Windows.
    """
    import cv2

    path = pathlib.Path(path)
    try:
        data = np.fromfile(path, dtype="uint8")
    except OSError as error:
        raise DataError(f"{path}: could not be read ({error.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, or not JPEG/PNG)")
    return np.ascontiguousarray(image[:, :, ::-1])                   # OpenCV's BGR → RGB


def load_course_dataset(images_dir, annotations_dir):
    """Every ``name.jpg|jpeg|png`` in ``images_dir`` with its boxes from ``annotations_dir/name.csv``.

    Returns a list of ``(image uint8 RGB, boxes (K, 4) int64)`` in file-name
    order.  A missing annotation, an unreadable image or a box outside its
    image raises ``DataError`` naming the file.  Annotation files without an
    image are ignored.
    """
    images_dir, annotations_dir = pathlib.Path(images_dir), pathlib.Path(annotations_dir)
    for folder in (images_dir, annotations_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: folder is missing")
    image_paths = sorted(path for path in images_dir.iterdir()
                         if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)
    if not image_paths:
        raise DataError(f"{images_dir}: no .jpg or .png images in this folder")
    dataset = []
    for image_path in image_paths:
        annotation_path = annotations_dir / f"{image_path.stem}.csv"
        if not annotation_path.is_file():
            raise DataError(f"{image_path}: no annotation file {annotation_path}")
        image = read_image(image_path)
        boxes = load_annotation_csv(annotation_path)
        height, width = image.shape[:2]
        outside = (boxes[:, 2] > width) | (boxes[:, 3] > height)
        if outside.any():
            raise DataError(f"{annotation_path}: box {boxes[np.argmax(outside)].tolist()} extends beyond "
                            f"the {width}×{height} image {image_path.name}")
        dataset.append((image, boxes))
    return dataset


# ---------------------------------------------------------------------------
# Pictures
# ---------------------------------------------------------------------------

def draw_boxes(image, boxes, labels=None, scores=None, color=(255, 0, 0), class_names=None,
               thickness=1):
    """A copy of ``image`` (RGB; grayscale becomes RGB) with the boxes drawn on it.

    Each box is outlined on its own edge pixels, in ``color`` (RGB, red by
    default).  With ``labels`` and/or ``scores`` a caption such as
    ``"digit 0.93"`` is written in a filled strip just above the box (or
    inside its top when the box touches the top of the image).
    ``class_names[label]`` names a label; without it the number is shown.
    """
    import cv2

    image = np.asarray(image)
    canvas = np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image.copy()
    canvas = np.ascontiguousarray(canvas)
    color = tuple(int(value) for value in color)
    boxes = np.round(np.asarray(boxes, dtype="float64").reshape(-1, 4)).astype(int)
    for index, (x1, y1, x2, y2) in enumerate(boxes):
        # cv2.rectangle's corners are inclusive pixels; the box's x2, y2 are exclusive.
        cv2.rectangle(canvas, (int(x1), int(y1)), (int(x2) - 1, int(y2) - 1), color, thickness)
        parts = []
        if labels is not None:
            label = int(labels[index])
            parts.append(class_names[label] if class_names is not None else str(label))
        if scores is not None:
            parts.append(f"{float(scores[index]):.2f}")
        if not parts:
            continue
        caption = " ".join(parts)
        font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.35
        (text_width, text_height), baseline = cv2.getTextSize(caption, font, scale, 1)
        strip_height = text_height + baseline + 1
        top = y1 - strip_height if y1 - strip_height >= 0 else y1
        cv2.rectangle(canvas, (int(x1), int(top)), (int(x1) + text_width, int(top) + strip_height - 1),
                      color, -1)
        # Black or white text, whichever reads better on the strip colour.
        ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
        cv2.putText(canvas, caption, (int(x1), int(top) + text_height), font, scale, ink, 1,
                    cv2.LINE_AA)
    return canvas
