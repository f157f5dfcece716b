"""Data loaders that work offline from the bundles shipped in ``data/``.

Every bundle is checked against ``data/SHA256SUMS`` before it is used, so a
truncated download or an edited file is caught with one clear message instead
of a confusing failure deep inside training.  ``source="online"`` fetches the
same data from Keras's own mirror instead, when the user asks for it and the
network is there; ``source="tfds"`` from TensorFlow Datasets
(``dlcourse.tfds_data``, imported only then).
"""
import csv
import hashlib
import json
import os
import pathlib
import unicodedata

import numpy as np

# DLCOURSE_DATA_DIR points the loaders at a copy of data/ elsewhere.
DATA_DIR = pathlib.Path(os.environ.get("DLCOURSE_DATA_DIR")
                        or pathlib.Path(__file__).resolve().parent.parent / "data")
SOURCES = ("bundled", "online", "tfds")
IRIS_SPECIES = ("setosa", "versicolor", "virginica")
MNIST_VALIDATION_SIZE = 5000
# The 28×28 grey-scale image sets the week-1 classifiers can learn, with their class names.
IMAGE_DATASETS = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}


class DataError(RuntimeError):
    """A data file is missing, corrupt or unreadable; the message says how to fix it."""


def _restore_hint(name):
    return (f"restore it with `git checkout -- data/{name}` "
            f"(or rebuild it with data/make_bundles.py, see data/README.md)")


def expected_checksums(data_dir=None):
    """The manifest ``data/SHA256SUMS`` as ``{file name: sha256 hex}``."""
    manifest = pathlib.Path(data_dir or DATA_DIR) / "SHA256SUMS"
    if not manifest.is_file():
        raise DataError(f"{manifest}: checksum manifest is missing; {_restore_hint('SHA256SUMS')}")
    checksums = {}
    for line in manifest.read_text().splitlines():
        if line.strip():
            digest, name = line.split()
            checksums[name] = digest
    return checksums


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_path(name, data_dir=None):
    """Path of the bundle ``name`` after checking that it exists and matches its checksum."""
    data_dir = pathlib.Path(data_dir or DATA_DIR)
    path = data_dir / name
    expected = expected_checksums(data_dir).get(name)
    if expected is None:
        raise DataError(f"{path}: not listed in {data_dir / 'SHA256SUMS'}")
    if not path.is_file():
        raise DataError(f"{path}: file is missing; {_restore_hint(name)}")
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(f"{path}: corrupt (sha256 {actual[:12]}…, expected {expected[:12]}…); "
                        f"{_restore_hint(name)}")
    return path


def _check_source(source):
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; choose one of {', '.join(SOURCES)}")


def _tfds_data():
    """The TFDS seam, imported only for ``source="tfds"`` (TFDS and TensorFlow are heavy)."""
    try:
        from dlcourse import tfds_data
    except ImportError as error:
        raise DataError(f"--data-source tfds needs TensorFlow and TensorFlow Datasets ({error}); "
                        "`pip install -e '.[tensorflow]'` (any KERAS_BACKEND can then read TFDS), "
                        "or use --data-source bundled") from None
    return tfds_data


def load_mnist(source="bundled", data_dir=None):
    """MNIST as ``(x_train, y_train), (x_test, y_test)``: uint8 images 28×28 and uint8 labels.

    60 000 training and 10 000 test images, exactly as published (TFDS gives
    them in its own order).
    """
    _check_source(source)
    if source == "tfds":
        return _tfds_data().load_image_classification("mnist")
    if source == "online":
        import keras
        try:
            return keras.datasets.mnist.load_data()
        except Exception as error:  # the network error types vary by platform
            raise DataError(f"could not download MNIST ({error}); "
                            "use the bundled copy (drop --data-source online)") from None
    path = verified_path("mnist.npz", data_dir)
    try:
        with np.load(path, allow_pickle=False) as bundle:
            return (bundle["x_train"], bundle["y_train"]), (bundle["x_test"], bundle["y_test"])
    except (OSError, ValueError, KeyError) as error:
        raise DataError(f"{path}: unreadable ({error}); {_restore_hint('mnist.npz')}") from None


def load_fashion_mnist(source="online"):
    """Fashion-MNIST (Zalando's clothes, ``IMAGE_DATASETS["fashion_mnist"]``) in MNIST's layout:
    ``(x_train, y_train), (x_test, y_test)``, uint8 28×28 images, 60 000 + 10 000.

    A harder drop-in for MNIST.  It is not bundled: it comes from Keras's mirror
    (``online``) or TFDS (``tfds``), so it needs the network the first time.
    """
    _check_source(source)
    if source == "bundled":
        raise DataError("Fashion-MNIST is not bundled in data/; use --data-source online or tfds")
    if source == "tfds":
        return _tfds_data().load_image_classification("fashion_mnist", fallback="use --data-source online")
    import keras
    try:
        return keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # the network error types vary by platform
        raise DataError(f"could not download Fashion-MNIST ({error}); try --data-source tfds") from None


def split_validation(x_train, y_train, validation_size=MNIST_VALIDATION_SIZE):
    """Hold out the last ``validation_size`` training examples (a fixed, documented split)."""
    return (x_train[:-validation_size], y_train[:-validation_size]), \
        (x_train[-validation_size:], y_train[-validation_size:])


def load_iris(source="bundled", data_dir=None):
    """Fisher's Iris data: ``features`` float32 (150, 4) in cm, ``labels`` int (150,) indexing IRIS_SPECIES.

    ``source="tfds"`` gives TFDS's copy (UCI's, in TFDS's own order; UCI's
    file differs from Fisher's table in two flowers).  Keras has no Iris, so
    there is no ``online`` source.
    """
    _check_source(source)
    if source == "tfds":
        return _tfds_data().load_iris()
    if source == "online":
        raise DataError("Iris has no online source (Keras has no Iris); "
                        "use --data-source bundled (the default) or tfds")
    path = verified_path("iris.csv", data_dir)
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    features = np.array([[float(row[key]) for key in list(row)[:4]] for row in rows], dtype="float32")
    labels = np.array([int(row["species"]) for row in rows], dtype="int64")
    return features, labels


def stratified_split(labels, fractions, seed=0):
    """Index arrays splitting examples by ``fractions`` (e.g. 0.6, 0.2, 0.2) within each class.

    Every part gets the same class proportions; a fixed ``seed`` makes the
    split identical on every machine, so results can be compared.
    """
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * len(members)).astype(int)
        for part, chunk in zip(parts, np.split(members, bounds[:-1])):
            part.extend(chunk)
    return [np.sort(np.array(part, dtype="int64")) for part in parts]


def iris_splits(seed=0, source="bundled"):
    """Iris split 60/20/20 into train/validation/test, stratified by species, always the same."""
    features, labels = load_iris(source)
    train, validation, test = stratified_split(labels, (0.6, 0.2, 0.2), seed=seed)
    return {"train": (features[train], labels[train]),
            "validation": (features[validation], labels[validation]),
            "test": (features[test], labels[test])}


def as_dataset(features, labels, batch_size, shuffle=False, seed=None, variants=()):
    """Batches of ``(features, labels)`` for Keras's ``fit``, reshuffled every epoch when ``shuffle``
    (a ``tf.data`` pipeline on TensorFlow; see ``dlcourse.backend.batches``, also for ``variants``)."""
    from dlcourse import backend  # Keras starts only when a lab trains, after its data checked out
    return backend.batches(features, labels, batch_size, shuffle=shuffle, seed=seed, variants=variants)


SMOKE_SIZES = {"train": 1024, "validation": 256, "test": 512}


def mnist_splits(source="bundled", smoke=False, flatten=False, dataset="mnist"):
    """MNIST ready for a model: ``{"train"|"validation"|"test": (images, labels)}``.

    Images are float32 in [0, 1], shaped (N, 28, 28, 1), or (N, 784) with
    ``flatten``; the validation split is the last 5 000 training images.
    ``smoke`` keeps only the first few hundred of each split.
    ``dataset="fashion_mnist"`` gives Fashion-MNIST the same way.
    """
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown image data set {dataset!r}; choose one of {', '.join(IMAGE_DATASETS)}")
    load = load_fashion_mnist if dataset == "fashion_mnist" else load_mnist
    (x_train, y_train), (x_test, y_test) = load(source)
    train, validation = split_validation(x_train, y_train)
    splits = {"train": train, "validation": validation, "test": (x_test, y_test)}
    shape = (-1, 784) if flatten else (-1, 28, 28, 1)
    prepared = {}
    for name, (images, labels) in splits.items():
        if smoke:
            images, labels = images[:SMOKE_SIZES[name]], labels[:SMOKE_SIZES[name]]
        prepared[name] = ((images.astype("float32") / 255.0).reshape(shape), labels.astype("int64"))
    return prepared


# ---------------------------------------------------------------------------
# Korean text (week 3, Char-RNN)
# ---------------------------------------------------------------------------

def read_text_corpus(path):
    """A UTF-8 text file as one string: line endings ``\\n``, NFC-normalised.

    Use it for your own corpus.  A missing file, a file that is not UTF-8 or a
    file with no text in it raises ``DataError`` with one line saying which
    file and what is wrong.  A UTF-8 byte-order mark (as Windows Notepad
    writes) is dropped.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a text file")
    if not path.is_file():
        raise DataError(f"{path}: file is missing")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: could not be read ({error.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start}); "
                        "save it as UTF-8") from None
    if not text.strip():
        raise DataError(f"{path}: contains no text (the file is empty or only whitespace)")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # NFC: every Hangul syllable is one code point, however the file was typed.
    return unicodedata.normalize("NFC", text)


def load_korean_corpus(data_dir=None):
    """The shipped Korean corpus (``data/korean_corpus.txt``) as one NFC string.

    The Constitution of the Republic of Korea followed by ten National
    Assembly bills and motions, 64 549 characters; see data/README.md.
    """
    return read_text_corpus(verified_path("korean_corpus.txt", data_dir))


def split_text_bounds(length, validation_fraction=0.1, blocks=10):
    """Where ``split_text`` cuts a text of ``length`` characters.

    Returns one ``(start, cut, end)`` per block: ``text[start:cut]`` is
    training text and ``text[cut:end]`` validation text.  The blocks are
    contiguous, equally long (to one character) and together cover the text.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    if not isinstance(blocks, int) or blocks < 1:
        raise ValueError(f"blocks must be a positive integer, got {blocks!r}")
    if length < 2 * blocks:
        raise ValueError(f"the text has {length} characters, too few to split into {blocks} blocks "
                         f"of training and validation text")
    bounds = []
    for block in range(blocks):
        start, end = block * length // blocks, (block + 1) * length // blocks
        validation_size = round((end - start) * validation_fraction)
        # Keep at least one character on each side of the cut.
        validation_size = min(max(validation_size, 1), end - start - 1)
        bounds.append((start, end - validation_size, end))
    return bounds


def split_text(text, validation_fraction=0.1, blocks=10):
    """Split ``text`` into ``(train_text, validation_text)`` without leakage.

    A random split of characters or windows would leak: overlapping training
    windows would contain the validation text.  Instead the text is cut into
    ``blocks`` equal, contiguous blocks, and the last ``validation_fraction``
    of every block goes to validation, the rest to training:

        block 1             block 2             ...
        [ train  | valid ]  [ train  | valid ]  ...

    Taking a piece from every block (rather than just the end of the text)
    lets validation see every kind of document in the corpus.  The pieces are
    joined in their original order, so each output has ``blocks - 1`` seams.
    The split depends only on the text length: the same text always gives
    the same split.
    """
    bounds = split_text_bounds(len(text), validation_fraction, blocks)
    train_text = "".join(text[start:cut] for start, cut, _ in bounds)
    validation_text = "".join(text[cut:end] for _, cut, end in bounds)
    return train_text, validation_text


# ---------------------------------------------------------------------------
# (title, body) pairs (week 4, news titles)
# ---------------------------------------------------------------------------

def read_title_pairs(path):
    """A JSON Lines file of articles as a list of ``{"title", "body", ...}`` dicts (NFC text).

    It reads the crawler's output (``python -m labs.news_seq2seq crawl``) as
    well as the shipped corpus.  Blank lines are skipped; a line that is not
    a JSON object with non-empty string ``title`` and ``body`` raises
    ``DataError`` naming the file and the line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file is missing" if not path.is_dir() else f"{path}: is a folder")
    try:
        lines = path.read_bytes().decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    pairs = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}: line {number} is not a JSON object")
        for key in ("title", "body"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise DataError(f"{path}: line {number} has no {key!r} text")
            row[key] = unicodedata.normalize("NFC", row[key].strip())
        pairs.append(row)
    if not pairs:
        raise DataError(f"{path}: contains no articles")
    return pairs


def load_news_corpus(data_dir=None):
    """The shipped (title, body) corpus, ``data/news_corpus.jsonl``: Korean documentation
    sections crawled by ``dlcourse.crawler`` from pages served on 127.0.0.1 (data/README.md)."""
    return read_title_pairs(verified_path("news_corpus.jsonl", data_dir))


def page_of(pair):
    """The page a pair comes from: its ``url`` without the ``#fragment`` (sections of one page
    share it), or ``None`` when the pair has no URL."""
    url = pair.get("url")
    return url.split("#", 1)[0] if isinstance(url, str) and url.strip() else None


def split_pairs(pairs, fractions=(0.8, 0.1, 0.1), seed=0):
    """Cut ``pairs`` into parts of about the given fractions (training, validation, test),
    keeping every page whole: the sections of one page (same ``url`` up to ``#``) all land in
    the same part, so a test title is never written from a body whose page was trained on.

    The pages are shuffled with ``seed`` and dealt out in that order: a page goes to the part
    in which its middle pair falls, so the parts hold about ``fractions`` of the pairs (half a
    page more or less at each cut).  A pair without a URL is a page of its own; when every page
    has one pair this is the plain shuffle-and-cut of earlier versions, pair for pair.  The
    same corpus and seed give the same split.
    """
    if not fractions or any(fraction <= 0 for fraction in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    pages = {}
    for index, pair in enumerate(pairs):
        pages.setdefault(page_of(pair) or ("no url", index), []).append(pair)
    groups = list(pages.values())
    if len(groups) < len(fractions):
        raise DataError(f"{len(pairs)} articles from {len(groups)} pages are too few to split "
                        f"into {len(fractions)} parts")
    bounds = np.round(np.cumsum(fractions) * len(pairs))  # the first pair of the next part
    parts, dealt = [[] for _ in fractions], 0
    for position in np.random.default_rng(seed).permutation(len(groups)):
        group = groups[position]
        middle = dealt + (len(group) - 1) / 2  # the middle pair's place in the dealt order
        part = min(int(np.searchsorted(bounds, middle, side="right")), len(parts) - 1)
        parts[part].extend(group)
        dealt += len(group)
    for position, part in enumerate(parts):
        if not part:
            raise DataError(f"{len(pairs)} articles from {len(groups)} pages leave part "
                            f"{position + 1} of the split empty")
    return parts
