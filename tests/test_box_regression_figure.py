"""figures.plot_box_regression: the boxes it is given, where they are, in a PNG when asked."""
import numpy as np
import pytest
from matplotlib.patches import Rectangle

from dlcourse import figures


def drawn_boxes(figure):
    """``{legend label: (x1, y1, x2, y2)}`` of the rectangles on the figure's one axes."""
    (axes,) = figure.axes
    return {patch.get_label(): (patch.get_x() + 0.5, patch.get_y() + 0.5,
                                patch.get_x() + 0.5 + patch.get_width(), patch.get_y() + 0.5 + patch.get_height())
            for patch in axes.patches if isinstance(patch, Rectangle)}


def test_the_boxes_are_drawn_where_they_are(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype="uint8")
    proposal, truth = [10, 12, 40, 50], [14, 10, 36, 44]
    path = tmp_path / "box.png"
    figure = figures.plot_box_regression(image, proposal, truth, regressed=np.array([13.5, 10, 36, 45.0]),
                                         path=path)
    assert drawn_boxes(figure) == {"ground truth": tuple(truth), "proposal": tuple(proposal),
                                   "regressed": (13.5, 10, 36, 45)}
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    left, right = figure.axes[0].get_xlim()
    assert left <= 9.5 and right >= 39.5, "the view holds every box"


def test_several_regressed_boxes_and_none(tmp_path):
    image = np.zeros((32, 32))  # grayscale
    several = figures.plot_box_regression(image, [2, 2, 20, 20], [4, 4, 18, 22],
                                          {"exact targets": [4, 4, 18, 22], "model": [3, 4, 19, 21]})
    assert set(drawn_boxes(several)) == {"ground truth", "proposal", "exact targets", "model"}
    assert set(drawn_boxes(figures.plot_box_regression(image, [2, 2, 20, 20], [4, 4, 18, 22]))) == {
        "ground truth", "proposal"}
    with pytest.raises(ValueError, match="one box"):
        figures.plot_box_regression(image, [[2, 2, 20, 20]], [4, 4, 18, 22])
