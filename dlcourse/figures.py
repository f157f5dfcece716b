"""Figures the labs save as PNG (and notebooks show inline).

Each function draws on its own ``matplotlib.figure.Figure`` (no pyplot global
state, so it works the same in a script, a test and a notebook), saves it when
given a path, and returns it: a notebook cell that ends with the call shows it.
"""
import csv

import numpy as np
from matplotlib.figure import Figure


def save(figure, path):
    if path is not None:
        figure.savefig(path, dpi=120, bbox_inches="tight")
    return figure


def plot_history(history_csv, path=None, metrics=("loss", "accuracy")):
    """Training and validation curves per epoch, one panel per metric."""
    with open(history_csv, newline="") as stream:
        rows = list(csv.DictReader(stream))
    metrics = [name for name in metrics if rows and name in rows[0]]
    figure = Figure(figsize=(5 * max(len(metrics), 1), 3.6))
    epochs = [int(row["epoch"]) + 1 for row in rows]
    for index, name in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), index)
        axes.plot(epochs, [float(row[name]) for row in rows], "o-", label="train")
        if f"val_{name}" in rows[0]:
            axes.plot(epochs, [float(row[f"val_{name}"]) for row in rows], "s--", label="validation")
        axes.set_xlabel("epoch")
        axes.set_title(name)
        axes.grid(alpha=0.3)
        axes.legend()
    return save(figure, path)


def confusion_matrix(true_labels, predicted_labels, num_classes):
    """Counts[i, j] = how many examples of class i were predicted as j."""
    counts = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(counts, (np.asarray(true_labels), np.asarray(predicted_labels)), 1)
    return counts


def plot_confusion_matrix(true_labels, predicted_labels, class_names, path=None):
    """The confusion matrix as a heat map with the counts written in the cells."""
    counts = confusion_matrix(true_labels, predicted_labels, len(class_names))
    figure = Figure(figsize=(1 + 0.55 * len(class_names),) * 2)
    axes = figure.add_subplot()
    # Log-like colour scale so that the few errors off the diagonal stay visible.
    axes.imshow(np.log1p(counts), cmap="Blues")
    for (row, column), count in np.ndenumerate(counts):
        if count:
            axes.text(column, row, str(count), ha="center", va="center", fontsize=7,
                      color="white" if row == column else "black")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names)
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"confusion matrix ({counts.trace()}/{counts.sum()} correct)")
    return save(figure, path)


def plot_image_grid(images, titles, path=None, columns=10, suptitle=None):
    """Small grayscale images in a grid, each with a short title (e.g. 'true 4 → 9')."""
    rows = max(1, int(np.ceil(len(images) / columns)))
    figure = Figure(figsize=(1.2 * columns, 1.4 * rows))
    for index, (image, title) in enumerate(zip(images, titles)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(np.squeeze(image), cmap="gray_r")
        axes.set_title(title, fontsize=8)
        axes.axis("off")
    if suptitle:
        figure.suptitle(suptitle)
    return save(figure, path)
