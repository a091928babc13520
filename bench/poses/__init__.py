"""Poses from the tools people use, mapped into the frame the methods were trained in.

A method sees keypoints as the DeepFashion split gives them: 18 OpenPose COCO-18 points (y, x) in
the 256x176 annotation frame, -1 missing (``bench.data.keypoints``). This package reads a pose from

- an OpenPose ``--write_json`` file (``people[i].pose_keypoints_2d``; COCO-18 or BODY_25 layout,
  told apart by length; the 1.0 key ``pose_keypoints`` too),
- a COCO keypoint file (the dataset form with ``images``/``annotations``, or the results form, a
  list of detections): 17 points; the neck, which COCO lacks, is the shoulders' midpoint,
- a DeepFashion annotation row (``name:[y...]:[x...]``), a file of such rows, or
- the name of an image of a dataset root (its annotation row),

chooses one person (the largest, or the i-th), drops points below a confidence threshold, and maps
the photo's pixel frame onto the annotation frame the way the dataset's frame was made
(:mod:`bench.poses.framing`).
"""

from bench.poses.framing import Framing, frame_for
from bench.poses.readers import PoseFile, read_pose_file
from bench.poses.resolve import Pose, Source, load_pose, load_source

__all__ = ["Framing", "Pose", "PoseFile", "Source", "frame_for", "load_pose", "load_source", "read_pose_file"]
