"""VGG16's convolutional part at any width: the backbone of R-CNN and Fast R-CNN (week 5).

Both detectors use the same topology so that they can be compared on the
same data: R-CNN runs it on every warped region, Fast R-CNN once per image.
"""
import keras

VGG16_BLOCKS = (2, 2, 3, 3, 3)  # 3×3 convolutions per block
VGG16_FILTERS = (64, 128, 256, 512, 512)


def vgg16_backbone(input_shape, width=1.0, batch_norm=False, last_pool=True, name="vgg16"):
    """VGG16's convolutional part: blocks of 2-2-3-3-3 3×3 convolutions, each block max-pooled.

    Layers are named as in ``keras.applications.VGG16`` (``block1_conv1`` …
    ``block5_pool``) and have ``round(width × 64…512)`` filters.  With
    ``width=1.0`` and no batch normalisation the weights have exactly VGG16's
    names and shapes, so ``backbone.load_weights`` reads Keras's ImageNet file.
    ``batch_norm`` puts ``BatchNormalization`` (``blockN_convM_bn``) between
    each convolution and its ReLU, for training from scratch.
    ``last_pool=False`` leaves out ``block5_pool``: Fast R-CNN pools its regions
    from ``block5_conv3`` (stride 16), not from the stride-32 map.
    """
    inputs = keras.Input(shape=input_shape, name="input_layer")
    hidden = inputs
    for block, (convolutions, filters) in enumerate(zip(VGG16_BLOCKS, VGG16_FILTERS), start=1):
        for index in range(1, convolutions + 1):
            conv_name = f"block{block}_conv{index}"
            hidden = keras.layers.Conv2D(max(1, round(width * filters)), 3, padding="same",
                                         activation=None if batch_norm else "relu",
                                         name=conv_name)(hidden)
            if batch_norm:
                hidden = keras.layers.BatchNormalization(name=f"{conv_name}_bn")(hidden)
                hidden = keras.layers.ReLU(name=f"{conv_name}_relu")(hidden)
        if last_pool or block < len(VGG16_BLOCKS):
            hidden = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(hidden)
    return keras.Model(inputs, hidden, name=name)
