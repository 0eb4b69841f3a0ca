"""Each setting is declared once, on its config: the CLI's options are those fields, with their
defaults and help, and the command line builds exactly the config a Python caller would."""

import dataclasses
import subprocess
import sys

import pytest
import typer
from conftest import ASSETS
from typer.testing import CliRunner

import fast_nst.train
from fast_nst.cli import app
from fast_nst.config import OptimizeConfig, TrainConfig


def _options(command: str) -> dict[str, object]:
    click_command = typer.main.get_command(app).commands[command]
    return {p.name: p for p in click_command.params}


@pytest.mark.parametrize(("command", "config"), [("train", TrainConfig), ("optimize", OptimizeConfig)])
def test_every_setting_is_an_option_with_its_default_and_help(command, config):
    options = _options(command)
    settings = [f for f in dataclasses.fields(config) if "help" in f.metadata]
    assert len(settings) > 10
    for f in settings:
        option = options[f.name]
        assert option.help == f.metadata["help"], f.name
        if f.default is not dataclasses.MISSING:
            assert option.default == f.default, f.name


def test_the_command_line_builds_the_config_a_python_caller_would(monkeypatch, tmp_path):
    built = []
    monkeypatch.setattr(fast_nst.train, "train", lambda cfg, resume, console, overwrite: built.append(cfg))
    style = str(ASSETS / "mosaic.jpg")
    args = ["train", "--style", style, "--data", str(tmp_path), "--steps", "7", "--no-channels-last"]
    result = CliRunner().invoke(app, [*args, "--style-loss", "gram", "-o", "x.pt", "--style-size", "0"])
    assert result.exit_code == 0, result.output
    expected = TrainConfig(
        style=style,
        data=str(tmp_path),
        steps=7,
        channels_last=False,
        style_loss="gram",
        out="x.pt",
        style_size=0,
    )
    assert built == [expected]
    assert TrainConfig(style=style, data="d").out_path.as_posix() == "models/mosaic.pt"


@pytest.mark.parametrize("script", ["train.py", "export.py"])
def test_the_root_scripts_show_their_own_usage(script):
    """`python train.py --help` said `Usage: train.py train [OPTIONS]`: a command that fails."""
    root = ASSETS.parents[1]
    result = subprocess.run(
        [sys.executable, script, "--help"], cwd=root, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"Usage: {script} [OPTIONS]" in result.stdout


def test_a_port_out_of_range_is_a_usage_error_not_a_traceback():
    result = CliRunner().invoke(app, ["web", "--port", "70000"])
    assert result.exit_code == 2  # click's usage error: the OverflowError of bind() was a traceback
    assert "Invalid value for '--port'" in result.output
