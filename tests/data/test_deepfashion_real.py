"""The readers on the real split files in ../shared (statistics from deepfashion.md §5)."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from bench.data.deepfashion import (
    FLAT_NAME_RE,
    flatten_name,
    pair_id,
    read_annotations,
    read_list,
    read_pairs,
    unflatten_name,
)


def test_test_pairs_parse_fast_and_match_the_published_counts(splits_dir):
    start = time.perf_counter()
    pairs = read_pairs(splits_dir / "fasion-resize-pairs-test.csv")
    ann = read_annotations(splits_dir / "fasion-resize-annotation-test.csv")
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"parsing took {elapsed:.2f}s"
    assert len(pairs) == 8570
    assert len(set(pairs)) == 8570  # no duplicate pairs
    assert all(a != b for a, b in pairs)  # no self-pairs
    assert pairs[0] == (
        "fashionWOMENBlouses_Shirtsid0000337203_3back.jpg",
        "fashionWOMENBlouses_Shirtsid0000337203_2side.jpg",
    )
    used = {n for p in pairs for n in p}
    assert len(used) == 3144
    assert {a for a, _ in pairs} == {b for _, b in pairs} == used
    assert used <= set(ann)  # every pair image is annotated
    test_lst = read_list(splits_dir / "test.lst")
    assert len(ann) == len(test_lst) == 4038
    assert set(ann) == set(test_lst)


def test_annotation_values_and_statistics(splits_dir):
    ann = read_annotations(splits_dir / "fasion-resize-annotation-test.csv")
    first = ann["fashionWOMENTees_Tanksid0000508545_1front.jpg"]
    assert first.dtype == np.int32 and first.shape == (18, 2)
    # y list first, then x list (row 3 of the file).
    assert first[0].tolist() == [40, 88] and first[1].tolist() == [85, 89] and first[9].tolist() == [-1, -1]
    kps = np.stack(list(ann.values()))
    visible = kps[:, :, 0] != -1
    assert np.array_equal(visible, kps[:, :, 1] != -1)  # -1 positions agree between y and x
    hist = Counter(visible.sum(axis=1).tolist())
    assert hist[0] == 619 and hist[18] == 627 and hist[14] == 616 and hist[11] == 558
    np.testing.assert_allclose(visible.mean(axis=0)[[0, 1, 9, 13]], [0.765, 0.846, 0.340, 0.234], atol=5e-4)
    ys, xs = kps[:, :, 0][visible], kps[:, :, 1][visible]
    assert ys.min() == 0 and ys.max() == 255 and xs.min() == -31 and xs.max() == 205
    assert (xs < 0).sum() == 11 and (xs > 175).sum() == 8


def test_flatten_round_trip_on_all_names(splits_dir):
    names = read_list(splits_dir / "train.lst") + read_list(splits_dir / "test.lst")
    assert len(names) == len(set(names)) == 52712
    genders = Counter()
    for name in names:
        assert FLAT_NAME_RE.match(name), name
        path = unflatten_name(name)
        assert flatten_name(path) == name
        genders[path.split("/")[1]] += 1
    assert genders == {"WOMEN": 41426 + 3448, "MEN": 7248 + 590}


def test_flatten_rule_example_and_archive_roots():
    flat = "fashionWOMENBlouses_Shirtsid0000000102_1front.jpg"
    assert flatten_name("fashion/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg") == flat
    assert flatten_name("img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg") == flat
    assert flatten_name("/data/img_highres/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg") == flat
    assert unflatten_name(flat) == "fashion/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg"
    assert unflatten_name(flat, root="img") == "img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg"
    assert pair_id("a/fashionMENDenimid0000000101_1front.jpg", "fashionMENDenimid0000000101_2side.jpg") == (
        "fashionMENDenimid0000000101_1front_2_fashionMENDenimid0000000101_2side"
    )
