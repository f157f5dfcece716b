"""Figures the labs save as PNG (and notebooks show inline).

Each function draws on its own ``matplotlib.figure.Figure`` (no pyplot global
state, so it works the same in a script, a test and a notebook), saves it when
given a path, and returns it: a notebook cell that ends with the call shows it.
"""
import csv
import functools

import numpy as np
from matplotlib import font_manager, ft2font
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator


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
    for index, (image, title) in enumerate(zip(images, titles, strict=False)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(np.squeeze(image), cmap="gray_r")
        axes.set_title(title, fontsize=8)
        axes.axis("off")
    if suptitle:
        figure.suptitle(suptitle)
    return save(figure, path)


@functools.cache
def hangul_font():
    """The family name of an installed font that has Hangul syllables, or None.

    Matplotlib's own fonts have none (a Korean label would be drawn as boxes);
    NanumGothic, Noto Sans CJK KR, Malgun Gothic, … do.  Matplotlib lists the
    fonts it found when it built its font cache; one installed later (``apt-get
    install fonts-nanum`` after the first plot) is looked up among the system's
    fonts and added, so it is used without deleting the cache by hand.
    """
    known = [entry for entry in font_manager.fontManager.ttflist
             if "Last Resort" not in entry.name]  # matplotlib's stand-in: a box for every character
    for entry in known:
        if _has_hangul(entry.fname):
            return entry.name
    installed_later = sorted(set(font_manager.findSystemFonts()) - {entry.fname for entry in known})
    found = [path for path in installed_later if _has_hangul(path)]
    for path in found:
        font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=found[0]).get_name() if found else None


def _has_hangul(path):
    try:
        return 0xAC00 in ft2font.FT2Font(path).get_charmap()  # 가
    except (OSError, RuntimeError):
        return False


def plot_copy_gate(gates, attention, body_tokens, title_tokens, path=None):
    """The pointer-generator's gate on one example, one row per decoder (title) position t.

    ``gates`` (T,): g_t, the share of the vocabulary softmax in p(token) (1 − g_t is copied);
    ``attention`` (T, S): the attention weights a_{t,i} over the body's S positions;
    ``body_tokens`` (S,) and ``title_tokens`` (T,): the characters that label them
    (``title_tokens[t]``: the token written at position t).

    Left: (1 − g_t) · a_{t,i}, the probability the copy part gives to body
    position i, i.e. which body characters are copied.  Right: g_t.  Without a
    Hangul font (``hangul_font``) the characters are labelled by their positions.
    """
    gates = np.asarray(gates, dtype="float64")
    attention = np.asarray(attention, dtype="float64")
    if gates.ndim != 1 or attention.shape != (len(gates), len(body_tokens)) or len(title_tokens) != len(gates):
        raise ValueError(f"need gates (T,), attention (T, S), S body and T title tokens; got gates "
                         f"{gates.shape}, attention {attention.shape}, {len(body_tokens)} body and "
                         f"{len(title_tokens)} title tokens")
    font = hangul_font()
    if font is None:
        body_labels, title_labels = [str(i) for i in range(len(body_tokens))], [str(t) for t in range(len(gates))]
        note = " (no Hangul font: positions instead of characters)"
    else:
        body_labels, title_labels, note = list(body_tokens), list(title_tokens), ""
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    steps, length = attention.shape
    figure = Figure(figsize=(max(6.0, 2.5 + 0.13 * length), 1.6 + 0.28 * steps))
    grid = figure.add_gridspec(1, 2, width_ratios=(max(length, 1), 12), wspace=0.04)
    heat = figure.add_subplot(grid[0])
    copied = (1.0 - gates)[:, None] * attention
    image = heat.imshow(copied, cmap="Reds", aspect="auto", vmin=0.0, vmax=max(copied.max(), 1e-6),
                        interpolation="nearest")
    heat.set_xticks(range(length), body_labels, fontsize=6, family=family)
    heat.set_yticks(range(steps), title_labels, fontsize=8, family=family)
    heat.tick_params(axis="x", length=0, rotation=0 if font else 90)
    heat.set_xlabel("body position i")
    heat.set_ylabel("title position t")
    heat.set_title("copied: (1 − g_t) · a_t,i" + note, fontsize=9)
    bars = figure.add_subplot(grid[1], sharey=heat)
    bars.barh(range(steps), gates, color="tab:blue")
    bars.set_xlim(0, 1)
    bars.axvline(0.5, color="gray", linewidth=0.8, linestyle="--")
    bars.tick_params(axis="y", labelleft=False)
    bars.set_xlabel("g_t (write)")
    bars.set_title("gate", fontsize=9)
    figure.colorbar(image, ax=[heat, bars], fraction=0.02, pad=0.02)
    return save(figure, path)


def _labels(korean, english):
    """Korean labels and the font family to draw them, or English ones where no font has Hangul."""
    font = hangul_font()
    return (korean, [font, "DejaVu Sans"]) if font else (english, ["DejaVu Sans"])


def plot_score_histogram(scores, max_score, lab, path=None):
    """How a class's total scores spread: one bar per possible score from 0 to ``max_score``.

    Bars are a point wide (half a point where some score is not whole, wider
    when that would make more than 60 bars), so a bar is a score a student can
    get; the class mean and median are drawn as vertical lines.
    """
    scores = np.asarray(scores, dtype="float64")
    step = 1.0 if np.all(scores == np.round(scores)) and float(max_score).is_integer() else 0.5
    while max_score / step > 60:
        step *= 2
    bins = int(np.ceil(max_score / step)) + 1
    edges = (np.arange(bins + 1) - 0.5) * step
    mean, median = float(np.mean(scores)), float(np.median(scores))
    text, family = _labels(
        {"title": f"{lab}: {len(scores)}명의 총점 분포", "x": f"총점 (만점 {max_score:g}점)", "y": "학생 수",
         "mean": f"평균 {mean:.2f}점", "median": f"중앙값 {median:g}점"},
        {"title": f"{lab}: total scores of {len(scores)} students", "x": f"total score (max {max_score:g})",
         "y": "students", "mean": f"mean {mean:.2f}", "median": f"median {median:g}"})
    figure = Figure(figsize=(7, 3.8))
    axes = figure.add_subplot()
    axes.hist(scores, bins=edges, color="tab:blue", edgecolor="white", rwidth=0.9)
    axes.axvline(mean, color="tab:red", linestyle="--", linewidth=1.6, label=text["mean"])
    axes.axvline(median, color="black", linestyle=":", linewidth=1.8, label=text["median"])
    axes.set_xlim(edges[0] - step / 2, edges[-1] + step / 2)
    if bins <= 30:
        axes.set_xticks(np.arange(bins) * step)
        axes.tick_params(axis="x", labelsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(text["x"], family=family)
    axes.set_ylabel(text["y"], family=family)
    axes.set_title(text["title"], family=family)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), prop={"family": family})  # never over a bar
    return save(figure, path)


def plot_pass_rates(tests, lab, path=None):
    """Which tests a class passed: one horizontal bar per test, in the notebook's order.

    ``tests``: ``(exercise, test id, pass rate from 0 to 1, hidden)`` per test.
    Each exercise has its colour, a line separates the exercises, and a hidden
    test's bar is hatched, so a low bar reads as "this part of this exercise".
    """
    tests = list(tests)
    exercises = list(dict.fromkeys(exercise for exercise, *_ in tests))
    colour = {exercise: f"C{index % 10}" for index, exercise in enumerate(exercises)}
    text, family = _labels(
        {"title": f"{lab}: 테스트별 통과율", "x": "통과한 학생 (%)", "visible": "공개 테스트",
         "hidden": "숨김 테스트"},
        {"title": f"{lab}: pass rate per test", "x": "students who passed (%)", "visible": "visible test",
         "hidden": "hidden test"})
    figure = Figure(figsize=(8, 1.4 + 0.34 * len(tests)))
    axes = figure.add_subplot()
    for row, (exercise, _, rate, hidden) in enumerate(tests):
        axes.barh(row, 100 * rate, color=colour[exercise], alpha=0.45 if hidden else 1.0,
                  hatch="///" if hidden else None, edgecolor=colour[exercise], linewidth=1.0)
        axes.text(100 * rate + 1.5, row, f"{rate:.0%}", va="center", fontsize=8)
        if row and exercise != tests[row - 1][0]:
            axes.axhline(row - 0.5, color="gray", linewidth=0.8)
    axes.set_yticks(range(len(tests)), [name for _, name, *_ in tests], fontsize=8)
    axes.invert_yaxis()  # the notebook's first test on top
    axes.set_xlim(0, 112)
    axes.set_xticks(range(0, 101, 20))
    axes.grid(axis="x", alpha=0.3)
    axes.set_xlabel(text["x"], family=family)
    axes.set_title(text["title"], family=family)
    handles = [Patch(facecolor=colour[exercise], label=exercise) for exercise in exercises]
    handles += [Patch(facecolor="lightgray", edgecolor="gray", label=text["visible"]),
                Patch(facecolor="white", edgecolor="gray", hatch="///", label=text["hidden"])]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                prop={"family": family, "size": 8})
    return save(figure, path)


def plot_box_regression(image, proposal, truth, regressed=None, path=None):
    """One image with a ground-truth box (green), a proposal (red, dashed) and what regression makes of it.

    Boxes are ``(x1, y1, x2, y2)`` pixel edges (``dlcourse.detection``'s rule).
    ``regressed`` is None, one box, or ``{legend label: box}`` for several
    (the box the exact targets decode to, a trained head's box, …), each in
    its own colour.  The view is the image, zoomed to the boxes with a margin.
    """
    image = np.asarray(image)
    # (box, colour, line style, width): the ground truth wide and underneath, so that a box that lands
    # exactly on it (dotted, on top) leaves it visible.
    boxes = {"ground truth": (truth, "tab:green", "-", 4.5), "proposal": (proposal, "tab:red", "--", 2.0)}
    if regressed is not None:
        named = regressed if isinstance(regressed, dict) else {"regressed": regressed}
        colours = ("tab:blue", "tab:orange", "tab:purple", "tab:cyan")
        for index, (label, box) in enumerate(named.items()):
            boxes[label] = (box, colours[index % len(colours)], ":", 2.4)
    for label, (box, *_) in boxes.items():
        if np.shape(box) != (4,):
            raise ValueError(f"{label}: one box (x1, y1, x2, y2) expected, got shape {np.shape(box)}")
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.imshow(np.squeeze(image), cmap="gray" if np.squeeze(image).ndim == 2 else None)
    for label, (box, colour, style, width) in boxes.items():
        x1, y1, x2, y2 = np.asarray(box, dtype="float64")
        # Pixel (row, column) is drawn centred on (column, row): its edges are half a pixel off.
        axes.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                                 linestyle=style, linewidth=width, label=label))
    corners = np.array([np.asarray(box, dtype="float64") for box, *_ in boxes.values()])
    low, high = corners[:, :2].min(axis=0), corners[:, 2:].max(axis=0)
    margin = 0.35 * (high - low).max()
    height, width = image.shape[:2]
    axes.set_xlim(max(low[0] - margin, 0) - 0.5, min(high[0] + margin, width) - 0.5)
    axes.set_ylim(min(high[1] + margin, height) - 0.5, max(low[1] - margin, 0) - 0.5)  # y down, as images
    axes.set_xticks([])
    axes.set_yticks([])
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return save(figure, path)
