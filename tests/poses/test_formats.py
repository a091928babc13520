"""Every pose format read from real files written as the published specifications describe them:
OpenPose --write_json (doc/02_output.md, COCO-18 and BODY_25 models, version 1.0 key), COCO keypoints
(cocodataset.org/#format-data: annotation and results forms), DeepFashion annotation rows and
dataset image names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.data.keypoints import KEYPOINT_NAMES
from bench.errors import DataError
from bench.poses import load_pose, load_source, read_pose_file
from bench.poses.layouts import BODY25_NAMES, COCO17_NAMES

# One person in the 256x176 frame (y, x) per COCO-18 name; an image of that size maps 1:1.
PERSON = {
    "Nose": (40, 88), "Neck": (70, 88), "RShoulder": (70, 60), "RElbow": (110, 52), "RWrist": (150, 50),
    "LShoulder": (70, 116), "LElbow": (110, 124), "LWrist": (150, 126), "RHip": (150, 70),
    "RKnee": (200, 68), "RAnkle": (245, 66), "LHip": (150, 106), "LKnee": (200, 108), "LAnkle": (245, 110),
    "REye": (36, 82), "LEye": (36, 94), "REar": (40, 76), "LEar": (40, 100),
}  # fmt: skip
EXPECTED = np.array([PERSON[n] for n in KEYPOINT_NAMES])


def _triplets(
    names: tuple[str, ...], scale: float = 1.0, conf: float = 0.9, drop: tuple[str, ...] = ()
) -> list:
    """x, y, c per name, in pixels of a frame ``scale`` times 256x176; points OpenPose did not detect: 0, 0, 0."""
    out: list[float] = []
    for name in names:
        if name in PERSON and name not in drop:
            y, x = PERSON[name]
            out += [x * scale, y * scale, conf]
        else:
            out += [0.0, 0.0, 0.0]
    return out


def _openpose(
    path: Path, people: list[list[float]], key: str = "pose_keypoints_2d", version: float = 1.3
) -> Path:
    body = [{"person_id": [-1], key: p, "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
             "hand_right_keypoints_2d": [], "pose_keypoints_3d": [], "face_keypoints_3d": [],
             "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []} for p in people]  # fmt: skip
    path.write_text(json.dumps({"version": version, "people": body}))
    return path


def _coco_names() -> tuple[str, ...]:
    of = {"nose": "Nose", "left_eye": "LEye", "right_eye": "REye", "left_ear": "LEar", "right_ear": "REar"}
    return tuple(of.get(n) or n.split("_")[0][0].upper() + n.split("_")[1].capitalize() for n in COCO17_NAMES)


def test_coco_name_table_matches_the_spec() -> None:
    # left_shoulder -> LShoulder etc.; the table in layouts.py is written independently of this one.
    assert _coco_names()[5:7] == ("LShoulder", "RShoulder") and _coco_names()[16] == "RAnkle"


def test_openpose_coco18(tmp_path: Path) -> None:
    path = _openpose(tmp_path / "pose_keypoints.json", [_triplets(KEYPOINT_NAMES, scale=2.0)])
    pose, framing = load_pose(str(path), frame=(512, 352))
    assert np.array_equal(pose.keypoints, EXPECTED)
    assert (framing.left, framing.width) == (0, 352)
    assert pose.name == "pose_keypoints.json" and "openpose-coco18 person 0 of 1" in pose.origin


def test_openpose_body25_drops_midhip_and_feet(tmp_path: Path) -> None:
    values = _triplets(BODY25_NAMES)
    mid = BODY25_NAMES.index("MidHip")
    values[3 * mid : 3 * mid + 3] = [88.0, 150.0, 0.8]  # present in BODY_25, not in COCO-18
    for toe in ("LBigToe", "RHeel"):
        i = BODY25_NAMES.index(toe)
        values[3 * i : 3 * i + 3] = [100.0, 250.0, 0.7]
    path = _openpose(tmp_path / "b25.json", [values])
    pf = read_pose_file(path)
    assert pf.layout == "openpose-body25" and pf.persons[0].shape == (18, 3)
    pose, _ = load_pose(str(path), frame=(256, 176))
    assert np.array_equal(pose.keypoints, EXPECTED)


def test_openpose_version_1_0_key(tmp_path: Path) -> None:
    path = _openpose(tmp_path / "old.json", [_triplets(KEYPOINT_NAMES)], key="pose_keypoints", version=1.0)
    assert np.array_equal(load_pose(str(path), frame=(256, 176))[0].keypoints, EXPECTED)


def test_largest_person_or_the_chosen_one(tmp_path: Path) -> None:
    small = _triplets(KEYPOINT_NAMES, scale=0.5)  # half the size, in the top-left corner
    big = _triplets(KEYPOINT_NAMES)
    path = _openpose(tmp_path / "two.json", [small, big])
    pose, _ = load_pose(str(path), frame=(256, 176))
    assert np.array_equal(pose.keypoints, EXPECTED) and "person 1 of 2" in pose.origin
    assert pose.name == "two-person1.json"
    first, _ = load_pose(str(path), frame=(256, 176), person=0)
    assert np.array_equal(first.keypoints, np.rint(EXPECTED * 0.5))
    with pytest.raises(DataError, match="--person 2 asked for, the file has 2"):
        load_pose(str(path), frame=(256, 176), person=2)


def test_confidence_threshold_drops_points(tmp_path: Path) -> None:
    values = _triplets(KEYPOINT_NAMES)
    wrist = KEYPOINT_NAMES.index("LWrist")
    values[3 * wrist + 2] = 0.05
    path = _openpose(tmp_path / "p.json", [values])
    default, _ = load_pose(str(path), frame=(256, 176))
    assert default.keypoints[wrist].tolist() == [-1, -1]  # 0.05 < 0.1
    loose, _ = load_pose(str(path), frame=(256, 176), threshold=0.01)
    assert loose.keypoints[wrist].tolist() == list(PERSON["LWrist"])
    with pytest.raises(DataError, match="no keypoint with confidence >= 0.95"):
        load_pose(str(path), frame=(256, 176), threshold=0.95)


def test_openpose_frame_from_the_image_beside_it(tmp_path: Path) -> None:
    # OpenPose names its output <image stem>_keypoints.json; the image gives the frame (1000x1000 here).
    Image.new("RGB", (1000, 1000)).save(tmp_path / "walk_000001.png")
    values = []
    for name in KEYPOINT_NAMES:
        values += [300.0, 500.0, 0.9] if name == "Nose" else [0.0, 0.0, 0.0]
    path = _openpose(tmp_path / "walk_000001_keypoints.json", [values])
    pose, framing = load_pose(str(path))
    assert (framing.left, framing.width) == (0, 688)  # hand-computed in test_framing.py
    assert pose.keypoints[0].tolist() == [128, 77]
    (tmp_path / "walk_000001.png").unlink()
    with pytest.raises(DataError, match="does not record the size.*--pose-frame"):
        load_pose(str(path))


def _coco_file(path: Path, scale: float = 1.0) -> Path:
    anns = [
        {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0, "num_keypoints": 17, "area": 900.0,
         "bbox": [0, 0, 30, 30], "keypoints": _triplets(_coco_names(), scale=0.2, conf=2)},
        {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 0, "num_keypoints": 16, "area": 9000.0,
         "bbox": [40, 30, 100, 220], "keypoints": _triplets(_coco_names(), scale=scale, conf=2, drop=("LWrist",))},
        {"id": 3, "image_id": 8, "category_id": 1, "iscrowd": 0, "num_keypoints": 17, "area": 9000.0,
         "bbox": [40, 30, 100, 220], "keypoints": _triplets(_coco_names(), scale=scale, conf=1)},
    ]  # fmt: skip
    data = {
        "info": {"description": "test"},
        "images": [
            {"id": 7, "file_name": "000007.jpg", "height": int(256 * scale), "width": int(176 * scale)},
            {"id": 8, "file_name": "000008.jpg", "height": int(256 * scale), "width": int(176 * scale)},
        ],
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO17_NAMES),
                        "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13]]}],
    }  # fmt: skip
    path.write_text(json.dumps(data))
    return path


def test_coco_annotations_neck_is_the_shoulders_midpoint(tmp_path: Path) -> None:
    path = _coco_file(tmp_path / "person_keypoints.json", scale=2.0)
    pose, framing = load_pose(f"{path}#000007.jpg")
    want = EXPECTED.copy()
    want[KEYPOINT_NAMES.index("LWrist")] = -1  # v = 0 in the file
    # neck = midpoint of the shoulders (70, 60) and (70, 116): (70, 88), equal to PERSON's neck
    assert np.array_equal(pose.keypoints, want) and "person 1 of 2" in pose.origin  # the larger one
    assert (framing.size, framing.left) == ((512, 352), 0)
    by_id, _ = load_pose(f"{path}#8", frame=(100, 100))  # a default frame: the file's own size wins
    assert np.array_equal(by_id.keypoints, EXPECTED)  # v = 1 (labelled, hidden) counts as present
    assert by_id.name == "person_keypoints-8.json"
    with pytest.raises(DataError, match="keypoints of 2 images.*#<file_name or image id>"):
        load_pose(str(path))
    with pytest.raises(DataError, match="no keypoints for image 'nope.jpg'"):
        load_pose(f"{path}#nope.jpg")


def test_coco_neck_missing_without_both_shoulders(tmp_path: Path) -> None:
    result = [{"image_id": 3, "category_id": 1, "score": 0.9,
               "keypoints": _triplets(_coco_names(), conf=0.8, drop=("RShoulder",))}]  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(result))
    pose, _ = load_pose(str(path), frame=(256, 176))
    assert pose.keypoints[1].tolist() == [-1, -1] and pose.keypoints[2].tolist() == [-1, -1]
    assert pose.keypoints[5].tolist() == list(PERSON["LShoulder"])
    with pytest.raises(DataError, match="does not record the size"):
        load_pose(str(path))


def test_coco_source_photo_picks_its_own_image_and_checks_the_size(tmp_path: Path) -> None:
    path = _coco_file(tmp_path / "kp.json")
    photo = tmp_path / "000008.jpg"
    Image.new("RGB", (176, 256), (200, 200, 200)).save(photo)
    src = load_source(str(photo), pose=str(path))
    assert np.array_equal(src.pose.keypoints, EXPECTED) and src.image.size == (176, 256)
    assert src.pose.name == "000008.jpg"
    Image.new("RGB", (200, 256)).save(photo)
    with pytest.raises(DataError, match="176x256 .WxH. but the photo is 200x256"):
        load_source(str(photo), pose=str(path))


def test_deepfashion_rows_and_dataset_names(tmp_path: Path) -> None:
    ys, xs = EXPECTED[:, 0].tolist(), EXPECTED[:, 1].tolist()
    name = "fashionWOMENDressesid0000001101_1front.jpg"
    row = f"{name}: {ys}: {xs}"  # the original writer's form: a space after each colon
    single = tmp_path / "row.txt"
    single.write_text(row + "\n")
    pose, framing = load_pose(str(single))
    assert framing is None and np.array_equal(pose.keypoints, EXPECTED) and pose.name == name
    root = tmp_path / "ds"
    root.mkdir()
    other = "fashionMENTees_Tanksid0000000201_2side.jpg"
    other_row = f"{other}:{[-1] * 18}:{[-1] * 18}"
    (root / "fasion-resize-annotation-test.csv").write_text(
        f"name:keypoints_y:keypoints_x\n{row}\n{other_row}\n"
    )
    csv = root / "fasion-resize-annotation-test.csv"
    assert np.array_equal(load_pose(f"{csv}#{name}")[0].keypoints, EXPECTED)
    with pytest.raises(DataError, match="2 annotation rows; choose one"):
        load_pose(str(csv))
    by_name, _ = load_pose(name, dataset=root)
    assert np.array_equal(by_name.keypoints, EXPECTED) and by_name.name == name
    with pytest.raises(DataError, match="not a pose file nor an image of the dataset"):
        load_pose("fashionWOMENDressesid0000009901_1front.jpg", dataset=root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"people": [{"pose_keypoints_2d": [1.0] * 45}]},
            "expected 54 .COCO-18. or 75 .BODY_25. numbers, got 45",
        ),
        ({"people": []}, "no person in the file"),
        ({"people": [{"pose_keypoints_2d": [0.0] * 54}]}, "no keypoint with confidence"),
        ({"version": 1.3}, "not a pose file we can read"),
        ([{"image_id": 1, "keypoints": [1, 2]}], r"expected 51 numbers"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(DataError, match=message) as err:
        load_pose(str(path), frame=(256, 176))
    assert str(path) in str(err.value)


def test_unreadable_json_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{nope")
    with pytest.raises(DataError, match="broken.json: not valid JSON"):
        load_pose(str(path), frame=(256, 176))


def test_unreadable_photo_and_missing_dataset_image_are_named(tmp_path: Path) -> None:
    photo = tmp_path / "me.jpg"
    photo.write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(DataError, match="me.jpg: cannot read the source photo"):
        load_source(str(photo))
    root = tmp_path / "ds"
    root.mkdir()
    name = "fashionWOMENDressesid0000001101_1front.jpg"
    (root / "fasion-resize-annotation-test.csv").write_text(
        f"name:keypoints_y:keypoints_x\n{name}:{[5] * 18}:{[6] * 18}\n"
    )
    with pytest.raises(DataError, match="annotated in .* but its image is in neither .*test_highres"):
        load_source(name, dataset=root)
    (root / "test_highres").mkdir()
    Image.new("RGB", (176, 256), (100, 150, 200)).save(root / "test_highres" / name)
    src = load_source(name, dataset=root)
    assert (
        src.pose.name == name
        and (src.pose.keypoints == [5, 6]).all()
        and np.abs(np.subtract(src.image.getpixel((0, 0)), (100, 150, 200))).max() <= 2  # JPEG
    )
