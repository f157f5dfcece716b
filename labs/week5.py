"""Week 5: R-CNN object detection (selective search → VGG16 region classifier → NMS → mAP@0.5).
``python -m labs.week5 [any option of the lab]``; the course's own photos: ``python -m labs.week5
--images DIR --annotations DIR``; boxes on an image: ``python -m labs.rcnn detect IMAGE --run RUN_DIR``."""
import sys

from dlcourse import weeks

LABS = ("rcnn",)


def main(argv=None):
    return weeks.main("week5", LABS, argv)


if __name__ == "__main__":
    sys.exit(main())
