"""A backbone that knows the digits before it learns to detect them: week 5's ImageNet.

R-CNN and Fast R-CNN do not train their CNN from scratch: both start from a
VGG16 trained to classify ImageNet's 1.2 million images, then fine-tune it on
the detection data.  Our scenes hold about 3 000 digits (1 500 training
images), too few for a CNN to learn the ten shapes well, and Fast R-CNN
suffers most: its backbone sees each digit once an epoch, at one place, where
R-CNN's sees ~15 differently cut crops of it.  Most of Fast R-CNN's misses
were digits found but given the wrong class.

The stand-in for ImageNet here is MNIST's 60 000 training digits, each drawn
on a 32 × 32 patch of scene background (``scenes.make_digit_patch``), and the
task is ImageNet's: classify them, ten classes.  The test scenes are made of
MNIST's *test* digits, so no test digit is seen.  ``--weights digits`` then
copies the trained convolutions (and their batch normalisation) into either
detector by layer name: the R-CNN classifier runs them on 32 × 32 crops, Fast
R-CNN on the whole 128 × 128 scene (its blocks are the same layers, block 4
unpooled).  The weights are kept in the run directory, so a resumed run does
not train them again.

Measured on the default scenes (RESULTS.md, week 5): 6 epochs take ~8.5 minutes on 2 idle
CPU cores and get 0.975 of 2 000 held-out patches right (2 epochs: ~3.5 minutes, 0.947); Fast
R-CNN's mAP@0.5 from them was 0.904 and 0.929 on two seeds (from 2 epochs 0.880 and 0.915).
"""
import time
import zipfile

import keras
import numpy as np
from tqdm.auto import tqdm

from dlcourse import scenes
from dlcourse.data import DataError, load_mnist
from dlcourse.files import atomic_write
from dlcourse.vgg import vgg16_backbone

PATCH_SIZE = 32
EPOCHS = 6
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
HELD_OUT = 2000             # MNIST test digits scored after training (never used to choose anything)
SMOKE_DIGITS = 256          # --smoke: this many digits, one epoch


def digit_patches(images, seed, progress=True):
    """uint8 (N, 32, 32, 3): every MNIST image of ``images`` on its own patch of scene background."""
    rng = np.random.default_rng(seed)
    return np.stack([scenes.make_digit_patch(rng, digit, PATCH_SIZE)
                     for digit in tqdm(images, desc="digit patches", unit="image", disable=not progress,
                                       mininterval=2.0)])


def build_classifier(width=0.125, batch_norm=True):
    """uint8 patches → probabilities of the ten digits: the detectors' VGG16 layers ("vgg16")
    and one softmax layer, the only part that is thrown away."""
    patches = keras.Input((PATCH_SIZE, PATCH_SIZE, 3), dtype="uint8", name="patches")
    pixels = keras.layers.Rescaling(1 / 255, name="rescaling")(patches)
    backbone = vgg16_backbone((PATCH_SIZE, PATCH_SIZE, 3), width, batch_norm)
    features = keras.layers.Flatten(name="flatten")(backbone(pixels))
    probabilities = keras.layers.Dense(10, activation="softmax", name="digit")(features)
    return keras.Model(patches, probabilities, name="digit_classifier")


def backbone_layers(model):
    """Every convolution and batch normalisation of ``model``, nested models included, by name."""
    found = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(backbone_layers(layer))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization)):
            found[layer.name] = layer
    return found


def pretrain(path, width=0.125, batch_norm=True, seed=1, smoke=False, verbose=2):
    """Train the classifier on MNIST's training digits and save its backbone's weights in
    ``path`` (an .npz); a ``path`` already there is kept.  Returns ``{"seconds", "accuracy"}``
    (accuracy on ``HELD_OUT`` test digits; both None when the file was kept)."""
    if read_weights(path) is not None:
        return {"seconds": None, "accuracy": None}
    started = time.perf_counter()
    (train_images, train_labels), (test_images, test_labels) = load_mnist()
    count, epochs = (SMOKE_DIGITS, 1) if smoke else (len(train_images), EPOCHS)
    progress = verbose != 0
    patches = digit_patches(train_images[:count], seed, progress)
    held_out = digit_patches(test_images[:min(HELD_OUT, count)], seed + 1, progress)
    classifier = build_classifier(width, batch_norm)
    steps = epochs * -(-count // BATCH_SIZE)
    classifier.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)),
                       loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    classifier.fit(patches, train_labels[:count], batch_size=BATCH_SIZE, epochs=epochs,
                   verbose="auto" if verbose is None else verbose)
    _, accuracy = classifier.evaluate(held_out, test_labels[:len(held_out)], verbose=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as stream:
        np.savez(stream, **{f"{name}/{index}": weight for name, layer in backbone_layers(classifier).items()
                            for index, weight in enumerate(layer.get_weights())})
    seconds = time.perf_counter() - started
    if progress:
        print(f"digit pretraining: {accuracy:.3f} of {len(held_out)} held-out digits right, {seconds:.0f} s "
              f"→ {path}")
    return {"seconds": seconds, "accuracy": float(accuracy)}


def read_weights(path):
    """``{layer name: [arrays]}`` from a ``pretrain`` file, or None if it is missing or cut off."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            weights = {}
            for key in stored.files:
                name, index = key.rsplit("/", 1)
                weights.setdefault(name, {})[int(index)] = stored[key]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return {name: [arrays[index] for index in sorted(arrays)] for name, arrays in weights.items()}


def load_backbone(model, path):
    """Copy the pretrained convolutions and batch normalisation into ``model`` (an R-CNN or Fast
    R-CNN of the same ``width`` and ``batch_norm``), by layer name.  Every one must find its
    layer, with the same shapes; returns how many layers were set."""
    weights = read_weights(path)
    if weights is None:
        raise DataError(f"{path}: not a digit-pretrained backbone (missing or damaged)")
    targets = backbone_layers(model)
    missing = sorted(set(weights) - set(targets))
    if missing or not weights:
        raise DataError(f"{path}: the model has no layer {', '.join(missing[:3]) or 'to load'} "
                        "(pretrained with another --width or --batch-norm?)")
    for name, arrays in weights.items():
        shapes = [tuple(weight.shape) for weight in targets[name].get_weights()]
        if shapes != [array.shape for array in arrays]:
            raise DataError(f"{path}: {name} has shapes {[array.shape for array in arrays]}, the model's "
                            f"{shapes} (pretrained with another --width?)")
        targets[name].set_weights(arrays)
    return len(weights)
