"""The evaluator on real images with the real VGG19: known answers, JSON, folder matching, errors."""

import json

import pytest
import torch
from conftest import assert_one_line_error, run_cli
from PIL import Image

from fast_nst.errors import UserError
from fast_nst.evaluate import (
    content_for,
    evaluate_files,
    evaluate_video,
    gap_metrics,
    loss_metrics,
    standard_encoder,
)
from fast_nst.files import load_image_tensor, open_image, resize_long_side


@pytest.fixture(scope="module")
def encoder():
    return standard_encoder()


def test_content_against_itself(encoder, photo, painting):
    loss = loss_metrics(photo, photo, painting, encoder, size=128)
    assert loss["content"] == pytest.approx(0, abs=1e-6)
    assert loss["content_layers"] == {"relu4_2": loss["content"]}
    assert set(loss["style_layers"]) == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"}
    assert loss["style"] > 0.1
    gap = gap_metrics(photo, photo, painting, encoder, size=128)
    assert gap["style_gap"] == pytest.approx(1.0)  # by definition: the photo is the yardstick
    assert gap["content_err"] == pytest.approx(0, abs=1e-6)


def test_style_gap_is_undefined_for_the_painting_as_photo(encoder, painting):
    with pytest.raises(UserError, match="undefined"):
        gap_metrics(painting, painting, painting, encoder, size=64)


def test_tensors_measure_like_files_and_sizes_are_matched(encoder, photo, painting):
    from_file = gap_metrics(photo, photo, painting, encoder, size=96)
    # A model output a few pixels off the photo's size, as a tensor.
    off_size = load_image_tensor(photo).squeeze(0)
    off_size = torch.nn.functional.interpolate(off_size[None], size=(250, 380), mode="bilinear")
    near = gap_metrics(off_size, photo, painting, encoder, size=96)
    assert near["content_err"] < 0.05
    assert near["style_gap"] == pytest.approx(from_file["style_gap"], abs=0.05)
    with pytest.raises(UserError, match="shape"):
        gap_metrics(load_image_tensor(painting).transpose(2, 3), photo, painting, encoder, size=96)


def test_folder_of_photos_matches_outputs_by_name(tmp_path, photo):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("chicago", "chicago_night", "dog"):
        (photos / f"{name}.jpg").write_bytes(photo.read_bytes())
    assert content_for(tmp_path / "chicago_night_mosaic.png", photos).name == "chicago_night.jpg"
    assert content_for(tmp_path / "chicago_mosaic.png", photos).name == "chicago.jpg"
    assert content_for(tmp_path / "x.png", photo) == photo
    with pytest.raises(UserError, match="no photo"):
        content_for(tmp_path / "tubingen.png", photos)


def test_cli_json_parses_with_a_mean(tmp_path, photo, painting):
    out = tmp_path / "out.png"
    resize_long_side(open_image(photo), 200).convert("L").save(out)  # a different image, same shape
    Image.open(photo).save(tmp_path / "same.png")
    result = run_cli(
        "evaluate", "--content", str(photo), "--style", str(painting), str(tmp_path / "same.png"), str(out),
        "--json", "--size", "96", "--metric", "gap", "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["metric"] == "gap" and report["size"] == 96
    same, other = report["results"]
    assert same["content_err"] < 1e-3 and same["style_gap"] == pytest.approx(1.0, abs=0.01)
    assert other["style_gap_layers"].keys() == same["style_gap_layers"].keys()
    assert report["mean"]["style_gap"] == pytest.approx((same["style_gap"] + other["style_gap"]) / 2)


def test_cli_table(photo, painting):
    result = run_cli(
        "evaluate", "--content", str(photo), "--style", str(painting), str(photo), "--size", "64"
    )
    assert result.returncode == 0, result.stderr
    assert "relu5_1" in result.stdout and "0.0000" in result.stdout


def test_evaluate_files_checks_before_loading(tmp_path, photo, painting):
    with pytest.raises(UserError, match="metric"):
        evaluate_files([photo], photo, painting, metric="psnr")
    with pytest.raises(UserError, match="no such file"):
        evaluate_files([tmp_path / "missing.png"], photo, painting)


def test_one_unreadable_output_among_several_is_listed_and_the_others_measured(tmp_path, photo, painting):
    (tmp_path / "broken.png").write_text("not an image")
    result = run_cli(
        "evaluate", "--content", str(photo), "--style", str(painting), str(tmp_path / "broken.png"),
        str(photo), "--json", "--size", "64", "--metric", "gap", "--device", "cpu",
    )  # fmt: skip
    assert_one_line_error(result, "1 of 2 outputs not measured")
    assert "broken.png: " in result.stderr
    report = json.loads(result.stdout)
    assert [r["output"] for r in report["results"]] == [str(photo)]
    assert report["results"][0]["content_err"] < 1e-3
    assert len(report["failed"]) == 1


def test_evaluate_refuses_an_image_as_a_video_and_a_size_too_big_to_fit(tmp_path, photo, painting):
    with pytest.raises(UserError, match=r"chicago\.jpg: not a video"):
        evaluate_video(photo, tmp_path / "clip.mp4")
    with pytest.raises(UserError, match="--size must be 32 to 2048"):
        evaluate_files([photo], photo, painting, size=100_000)


def test_cli_missing_file_is_one_line(tmp_path, photo):
    missing = tmp_path / "nope.jpg"
    assert_one_line_error(
        run_cli("evaluate", "--content", str(photo), "--style", str(missing), str(photo)), "nope.jpg"
    )
