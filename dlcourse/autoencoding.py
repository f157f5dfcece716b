"""Training an autoencoder and showing what it reconstructs (plain and stacked labs share this)."""
import numpy as np

from dlcourse import figures
from dlcourse.data import as_dataset
from dlcourse.training import training_steps


def self_supervised(images, config, shuffle=False):
    """Batches of (image, image) pairs: the input is its own target."""
    return as_dataset(images, images, config.batch_size, shuffle=shuffle, seed=config.seed)


def fit_autoencoder(training_run, model, splits, loss, phase=None):
    """Fit ``model`` to reproduce its input; the best epoch is the lowest validation loss."""
    config = training_run.config
    with training_run.strategy.scope():
        training_run.compile(model, loss, metrics=(),
                             total_steps=training_steps(config, len(splits["train"][0])))
    training_run.fit(model, self_supervised(splits["train"][0], config, shuffle=True),
                     self_supervised(splits["validation"][0], config),
                     monitor="val_loss", mode="min", phase=phase)
    return model


def reconstruction_report(training_run, model, test_images, phase=None, count=10):
    """Test MSE, a figure of originals above their reconstructions, and the loss curve."""
    reconstructions = model.predict(test_images, batch_size=1000, verbose=0)
    mse = float(np.mean((test_images - reconstructions) ** 2))
    figures.plot_image_grid(
        np.concatenate([test_images[:count], reconstructions[:count]]).reshape(-1, 28, 28),
        ["original"] + [""] * (count - 1) + ["reconstructed"] + [""] * (count - 1),
        training_run.path("reconstructions.png"), columns=count,
        suptitle=f"test images (top) and their reconstructions (bottom), MSE {mse:.4f}")
    figures.plot_history(training_run.history_path(phase),
                         training_run.figure_path("curves", phase), metrics=("loss",))
    return {"test_reconstruction_mse": round(mse, 6)}
