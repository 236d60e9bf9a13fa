"""``dcgan-lab train --loss {gan,wgan-gp,hinge} --update {alternating,simultaneous}``: the flags
reach the run (config.json records them, the critic's metrics show), ``--resume`` keeps them, bad
values are one line naming the option, and a run without them is the run it always was."""

from __future__ import annotations

import json

import pytest

from dcgan_lab.run import config


@pytest.mark.parametrize("args, message", [
    (["--loss", "wgan"], "argument --loss: invalid choice: 'wgan' (choose from 'gan', "
                         "'wgan-gp', 'hinge')"),
    (["--update", "both"], "argument --update: invalid choice: 'both' (choose from "
                           "'alternating', 'simultaneous')"),
    (["--update", "simultaneous", "--d-steps", "5"], "argument --d-steps: d_steps=5"),
    (["--loss", "hinge", "--g-loss", "minimax"], "argument --g-loss: g_loss='minimax'"),
])
def test_bad_values_are_one_line_naming_the_option(cli, args, message):
    r = cli("train", "torch-mnist", *args)
    assert r.returncode == 2
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1


def test_flags_are_recorded_and_resume_keeps_them(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("train", "torch-mnist", "--out", out, "--steps", "2", "--batch-size", "8",
            "--loss", "wgan-gp", "--update", "simultaneous", "--no-progress")
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "config.json").read_text())
    assert (saved["objective"], saved["update"]) == ("wgan-gp", "simultaneous")
    r = cli("train", "torch-mnist", "--out", out, "--resume", "--steps", "3", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "resuming torch-mnist from step 2 of 3" in r.stdout
    saved = json.loads((out / "config.json").read_text())
    assert (saved["objective"], saved["update"]) == ("wgan-gp", "simultaneous")
    rows = (out / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    last = dict(zip(header, rows[-1].split(","), strict=True))
    assert last["step"] == "3"
    # a critic's loss_d holds the penalty besides the two terms: not their sum
    assert abs(float(last["loss_d"]) - float(last["loss_d_real"])
               - float(last["loss_d_fake"])) > 1e-6
    # another objective on resume is another run: refused
    r = cli("train", "torch-mnist", "--out", out, "--resume", "--steps", "4", "--loss", "hinge",
            "--no-progress")
    assert r.returncode == 1 and "objective" in r.stderr, r.stderr


def test_keras_flags_are_recorded(cli, tmp_path):
    out = tmp_path / "run"
    r = cli("train", "dcgan64", "--framework", "keras", "--out", out, "--steps", "1",
            "--batch-size", "4", "--loss", "hinge", "--update", "simultaneous", "--no-progress",
            "--data", "clothing64")
    if r.returncode != 0 and "clothing64" in r.stderr and "not found" in r.stderr.lower():
        pytest.skip("clothing64 is not installed")
    assert r.returncode == 0, r.stderr
    saved = json.loads((out / "config.json").read_text())
    assert (saved["objective"], saved["update"]) == ("hinge", "simultaneous")


def test_defaults_and_an_old_config_without_the_fields():
    cfg = config.resolve("torch-mnist", "torch")
    assert (cfg.objective, cfg.update) == ("gan", "alternating")
    # a default run's config.json is what it was before these options (the golden run folders
    # hold it byte for byte), and it reads back as the same Config
    assert not {"objective", "update"} & set(cfg.to_dict())
    assert config.Config.from_dict(cfg.to_dict()) == cfg
    hinge = config.resolve("torch-mnist", "torch", config.TrainOptions(objective="hinge"))
    assert hinge.to_dict()["objective"] == "hinge" and "update" not in hinge.to_dict()
    assert config.Config.from_dict(hinge.to_dict()) == hinge
