"""Classification metrics against numbers computed by hand."""

import numpy as np
import pytest

from edgeemo.metrics import classification_report, confusion_matrix

LABELS = ("a", "b", "c", "d")
# true a a a b b c c c c ; class d never occurs in the truth but is predicted once
Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2, 2, 2, 3])


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 4)
    assert cm.tolist() == [
        [2, 1, 0, 0],
        [0, 1, 1, 0],
        [0, 0, 3, 1],
        [0, 0, 0, 0],
    ]


def test_classification_report_hand_computed():
    r = classification_report(Y_TRUE, Y_PRED, LABELS)
    assert r["n"] == 9
    assert r["accuracy"] == pytest.approx(6 / 9)
    pc = r["per_class"]
    # precision = tp / predicted, recall = tp / support
    assert [pc[k]["precision"] for k in LABELS] == pytest.approx([2 / 2, 1 / 2, 3 / 4, 0.0])
    assert [pc[k]["recall"] for k in LABELS] == pytest.approx([2 / 3, 1 / 2, 3 / 4, 0.0])
    assert pc["a"]["f1"] == pytest.approx(0.8)  # 2 * 1 * 2/3 / (1 + 2/3)
    assert pc["b"]["f1"] == pytest.approx(0.5)
    assert pc["c"]["f1"] == pytest.approx(0.75)
    assert pc["d"]["f1"] == 0.0
    assert [pc[k]["support"] for k in LABELS] == [3, 2, 4, 0]
    # class d has no true samples: left out of the macro averages
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 0.75) / 3)
    assert r["uar"] == pytest.approx((2 / 3 + 1 / 2 + 3 / 4) / 3)
    assert r["confusion_matrix"][0][1] == 1 and r["confusion_matrix"][1][0] == 0


def test_perfect_predictions():
    y = np.array([0, 1, 2, 2, 1])
    r = classification_report(y, y, ("x", "y", "z"))
    assert r["accuracy"] == r["macro_f1"] == r["uar"] == 1.0


def test_report_is_json_serialisable_and_survives_the_round_trip():
    import json

    r = classification_report(Y_TRUE, Y_PRED, LABELS)
    back = json.loads(json.dumps(r))
    assert back == r  # plain floats, ints, lists and dicts: nothing numpy-typed is lost
    assert back["accuracy"] == pytest.approx(6 / 9) and back["confusion_matrix"][0] == [2, 1, 0, 0]
