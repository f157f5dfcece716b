"""Model blocks the week-1 labs share, so each idea is written once.

* ``dense_stack``: fully-connected layers of given sizes (MLP, Iris, autoencoders);
* ``classifier_head``: optional hidden layers, then softmax (every classifier);
* ``autoencoder_blocks``: the encoder/decoder pair; the stacked autoencoder
  reuses the very same encoder object as its feature extractor.

Each block is a small named ``keras.Sequential``, so ``model.summary()`` shows
it as one line and ``model.get_layer("encoder")`` finds it.
"""
import keras


def _dense_layers(units, activation, dropout, prefix):
    layers = []
    for index, size in enumerate(units, start=1):
        layers.append(keras.layers.Dense(size, activation=activation, name=f"{prefix}dense{index}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, name=f"{prefix}dropout{index}"))
    return layers


def dense_stack(units, activation="relu", dropout=0.0, name="dense_stack"):
    """Dense layers of sizes ``units`` (e.g. ``(256, 256)``), each optionally followed by dropout."""
    return keras.Sequential(_dense_layers(units, activation, dropout, prefix=""), name=name)


def classifier_head(num_classes, hidden=(), dropout=0.0, activation="relu", name="classifier"):
    """``hidden`` dense layers (with dropout), then a softmax over ``num_classes``.

    The softmax layer computes in float32 even under mixed precision, where
    float16 would round small probabilities to zero.
    """
    return keras.Sequential(
        _dense_layers(hidden, activation, dropout, prefix="")
        + [keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="softmax")],
        name=name)


def autoencoder_blocks(input_size, code_sizes=(256, 128), activation="relu"):
    """An encoder ``input → code_sizes`` and a mirrored decoder back to ``input_size``.

    With the course's ``code_sizes=(256, 128)`` this is 784→256→128→256→784.
    The decoder ends in a sigmoid because pixels lie in [0, 1].
    """
    encoder = dense_stack(code_sizes, activation, name="encoder")
    decoder = keras.Sequential(
        _dense_layers(tuple(reversed(code_sizes[:-1])), activation, 0.0, prefix="")
        + [keras.layers.Dense(input_size, activation="sigmoid", dtype="float32", name="reconstruction")],
        name="decoder")
    return encoder, decoder
