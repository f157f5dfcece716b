"""RoI pooling (Fast R-CNN, week 5): a fixed-size feature grid for every box, cut from ONE feature map.

R-CNN runs the CNN once per proposal.  Fast R-CNN runs it once per image and
then, for every proposal, pools the part of the feature map under the box
into a ``P × P`` grid that the dense head can take, whatever the box's size.

Which pooling, and why: the Fast R-CNN paper rounds each box to whole
feature cells and takes the max over each bin.  At stride 16 a 30-pixel digit
covers two cells, so rounding moves a box by up to half a digit and boxes a
few pixels apart get the same features: the box-regression head cannot see
the offsets it is meant to correct.  Here every bin is instead the **average
of bilinearly sampled points** (RoIAlign, Mask R-CNN): the output changes
smoothly with the box's coordinates, nothing is rounded, and the gradient
reaches the feature cells next to every sample point.

Bilinear sampling is a weighted sum of feature cells, and it separates into
rows and columns: each box gives a (P, H) matrix of row weights and a (P, W)
matrix of column weights, and the pooled grid is ``rows · features · columnsᵀ``
(two ``einsum``\\ s, no gather), which every Keras backend differentiates.
"""
import keras

ops = keras.ops


def bin_weights(start, end, size, pool_size, sampling_ratio):
    """Weights (..., pool_size, size) of the ``size`` feature cells along one axis for each bin.

    ``start``/``end`` (...) are box edges in feature cells (cell ``j`` covers
    ``[j, j + 1)``, its value sits at its centre ``j + 0.5``).  Each bin has
    ``sampling_ratio`` evenly spaced sample points; a point at ``u`` takes
    ``max(0, 1 − |u − 0.5 − j|)`` of cell ``j`` (linear interpolation between
    the two nearest centres), clamped to the first and last cell at the
    border.  A bin's weights are the mean over its points.
    """
    bins = ops.arange(pool_size, dtype="float32")[:, None]
    offsets = (ops.arange(sampling_ratio, dtype="float32")[None, :] + 0.5) / sampling_ratio
    steps = bins + offsets                                            # (P, S) in bin widths
    bin_size = (end - start) / pool_size
    points = start[..., None, None] + steps * bin_size[..., None, None]   # (..., P, S)
    centres = ops.clip(points - 0.5, 0.0, ops.cast(size - 1, "float32"))
    cells = ops.arange(size, dtype="float32")
    weights = ops.relu(1.0 - ops.abs(centres[..., None] - cells))        # (..., P, S, size)
    return ops.mean(weights, axis=-2)


def roi_align(features, boxes, pool_size=7, stride=16, sampling_ratio=2):
    """Pooled features (B, R, P, P, C) of ``boxes`` (B, R, 4) on ``features`` (B, H, W, C).

    Boxes are ``(x1, y1, x2, y2)`` in image pixels (edges, as
    ``dlcourse.detection``); ``stride`` is how many image pixels one feature
    cell spans.  A box reaching outside the map is clamped to it; a
    degenerate (padding) box such as ``(0, 0, 0, 0)`` gives a finite grid
    that the losses then ignore.  Boxes get no gradient: they are data.
    """
    height, width = features.shape[1], features.shape[2]
    boxes = ops.stop_gradient(ops.cast(boxes, "float32")) / float(stride)
    x1, y1, x2, y2 = (boxes[..., index] for index in range(4))
    x1, x2 = ops.clip(x1, 0.0, float(width)), ops.clip(x2, 0.0, float(width))
    y1, y2 = ops.clip(y1, 0.0, float(height)), ops.clip(y2, 0.0, float(height))
    rows = ops.cast(bin_weights(y1, ops.maximum(y2, y1), height, pool_size, sampling_ratio),
                    features.dtype)                                     # (B, R, P, H)
    columns = ops.cast(bin_weights(x1, ops.maximum(x2, x1), width, pool_size, sampling_ratio),
                       features.dtype)                                  # (B, R, P, W)
    by_rows = ops.einsum("brph,bhwc->brpwc", rows, features)
    return ops.einsum("brpwc,brqw->brpqc", by_rows, columns)


@keras.saving.register_keras_serializable(package="dlcourse")
class RoIAlign(keras.layers.Layer):
    """``roi_align`` as a layer: ``RoIAlign(pool_size, stride)([features, boxes])`` → (B, R, P, P, C).

    The number of boxes R may differ from call to call (``keras.Input((None, 4))``).
    """

    def __init__(self, pool_size=7, stride=16, sampling_ratio=2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.stride, self.sampling_ratio = int(pool_size), float(stride), int(sampling_ratio)

    def call(self, inputs):
        features, boxes = inputs
        return roi_align(features, boxes, self.pool_size, self.stride, self.sampling_ratio)

    def compute_output_shape(self, input_shape):
        features, boxes = input_shape
        return (features[0], boxes[1], self.pool_size, self.pool_size, features[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "stride": self.stride,
                "sampling_ratio": self.sampling_ratio}
