"""Mistakes a student makes in week 5's IoU, non-maximum suppression and box-regression exercises."""

_NMS = '''
def nms(boxes, scores, threshold=0.3):
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    scores = np.asarray(scores, dtype="float64").reshape(-1)
{body}'''

# encode_box and decode_box from centre-size columns; {centres} and {sizes} are what a mistake changes.
_BOXES = '''
def _centre_size(boxes):
    boxes = np.asarray(boxes, dtype="float64")
    w, h = boxes[..., 2] - boxes[..., 0]{plus}, boxes[..., 3] - boxes[..., 1]{plus}
    return boxes[..., 0] + {half_w}, boxes[..., 1] + {half_h}, w, h

def encode_box(proposal, truth):
    p_x, p_y, p_w, p_h = _centre_size(proposal)
    g_x, g_y, g_w, g_h = _centre_size(truth)
    return np.stack([{encode}], axis=-1)

def decode_box(proposal, deltas):
    p_x, p_y, p_w, p_h = _centre_size(proposal)
    d = np.asarray(deltas, dtype="float64")
    x, y, w, h = {decode}
    return np.stack([{corners}], axis=-1)
'''
_RIGHT = {"plus": "", "half_w": "w / 2", "half_h": "h / 2",
          "encode": "(g_x - p_x) / p_w, (g_y - p_y) / p_h, np.log(g_w / p_w), np.log(g_h / p_h)",
          "decode": "p_x + p_w * d[..., 0], p_y + p_h * d[..., 1], p_w * np.exp(d[..., 2]), p_h * np.exp(d[..., 3])",
          "corners": "x - w / 2, y - h / 2, x + w / 2, y + h / 2"}


def _boxes(**changes):
    return _BOXES.format(**{**_RIGHT, **changes})


MISTAKES = {
    "iou": {
        "Pascal VOC's +1 on widths, heights and areas": '''
def iou(box, boxes):
    box = np.asarray(box, dtype="float64")
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]) + 1
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]) + 1
    intersection = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    area = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    return intersection / (area + areas - intersection)
''',
        "union counts the intersection twice": '''
def iou(box, boxes):
    box = np.asarray(box, dtype="float64")
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    intersection = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / (area + areas)
''',
        "clips the product, not width and height each (negative x negative)": '''
def iou(box, boxes):
    box = np.asarray(box, dtype="float64")
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    intersection = np.maximum(width * height, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / (area + areas - intersection)
''',
        "intersection from min of x1 to max of x2 (the enclosing box)": '''
def iou(box, boxes):
    box = np.asarray(box, dtype="float64")
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    width = np.maximum(box[2], boxes[:, 2]) - np.minimum(box[0], boxes[:, 0])
    height = np.maximum(box[3], boxes[:, 3]) - np.minimum(box[1], boxes[:, 1])
    intersection = np.maximum(width, 0.0) * np.maximum(height, 0.0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return intersection / (area + areas - intersection)
''',
    },
    "nms": {
        "does not sort by score (visits boxes in index order)": _NMS.format(body='''
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in range(len(boxes)):
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= iou(boxes[index], boxes) > threshold
    return np.array(keep, dtype="int64")
'''),
        "keeps overlapping boxes (never skips a suppressed one)": _NMS.format(body='''
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in order:
        keep.append(index)
        suppressed |= iou(boxes[index], boxes) > threshold
    return np.array(keep, dtype="int64")
'''),
        "suppresses at IoU >= threshold": _NMS.format(body='''
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in order:
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= iou(boxes[index], boxes) >= threshold
    return np.array(keep, dtype="int64")
'''),
        "np.argsort(scores)[::-1] reverses the ties": _NMS.format(body='''
    order = np.argsort(scores)[::-1]
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in order:
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= iou(boxes[index], boxes) > threshold
    return np.array(keep, dtype="int64")
'''),
        "returns the kept indices in index order, not score order": _NMS.format(body='''
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for index in order:
        if suppressed[index]:
            continue
        keep.append(index)
        suppressed |= iou(boxes[index], boxes) > threshold
    return np.sort(np.array(keep, dtype="int64"))
'''),
    },
    "box_targets": {
        "Pascal VOC's +1 on widths and heights": _boxes(plus=" + 1"),
        "the size ratio, not its log (and no exp to undo it)": _boxes(
            encode="(g_x - p_x) / p_w, (g_y - p_y) / p_h, g_w / p_w, g_h / p_h",
            decode="p_x + p_w * d[..., 0], p_y + p_h * d[..., 1], p_w * d[..., 2], p_h * d[..., 3]"),
        "log10 and 10 ** d instead of the natural log and exp": _boxes(
            encode="(g_x - p_x) / p_w, (g_y - p_y) / p_h, np.log10(g_w / p_w), np.log10(g_h / p_h)",
            decode="p_x + p_w * d[..., 0], p_y + p_h * d[..., 1], p_w * 10 ** d[..., 2], p_h * 10 ** d[..., 3]"),
        "the shift in the ground truth's size, not the proposal's": _boxes(
            encode="(g_x - p_x) / g_w, (g_y - p_y) / g_h, np.log(g_w / p_w), np.log(g_h / p_h)"),
        "the shift in pixels (not divided by the proposal's size)": _boxes(
            encode="g_x - p_x, g_y - p_y, np.log(g_w / p_w), np.log(g_h / p_h)",
            decode="p_x + d[..., 0], p_y + d[..., 1], p_w * np.exp(d[..., 2]), p_h * np.exp(d[..., 3])"),
        "top-left corners instead of centres": _boxes(half_w="0", half_h="0",
                                                      corners="x, y, x + w, y + h"),
        "integer centres (x1 + w // 2)": _boxes(half_w="w // 2", half_h="h // 2"),
        "decode_box returns (x, y, w, h), not corners": _boxes(corners="x, y, w, h"),
        "reshape(-1, 4): one box (4,) comes back as (1, 4)": '''
def encode_box(proposal, truth):
    proposal = np.asarray(proposal, dtype="float64").reshape(-1, 4)
    truth = np.asarray(truth, dtype="float64").reshape(-1, 4)
    p_w, p_h = proposal[:, 2] - proposal[:, 0], proposal[:, 3] - proposal[:, 1]
    g_w, g_h = truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1]
    p_x, p_y = proposal[:, 0] + p_w / 2, proposal[:, 1] + p_h / 2
    g_x, g_y = truth[:, 0] + g_w / 2, truth[:, 1] + g_h / 2
    return np.stack([(g_x - p_x) / p_w, (g_y - p_y) / p_h, np.log(g_w / p_w), np.log(g_h / p_h)], axis=1)

def decode_box(proposal, deltas):
    proposal = np.asarray(proposal, dtype="float64").reshape(-1, 4)
    deltas = np.asarray(deltas, dtype="float64").reshape(-1, 4)
    p_w, p_h = proposal[:, 2] - proposal[:, 0], proposal[:, 3] - proposal[:, 1]
    x = proposal[:, 0] + p_w / 2 + p_w * deltas[:, 0]
    y = proposal[:, 1] + p_h / 2 + p_h * deltas[:, 1]
    w, h = p_w * np.exp(deltas[:, 2]), p_h * np.exp(deltas[:, 3])
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)
''',
    },
}
