"""Metric code against small cases worked out by hand, and pairs-file parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceprint.evaluate import metrics
from faceprint.evaluate.lfw import PairsFormatError, parse_pairs

# genuine 0.9, 0.8, 0.6; impostor 0.7, 0.5, 0.4
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
LABELS = np.array([True, True, False, True, False, False])


def test_roc_points() -> None:
    roc = metrics.roc_curve(SCORES, LABELS)
    assert roc.thresholds[0] == np.inf
    np.testing.assert_allclose(roc.thresholds[1:], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    np.testing.assert_allclose(roc.tar, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    np.testing.assert_allclose(roc.far, [0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])


def test_roc_ties_are_accepted_together() -> None:
    roc = metrics.roc_curve([0.5, 0.5, 0.2], [True, False, False])
    np.testing.assert_allclose(roc.tar, [0, 1, 1])
    np.testing.assert_allclose(roc.far, [0, 0.5, 1])


def test_auc() -> None:
    # 8 of the 9 genuine/impostor pairs are ordered correctly (0.6 < 0.7 is the exception)
    assert metrics.roc_auc(SCORES, LABELS) == pytest.approx(8 / 9)
    # a tie counts half
    assert metrics.roc_auc([0.5, 0.5], [True, False]) == pytest.approx(0.5)
    assert metrics.roc_auc([1.0, 0.0], [True, False]) == pytest.approx(1.0)


def test_eer() -> None:
    # at threshold 0.7: FAR 1/3 (0.7 accepted), FRR 1/3 (0.6 rejected)
    rate, threshold = metrics.eer(SCORES, LABELS)
    assert rate == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.7)
    # FAR - FRR jumps from -1/6 (at 0.7: FAR 1/3, FRR 1/2) to +1/3 (at 0.6: FAR 1/3, FRR 0);
    # linear interpolation crosses a third of the way: FAR = FRR = 1/3 at threshold 0.7 - 0.1/3
    rate, threshold = metrics.eer([0.9, 0.7, 0.6, 0.2, 0.1], [True, False, True, False, False])
    assert rate == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.7 - 0.1 / 3)


def test_tar_at_far() -> None:
    assert metrics.tar_at_far(SCORES, LABELS, 0.0) == (pytest.approx(2 / 3), pytest.approx(0.8))
    assert metrics.tar_at_far(SCORES, LABELS, 0.1) == (pytest.approx(2 / 3), pytest.approx(0.8))
    # FAR 1/3 lets the 0.7 impostor in, so 0.6 can be accepted too
    assert metrics.tar_at_far(SCORES, LABELS, 1 / 3) == (pytest.approx(1.0), pytest.approx(0.6))


def test_threshold_at_far_from_impostors() -> None:
    impostors = np.arange(1, 11) / 10  # 0.1 .. 1.0
    # FAR 0.1 of 10: one may pass (1.0); 0.9 must not: midway between them
    t = metrics.threshold_at_far(impostors, 0.1)
    assert t == pytest.approx(0.95)
    assert (impostors >= t).mean() == pytest.approx(0.1)
    # none may pass: just above the top score
    t = metrics.threshold_at_far(impostors, 0.05)
    assert t > 1.0 and t == pytest.approx(1.0)
    assert metrics.min_impostors(1e-3) == 10_000
    assert metrics.min_impostors(0.05) == 200


def test_best_threshold_and_accuracy() -> None:
    # candidates between 0.5|0.6 and 0.7|0.8 both get 5 of 6 right; the middle (first) of the two
    t = metrics.best_threshold(SCORES, LABELS)
    assert t == pytest.approx(0.55)
    assert metrics.accuracy(SCORES, LABELS, t) == pytest.approx(5 / 6)


def test_kfold_threshold_comes_from_training_folds_only() -> None:
    # fold 0 alone is separable (any threshold in (0.35, 0.8) is perfect) but its threshold
    # must come from fold 1, whose best is 0.3 (midway 0.1|0.5): fold 0's 0.35 impostor passes
    scores = np.array([0.9, 0.8, 0.35, 0.2, 0.6, 0.5, 0.52, 0.1])
    labels = np.array([True, True, False, False, True, True, False, False])
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    res = metrics.kfold_accuracy(scores, labels, folds)
    np.testing.assert_allclose(res.thresholds, [0.3, 0.575])
    np.testing.assert_allclose(res.accuracies, [0.75, 0.75])
    assert res.mean == pytest.approx(0.75) and res.std == pytest.approx(0.0)
    # an unscorable pair is left out of threshold choice and counted wrong where tested
    valid = np.ones(8, bool)
    valid[3] = False  # fold 0's 0.2 impostor: would have been right
    res = metrics.kfold_accuracy(scores, labels, folds, valid)
    np.testing.assert_allclose(res.accuracies, [0.5, 0.75])


def test_assign_folds_is_stratified() -> None:
    labels = np.array([True] * 20 + [False] * 20)
    folds = metrics.assign_folds(labels, 10)
    for k in range(10):
        assert (folds[labels] == k).sum() == 2 and (folds[~labels] == k).sum() == 2


def test_cmc_and_ranks() -> None:
    scores = np.array([[0.9, 0.1, 0.2], [0.5, 0.4, 0.3], [0.6, 0.7, 0.2]])
    truth = np.array([0, 1, 2])
    np.testing.assert_array_equal(metrics.ranks(scores, truth), [1, 2, 3])
    np.testing.assert_allclose(metrics.cmc(scores, truth), [1 / 3, 2 / 3, 1])
    # a tie with another identity counts against the probe
    assert metrics.ranks(np.array([[0.5, 0.5]]), np.array([1]))[0] == 2


def test_dir_at_fpir() -> None:
    known = np.array([[0.9, 0.1], [0.2, 0.7], [0.3, 0.6], [0.1, 0.4]])
    truth = np.array([0, 1, 0, 1])  # probe 2 is ranked second: never identified
    unknown = np.array([[0.8, 0.1], [0.5, 0.2], [0.3, 0.1], [0.1, 0.2]])  # best 0.8, 0.5, 0.3, 0.2
    assert metrics.dir_at_fpir(known, truth, unknown, 0.0) == (pytest.approx(0.25), pytest.approx(0.9))
    assert metrics.dir_at_fpir(known, truth, unknown, 0.25) == (pytest.approx(0.5), pytest.approx(0.7))
    assert metrics.dir_at_fpir(known, truth, unknown, 0.5) == (pytest.approx(0.75), pytest.approx(0.4))
    curve = metrics.open_set_curve(known, truth, unknown)
    np.testing.assert_allclose(curve.fpir, [0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1])
    np.testing.assert_allclose(curve.dir, [0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 0.75])


def test_metric_input_errors() -> None:
    with pytest.raises(ValueError, match="genuine and one impostor"):
        metrics.roc_curve([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="same length"):
        metrics.kfold_accuracy([0.1], [True, False], [0, 1])


# ----------------------------------------------------------------------------- pairs files
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


def test_parse_sets_header(tmp_path: Path) -> None:
    text = "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n"
    pl = parse_pairs(_write(tmp_path, text))
    assert (pl.sets, pl.per_class, len(pl.pairs)) == (2, 1, 4)
    assert [p.same for p in pl.pairs] == [True, False, True, False]
    np.testing.assert_array_equal(pl.folds, [0, 0, 1, 1])
    assert pl.pairs[1].a == ("B", 1) and pl.pairs[1].b == ("C", 3)
    assert pl.pairs[2].line == 4


def test_parse_single_count_header(tmp_path: Path) -> None:
    # pairsDevTest.txt style: one set, "500" then 500 same + 500 different
    lines = ["10"] + [f"P{i} 1 2" for i in range(10)] + [f"P{i} 1 Q{i} 1" for i in range(10)]
    pl = parse_pairs(_write(tmp_path, "\n".join(lines) + "\n"))
    assert (pl.sets, pl.per_class, len(pl.pairs)) == (1, 10, 20)
    # one set: split into 10 stratified folds of 1 same + 1 different
    assert sorted(np.bincount(pl.folds)) == [2] * 10


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("1 1\nA 1 x\nB 1 C 1\n", ":2:", "image number must be an integer"),
        ("1 1\nA 1 2\nB 1 C\n", ":3:", "expected a different-person"),
        ("1 1\nA 1 C 2\nB 1 C 1\n", ":2:", "expected a same-person"),
        ("1 1\nA 1 2\n", "", "1 pairs, but the header announces"),
        ("1 1\nA 1 2\nB 1 C 1\nD 1 2\n", ":4:", "more pairs than the header"),
        ("1 2 3\n", ":1:", "header must be"),
        ("x 1\n", ":1:", "header: number of sets must be an integer"),
        ("1 1\nA 0 2\nB 1 C 1\n", ":2:", "must be positive"),
        ("", "", "empty pairs file"),
    ],
)
def test_parse_errors_name_file_and_line(tmp_path: Path, text: str, where: str, what: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PairsFormatError) as info:
        parse_pairs(path)
    message = str(info.value)
    assert message.startswith(f"{path}{where}"), message
    assert what in message


def test_parse_real_lfw_pairs(data_dir: Path) -> None:
    pl = parse_pairs(data_dir / "lfw" / "pairs.txt")
    assert (pl.sets, pl.per_class, len(pl.pairs)) == (10, 300, 6000)
    assert pl.labels.sum() == 3000
    dev = parse_pairs(data_dir / "lfw" / "pairsDevTest.txt")
    assert (dev.sets, dev.per_class, len(dev.pairs)) == (1, 500, 1000)
