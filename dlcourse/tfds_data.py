"""TensorFlow Datasets (TFDS) as a data source: ``--data-source tfds``.

TFDS is how Keras users usually load standard data sets, so the labs can take
their data from it too.  TFDS downloads a data set the first time and keeps
it in ``$TFDS_DATA_DIR`` (default ``~/tensorflow_datasets``); later runs read
it from there without the network.

This is the only module that imports ``tensorflow_datasets``, and
``dlcourse.data`` imports it only when a lab asks for TFDS, so the bundled
(offline, default) path never needs it.  TFDS yields ``tf.data`` pipelines;
everything leaves this module as NumPy arrays in the layout of the bundled
loaders, so the labs do not change.
"""
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from dlcourse.data import DataError

# TFDS retries a failed connection ten times with back-off, so without a network the
# error comes after three and a half minutes; five tries (about 6 s) still ride out a
# flaky connection.  (A TFDS without this setting keeps its own.)
try:
    from tensorflow_datasets.core.download import downloader
    downloader.MAX_RETRIES = min(downloader.MAX_RETRIES, 5)
except (ImportError, AttributeError):
    pass

# Pascal VOC's 20 classes, in VOC's (and TFDS's label index) order.
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
               "train", "tvmonitor")
# Examples per tf.data batch when a whole split is turned into one array.
_CHUNK = 10_000


def _fail(name, error, fallback):
    """The one line a lab prints when TFDS cannot get ``name`` (usually: no network on first use)."""
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return DataError(f"TFDS could not download or read {name} (no network?): {first_line}; {fallback}")


def _load_examples(name, split, fallback, **options):
    """``tfds.load(name, split=split, **options)`` as NumPy: a list of examples, or with
    ``batched`` one array per feature.  Download and read errors become one ``DataError`` line."""
    batched = options.pop("batched", False)
    try:
        dataset = tfds.load(name, split=split, data_dir=os.environ.get("TFDS_DATA_DIR"), **options)
        if not batched:
            return list(tfds.as_numpy(dataset))
        # Whole-split batches (tfds.load's batch_size=-1) need the split size from the
        # prepared metadata; fixed chunks work for any split.
        chunks = list(tfds.as_numpy(dataset.batch(_CHUNK)))
    except (OSError, tfds.download.DownloadError, tf.errors.OpError) as error:
        raise _fail(name, error, fallback) from None
    if not chunks:
        raise DataError(f"TFDS gave no examples of {name} {split}; {fallback}")
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))


def load_image_classification(name, fallback="use --data-source bundled (the default, offline)"):
    """``(x_train, y_train), (x_test, y_test)`` of a 28×28 grey-scale TFDS set (``mnist``,
    ``fashion_mnist``): uint8 images (N, 28, 28) and uint8 labels, as ``keras.datasets`` gives them."""
    splits = []
    for split in ("train", "test"):
        images, labels = _load_examples(name, split, fallback, as_supervised=True, batched=True)
        splits.append((images.reshape(-1, 28, 28).astype("uint8"), labels.astype("uint8")))
    return tuple(splits)


def load_iris():
    """Iris from TFDS (UCI's copy, one ``train`` split of 150 flowers): ``features`` float32
    (150, 4) in cm and ``labels`` int64, in the bundled loader's order of species."""
    features, labels = _load_examples("iris", "train", "use --data-source bundled (the default, offline)",
                                      as_supervised=True, batched=True)
    return features.astype("float32"), labels.astype("int64")


def voc_pixel_boxes(normalised, height, width):
    """TFDS VOC boxes → the lab's pixel boxes ``(x1, y1, x2, y2)`` int64, the slice ``image[y1:y2, x1:x2]``.

    TFDS stores VOC's annotation divided by the image size, in the order
    ``(ymin, xmin, ymax, xmax)``.  VOC counts pixels from 1 and includes its
    ``xmax``/``ymax`` pixel, so the first pixel of the box is ``xmin - 1`` from
    0 and the end, exclusive, is ``xmax`` itself.
    """
    scaled = np.asarray(normalised, dtype="float64").reshape(-1, 4) * [height, width, height, width]
    ymin, xmin, ymax, xmax = np.round(scaled).astype("int64").T
    boxes = np.stack([xmin - 1, ymin - 1, xmax, ymax], axis=1)
    return np.clip(boxes, 0, [width, height, width, height])


def load_voc2007(split, limit=None, include_difficult=False):
    """Pascal VOC 2007 from TFDS (``voc/2007``) as the R-CNN lab's scenes.

    Returns a list of ``(image uint8 RGB (H, W, 3), boxes (K, 4) int64,
    labels (K,) int64)``: boxes in pixels as ``voc_pixel_boxes`` makes them,
    labels indexing ``VOC_CLASSES``.  ``split`` is ``train`` (2 501 images),
    ``validation`` (2 510) or ``test`` (4 952); ``limit`` keeps the first
    images only.  Objects VOC marks "difficult" are left out unless
    ``include_difficult``, as VOC's own evaluation ignores them; images left
    with no object are skipped.  The first use downloads about 870 MB.
    """
    if split not in ("train", "validation", "test"):
        raise ValueError(f"unknown VOC split {split!r}; choose train, validation or test")
    selection = split if limit is None else f"{split}[:{int(limit)}]"
    scenes = []
    for example in _load_examples("voc/2007", selection, "use the synthetic scenes (drop --dataset voc2007)"):
        image, objects = example["image"], example["objects"]
        boxes = voc_pixel_boxes(objects["bbox"], *image.shape[:2])
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # a box must have an area
        if not include_difficult:
            keep &= ~np.asarray(objects["is_difficult"], dtype=bool)
        if keep.any():
            scenes.append((image, boxes[keep], np.asarray(objects["label"], dtype="int64")[keep]))
    return scenes
