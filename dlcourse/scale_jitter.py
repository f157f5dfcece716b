"""Scale jitter: every training image at a random size, its boxes moved with it (Fast R-CNN §5.2).

Fast R-CNN trains "multi-scale": each image is drawn at a random scale, so
the network sees every object at several sizes on the feature grid.  Here the
canvas keeps its size (the model's input is fixed): the image is zoomed by a
factor ``s`` and shifted by ``t`` inside it, and so is every region:

    box_out = s · box_in + t        per image: log s uniform in [−log(1 + z), log(1 + z)],
                                     t uniform between 0 and S − s·S on each axis

so that a zoomed-out image lies wholly inside the canvas (the rest filled
with its edge pixels) and a zoomed-in one covers it.  The box-regression
targets of a region do not change: both the region and its object move by
the same map, and the targets are measured in the region's own width and
height.  A digit near the edge of a zoomed-in image can be cut; that is rare
at the small ``z`` the lab uses.

Training only: at inference the layer passes its inputs on unchanged.
"""
import keras


@keras.saving.register_keras_serializable(package="dlcourse")
class ScaleJitter(keras.layers.Layer):
    """``[uint8 images (B, S, S, 3), rois (B, R, 4)]`` → the same, zoomed and shifted per image
    while training (``max_zoom`` = z above); unchanged at inference or with ``max_zoom=0``."""

    def __init__(self, max_zoom=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        if max_zoom < 0:
            raise ValueError(f"max_zoom must be ≥ 0, got {max_zoom}")
        self.max_zoom, self.seed = float(max_zoom), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch, size):
        """``(scale (B, 1), shift (B, 2))`` of a batch: ``box_out = scale · box_in + shift``."""
        ops = keras.ops
        limit = ops.log(1.0 + self.max_zoom)
        scale = ops.exp(keras.random.uniform((batch, 1), -limit, limit, seed=self.seed_generator))
        shift = keras.random.uniform((batch, 2), seed=self.seed_generator) * size * (1.0 - scale)
        return scale, shift

    def call(self, inputs, training=None):
        images, rois = inputs
        if not training or self.max_zoom == 0:
            return images, rois
        ops = keras.ops
        batch, size = ops.shape(images)[0], images.shape[1]
        scale, shift = self.transforms(batch, size)
        # affine_transform maps each output pixel index to an input one; pixel i covers [i, i + 1).
        offset = (0.5 - shift) / scale - 0.5
        zeros = ops.zeros_like(scale)
        transform = ops.concatenate([1.0 / scale, zeros, offset[:, :1], zeros, 1.0 / scale, offset[:, 1:],
                                     zeros, zeros], axis=1)
        zoomed = ops.image.affine_transform(ops.cast(images, "float32"), transform, fill_mode="nearest")
        zoomed = ops.cast(ops.clip(ops.round(zoomed), 0, 255), images.dtype)
        moved = rois * scale[:, None, :] + ops.tile(shift, (1, 2))[:, None, :]
        return zoomed, ops.cast(moved, rois.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "max_zoom": self.max_zoom, "seed": self.seed}
