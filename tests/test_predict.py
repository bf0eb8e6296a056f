"""Photos: find faces with the Haar cascade, classify them, annotate, and fail clearly."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from fer_core import cli, store
from fer_core import predict as predict_module
from fer_core.config import CLASS_NAMES
from fer_core.data import DataError
from fer_core.models import build_model
from fer_core.predict import (
    FacePrediction,
    crop_faces,
    detect_faces,
    predict_photo,
    read_photo,
)
from fer_core.synthetic import draw_face

# A synthetic face drawn with its usual pixel noise and scaled up 4x is found by OpenCV's
# frontal-face cascade (the noise gives the cascade's features texture to respond to).
FACE_BOX = (50, 50, 200, 200)  # x, y, width, height where the face is pasted


def _face(label: int, seed: int, size: int) -> np.ndarray:
    small = draw_face(label, np.random.default_rng(seed), noise=8.0)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def _photo() -> np.ndarray:
    photo = np.full((300, 300), 40, np.uint8)
    x, y, w, h = FACE_BOX
    photo[y:y + h, x:x + w] = _face(3, 0, w)
    return photo


def _overlap(first, second) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    width = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    height = max(0, min(ay + ah, by + bh) - max(ay, by))
    intersection = width * height
    return intersection / (aw * ah + bw * bh - intersection)


@pytest.fixture(autouse=True)
def haar_for_drawn_faces(monkeypatch):
    """The drawn faces of these tests are made for the Haar cascade; MTCNN, the default, is
    tested on real faces below."""
    monkeypatch.setattr(predict_module, "DEFAULT_DETECTOR", "haar")


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """A freshly built (untrained) classifier: predict_photo needs no reference weights."""
    return build_model("baseline")


@pytest.fixture
def photo_file(tmp_path) -> Path:
    path = tmp_path / "face.png"
    assert cv2.imwrite(str(path), _photo())
    return path


def test_detect_faces_finds_the_drawn_face():
    boxes = detect_faces(_photo())
    assert len(boxes) == 1
    assert all(isinstance(v, int) for v in boxes[0])
    assert _overlap(boxes[0], FACE_BOX) > 0.7


def test_detect_faces_orders_largest_first():
    photo = np.full((300, 520), 40, np.uint8)
    photo[50:250, 30:230] = _face(3, 0, 200)
    photo[75:225, 300:450] = _face(6, 0, 150)
    boxes = detect_faces(photo)
    assert len(boxes) == 2
    areas = [w * h for _, _, w, h in boxes]
    assert areas == sorted(areas, reverse=True)
    assert _overlap(boxes[0], (30, 50, 200, 200)) > 0.7
    assert _overlap(boxes[1], (300, 75, 150, 150)) > 0.7


def test_detect_faces_finds_nothing_in_a_blank_photo():
    assert detect_faces(np.full((300, 300), 128, np.uint8)) == []


def test_crop_faces_gives_fer_sized_faces():
    photo = _photo()
    crops = crop_faces(photo, [FACE_BOX, (0, 0, 96, 48)])
    assert crops.shape == (2, 48, 48) and crops.dtype == np.uint8
    x, y, w, h = FACE_BOX
    expected = cv2.resize(photo[y:y + h, x:x + w], (48, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(crops[0], expected)
    assert np.all(crops[1] == 40)  # the plain background corner


def test_predict_photo_with_a_model_object(photo_file, model):
    faces = predict_photo(photo_file, model)
    assert len(faces) == 1
    face = faces[0]
    assert _overlap(face.box, FACE_BOX) > 0.7
    assert face.probabilities.shape == (len(CLASS_NAMES),)
    assert face.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert face.expression in CLASS_NAMES
    gray = read_photo(photo_file)
    crop = crop_faces(gray, [face.box])[..., None].astype(np.float32)
    np.testing.assert_allclose(face.probabilities, model.predict(crop, verbose=0)[0], rtol=1e-5)
    assert face.describe().startswith(f"face at x={face.box[0]} y={face.box[1]}")


def test_predict_photo_reads_colour_jpeg(tmp_path, model):
    path = tmp_path / "face.jpg"
    assert cv2.imwrite(str(path), cv2.cvtColor(_photo(), cv2.COLOR_GRAY2BGR))
    assert read_photo(path).ndim == 2
    assert len(predict_photo(path, model)) == 1


def test_annotate_writes_a_marked_copy(photo_file, tmp_path, model):
    out = tmp_path / "annotated.png"
    faces = predict_photo(photo_file, model, annotate=out)
    assert out.is_file()
    annotated = cv2.imread(str(out), cv2.IMREAD_COLOR)
    assert annotated.shape == (300, 300, 3)
    x, y, w, _ = faces[0].box
    b, g, r = annotated[y, x + w // 2]  # on the top edge of the drawn box
    assert g == 200 and b == 0 and r == 0


def test_annotate_to_an_unwritable_place_raises(photo_file, tmp_path, model):
    with pytest.raises(DataError, match=r"the folder .* does not exist"):
        predict_photo(photo_file, model, annotate=tmp_path / "no" / "such" / "dir" / "a.png")


def test_no_face_raises(tmp_path, model):
    blank = tmp_path / "blank.png"
    assert cv2.imwrite(str(blank), np.full((300, 300), 200, np.uint8))
    with pytest.raises(DataError, match="No face found in") as error:
        predict_photo(blank, model)
    assert str(blank) in str(error.value)


def test_missing_photo_raises(tmp_path, model):
    with pytest.raises(DataError, match="does not exist"):
        predict_photo(tmp_path / "nowhere.jpg", model)
    with pytest.raises(DataError, match="is a folder, not a photo"):
        read_photo(tmp_path)


def test_unreadable_photo_raises(tmp_path, model):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"Cannot read .*junk\.jpg.* as an image"):
        predict_photo(junk, model)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="Cannot read"):
        read_photo(empty)


def test_unknown_reference_model_name(photo_file, tmp_path):
    with pytest.raises(FileNotFoundError, match="No reference model 'nonexistent'"):
        predict_photo(photo_file, "nonexistent", models_dir=tmp_path)


def test_face_prediction_ranks_expressions():
    probabilities = np.array([0.05, 0.0, 0.1, 0.6, 0.05, 0.0, 0.2])
    face = FacePrediction((1, 2, 30, 40), probabilities)
    assert face.expression == "happy"
    assert face.describe() == (
        "face at x=1 y=2 w=30 h=40: happy (happy 0.60, surprise 0.20, fear 0.10, "
        "angry 0.05, neutral 0.05, disgust 0.00, sad 0.00)")


def test_cli_predict_annotates(photo_file, tmp_path, model, monkeypatch, capsys):
    seen = []

    def fake_reference(name, models_dir=None):
        seen.append(name)
        return model, {}

    monkeypatch.setattr(store, "load_reference", fake_reference)
    out = tmp_path / "cli.png"
    code = cli.main(["predict", str(photo_file), "--model", "mine", "--annotate", str(out)])
    assert code == 0
    assert seen == ["mine"]
    assert out.is_file() and cv2.imread(str(out)).shape == (300, 300, 3)
    printed = capsys.readouterr().out
    assert printed.startswith(f"{photo_file}: face at x=")


def test_cli_predict_reports_errors(tmp_path, capsys):
    code = cli.main(["predict", str(tmp_path / "missing.jpg")])
    assert code == 1  # the photo failed; the command went on to the end
    assert "does not exist" in capsys.readouterr().err


def test_cli_model_options_are_parsed_as_numbers_where_possible():
    assert cli._model_options(["depth=4", "dropout=0.2", "name=x"]) == {
        "depth": 4, "dropout": 0.2, "name": "x"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        cli._model_options(["depth"])


# --------------------------------------------------------------------------- hardening

def test_cli_predict_goes_on_after_a_bad_photo_and_fails_at_the_end(photo_file, tmp_path,
                                                                     model, monkeypatch, capsys):
    monkeypatch.setattr(store, "load_reference", lambda name, models_dir=None: (model, {}))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 120), 90, np.uint8))
    code = cli.main(["predict", str(photo_file), str(bad), str(blank), str(photo_file)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out.count(f"{photo_file}: face at") == 2  # both good photos were done
    assert "bad.jpg" in captured.err and "No face found" in captured.err
    assert "2 of 4 photo(s) failed" in captured.err


@pytest.mark.parametrize("target, message", [("out.xyz", "no writer for '.xyz'"),
                                             ("missing/out.png", "does not exist")])
def test_annotation_path_is_checked_before_any_work(photo_file, tmp_path, model, target,
                                                    message, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("detection ran before the annotation path was checked")

    monkeypatch.setattr(predict_module, "detect_faces", must_not_run)
    with pytest.raises(DataError, match=message):
        predict_photo(photo_file, model, annotate=tmp_path / target)


def test_a_folder_given_as_photo_says_so(tmp_path, model):
    with pytest.raises(DataError, match="is a folder, not a photo"):
        predict_photo(tmp_path, model)


def test_sixteen_bit_photo_is_stretched_by_its_actual_range(tmp_path):
    twelve_bit = (_photo().astype(np.uint16) * 16)  # 12-bit data in a 16-bit file: 0..4080
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), twelve_bit)
    gray = read_photo(path)
    assert gray.dtype == np.uint8
    assert gray.max() == 255 and gray.min() == 0  # not the near-black of a bit shift
    assert detect_faces(gray)  # and the face is still found


def test_large_photo_is_searched_scaled_down_with_one_box_per_face():
    big = cv2.resize(_photo(), (3000, 3000), interpolation=cv2.INTER_CUBIC)
    boxes = detect_faces(big)
    assert len(boxes) == 1
    expected = tuple(v * 10 for v in FACE_BOX)
    assert _overlap(boxes[0], expected) > 0.5  # in the big photo's pixels


def test_an_autoencoder_is_refused_as_classifier(photo_file):
    from fer_core.models import build_autoencoder

    with pytest.raises(store.ModelFileError, match="not an expression classifier"):
        predict_photo(photo_file, build_autoencoder())


def test_an_unknown_detector_is_refused_by_name():
    with pytest.raises(ValueError, match="Unknown face detector 'yolo'"):
        detect_faces(_photo(), detector="yolo")


def test_a_missing_mtcnn_package_says_how_to_install_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mtcnn(name, *args, **kwargs):
        if name == "mtcnn":
            raise ImportError("No module named 'mtcnn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mtcnn)
    monkeypatch.setattr(predict_module, "_MTCNN", [])
    with pytest.raises(RuntimeError, match="pip install mtcnn"):
        detect_faces(_photo(), detector="mtcnn")


@pytest.mark.slow
@pytest.mark.real_data
def test_mtcnn_finds_most_real_test_faces_with_square_boxes(real_data):
    pytest.importorskip("mtcnn")
    from fer_core.data import load_splits

    found = 0
    for face in load_splits(real_data).test.head(10).images:
        photo = np.full((360, 480), 90, np.uint8)
        photo[60:204, 150:294] = cv2.resize(face, (144, 144), interpolation=cv2.INTER_CUBIC)
        boxes = detect_faces(photo, detector="mtcnn")
        assert len(boxes) <= 1  # one face, never two boxes on it
        if boxes and _overlap(boxes[0], (150, 60, 144, 144)) > 0.3:
            assert boxes[0][2] == boxes[0][3]  # made square, as FER-2013's crops are
            found += 1
    assert found >= 7
