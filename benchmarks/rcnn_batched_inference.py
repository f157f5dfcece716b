"""R-CNN inference: all crops of an image in one model call vs one ``model.predict`` per crop.

The course's R-CNN classifies every proposal with its own ``model.predict``
call.  The lab (``labs.rcnn.Detector``) cuts out all proposals of an image
and classifies them in batches.  This script runs both on the same held-out
scenes, the same proposals and the same model, side by side in one process,
and checks that they find the same detections (same boxes and labels, scores
equal to 1e-5).  Timed per image, after a warm-up of both:

- *inference*: crops + classification + threshold/NMS (what the two differ in);
- *end to end*: the same plus selective search, which both share.

It prints both, crops per second for each, and the speed ratio; it exits
with status 1 if the detections differ or the inference ratio is below 10.

    .venv/bin/python benchmarks/rcnn_batched_inference.py --run runs/rcnn/<stamp>
    .venv/bin/python benchmarks/rcnn_batched_inference.py      # trains a smoke model first

Without ``--run`` it trains a smoke-sized model (a few seconds) in a
temporary directory: the timings are the same, the detections are fewer.
"""
import argparse
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from dlcourse import cli, scenes  # noqa: E402
from labs import rcnn  # noqa: E402

MIN_RATIO = 10.0


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a finished or interrupted labs.rcnn run directory "
                                                   "(default: train a smoke model first)")
    parser.add_argument("--images", type=int, default=4, help="held-out scenes to detect on")
    parser.add_argument("--max-proposals", type=int, default=100,
                        help="proposals per image (the one-by-one path costs ~30 ms per crop)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repeats of the batched path per image (the median counts)")
    parser.add_argument("--seed", type=int, default=123, help="seed of the held-out scenes")
    arguments = parser.parse_args(argv)
    if min(arguments.images, arguments.max_proposals, arguments.repeats) < 1:
        parser.error("--images, --max-proposals and --repeats must be at least 1")
    return arguments


def trained_run(arguments):
    if arguments.run is not None:
        return pathlib.Path(arguments.run)
    out = pathlib.Path(tempfile.mkdtemp(prefix="rcnn_benchmark_")) / "run"
    print(f"no --run given: training a smoke model in {out}")
    rcnn.run(cli.make_config(rcnn.parser, smoke=True, epochs=3, out=str(out), verbose=0))
    return out


def same_detections(first, second):
    """The same boxes to a thousandth of a pixel: regressed boxes are decoded from float32 deltas,
    which the batched and one-by-one paths may round differently in the last bits."""
    (boxes_a, scores_a, labels_a), (boxes_b, scores_b, labels_b) = first, second
    return (np.shape(boxes_a) == np.shape(boxes_b) and np.allclose(boxes_a, boxes_b, rtol=0, atol=1e-3)
            and np.array_equal(labels_a, labels_b)
            and np.allclose(scores_a, scores_b, rtol=0, atol=1e-5))


def main(argv=None):
    arguments = parse_arguments(argv)
    detector = rcnn.load_detector(trained_run(arguments))
    model = detector.model
    one_by_one = lambda crops: rcnn.classify_one_by_one(model, crops)  # noqa: E731
    images = [image for image, _, _ in scenes.make_scene_set(arguments.images, arguments.seed,
                                                             split="test")]
    # Warm-up of both paths (tracing, first-call allocations) on a throw-away image.
    warm_up = detector.propose(images[0])[:3]
    detector.detect(images[0], proposals=warm_up)
    detector.detect(images[0], proposals=warm_up, classify=one_by_one)

    rows, identical = [], True
    for index, image in enumerate(images):
        started = time.perf_counter()
        proposals = detector.propose(image)[:arguments.max_proposals]
        proposal_seconds = time.perf_counter() - started
        batched_times, batched = [], None
        for _ in range(arguments.repeats):
            started = time.perf_counter()
            batched = detector.detect(image, proposals=proposals)
            batched_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        single = detector.detect(image, proposals=proposals, classify=one_by_one)
        single_seconds = time.perf_counter() - started
        identical &= same_detections(batched, single)
        rows.append({"crops": len(proposals), "proposals": proposal_seconds,
                     "batched": statistics.median(batched_times), "single": single_seconds,
                     "detections": len(batched[0]), "same": same_detections(batched, single)})
        print(f"image {index}: {len(proposals)} crops, batched {1000 * rows[-1]['batched']:.1f} ms, "
              f"one by one {1000 * single_seconds:.0f} ms, {len(batched[0])} detections, "
              f"{'identical' if rows[-1]['same'] else 'DIFFERENT'}", flush=True)

    crops = sum(row["crops"] for row in rows)
    batched = sum(row["batched"] for row in rows)
    single = sum(row["single"] for row in rows)
    proposals = sum(row["proposals"] for row in rows)
    ratio, end_to_end = single / batched, (single + proposals) / (batched + proposals)
    print(f"\nTensorFlow {tf.__version__}, Keras {keras.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPU(s) visible, {len(os.sched_getaffinity(0))} usable; "
          f"model {model.count_params()} parameters, {detector.crop_size}×{detector.crop_size} crops")
    print(f"{len(rows)} images, {crops} crops, {sum(row['detections'] for row in rows)} detections\n")
    print("| path | ms per image (inference) | crops/s | ms per image (with selective search) |")
    print("|---|---|---|---|")
    for name, seconds in (("one `predict` per crop", single), ("batched (labs.rcnn)", batched)):
        print(f"| {name} | {1000 * seconds / len(rows):.1f} | {crops / seconds:.0f} | "
              f"{1000 * (seconds + proposals) / len(rows):.1f} |")
    print(f"\nspeed-up: {ratio:.1f}× (inference), {end_to_end:.1f}× (end to end); "
          f"detections identical: {identical}")
    if not identical:
        print("FAIL: the two paths found different detections")
        return 1
    if ratio < MIN_RATIO:
        print(f"FAIL: batched inference is less than {MIN_RATIO:.0f}× faster")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
