"""Mistakes a student makes in week 5's IoU and non-maximum suppression exercises."""

_NMS = '''
def nms(boxes, scores, threshold=0.3):
    boxes = np.asarray(boxes, dtype="float64").reshape(-1, 4)
    scores = np.asarray(scores, dtype="float64").reshape(-1)
{body}'''

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
}
