"""A model that travels (issue 28): run folders that predict without their data, model files
of ``aufacs export`` and ``predict --model``, OpenFace's CSV columns, and folders of files
predicted into one resumable folder of results, with a tiny trained JAA-Net."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO_ROOT
from train_worker import make_data, tiny_config

from aufacs.core.aus import BP4D
from aufacs.core.errors import AufacsError
from aufacs.engine.model_spec import MODEL_FILE
from aufacs.engine.published import ImportConfig, import_weights
from aufacs.engine.train import train
from aufacs.inference import batch, predict
from aufacs.inference.export import ExportConfig, export_model, load_model_file
from aufacs.inference.predictor import load_predictor

#: OpenFace 2's first columns for a sequence, then its occurrence columns of BP4D's AUs.
OPENFACE_HEADER = ["frame", "face_id", "timestamp", "confidence", "success"] + [
    f"AU{au:02d}_c" for au in BP4D.aus
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny JAA-Net run beside its data folder (``<root>/run``, ``<root>/data``)."""
    root = tmp_path_factory.mktemp("export")
    return train(tiny_config(make_data(root / "data"), root / "run"))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with two 3-frame videos of the astronaut's face and one photo of it."""
    head = np.ascontiguousarray(pytest.importorskip("skimage.data").astronaut()[20:240, 120:340])
    folder = tmp_path_factory.mktemp("media")
    for name in ("a.avi", "b.avi"):
        fourcc = cv2.VideoWriter_fourcc(*"MJPG")
        writer = cv2.VideoWriter(str(folder / name), fourcc, 10.0, (260, 240))
        for k in range(3):
            frame = np.full((240, 260, 3), 128, np.uint8)
            frame[10:230, 10 + 4 * k : 230 + 4 * k] = head
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        writer.release()
    cv2.imwrite(str(folder / "face.jpg"), cv2.cvtColor(head, cv2.COLOR_RGB2BGR))
    return folder


def _aufacs(*arguments: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "aufacs.cli", *map(str, arguments)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True)


def _predict_config(source: Path, paths: tuple[Path, ...], **changes) -> predict.PredictConfig:
    values = dict(paths=paths, backend="haar", device="cpu", threads=1, progress=False, out=None)
    return predict.PredictConfig(**{"run": source, **values, **changes})


# --- a run folder that travels ----------------------------------------------------------------


def test_a_run_copied_without_its_data_predicts_from_the_command_line(
    trained: Path, media: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained.parent, tmp_path / "copy")
    shutil.rmtree(tmp_path / "copy" / "data")
    out = tmp_path / "p.csv"
    flags = ["--device", "cpu", "--threads", "1", "--no-progress", "--backend", "haar"]
    result = _aufacs(
        "predict", "--run", "copy/run", media / "a.avi", "--out", out, *flags, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(out)) == 3 and "3 rows to" in result.stdout


def test_an_old_run_without_model_json_falls_back_to_its_cache_or_says_what_is_missing(
    trained: Path, tmp_path: Path
) -> None:
    old = shutil.copytree(trained, tmp_path / "old")
    (old / MODEL_FILE).unlink()
    assert load_predictor(old, device="cpu").aus == BP4D.aus
    config = old / "config.json"
    data = str(trained.parent / "data")
    config.write_text(config.read_text().replace(data, str(tmp_path / "gone")))
    with pytest.raises(AufacsError, match=r"has no model\.json .* is not there either") as error:
        load_predictor(old, device="cpu")
    assert "\n" not in str(error.value) and "aufacs export --run" in str(error.value)


def test_a_damaged_model_json_is_refused_in_one_sentence(trained: Path, tmp_path: Path) -> None:
    run = shutil.copytree(trained, tmp_path / "run")
    (run / MODEL_FILE).write_text('{"model": "jaa_net", "aus": ')
    with pytest.raises(AufacsError, match=r"cannot read .*model\.json"):
        load_predictor(run, device="cpu")
    (run / MODEL_FILE).write_text('{"model": "jaa_net", "aus": "1 2"}')
    with pytest.raises(AufacsError, match=r"lacks the model field 'options'"):
        load_predictor(run, device="cpu")


# --- model files ------------------------------------------------------------------------------


def test_predict_with_an_exported_model_file_gives_the_runs_results(
    trained: Path, media: Path, tmp_path: Path
) -> None:
    """(tests/test_documented_commands.py runs ``aufacs export`` and ``predict --model``
    from the command line, as docs/own_photos.md shows them.)"""
    path = export_model(ExportConfig(run=trained, out=tmp_path / "model.aufacs"))
    photo = (media / "face.jpg",)
    from_file = predict.predict_paths(_predict_config(trained, photo, model=path))
    from_run = predict.predict_paths(_predict_config(trained, photo))
    probs = predict.prob_columns(BP4D.aus)
    np.testing.assert_allclose(from_file[probs].to_numpy(), from_run[probs].to_numpy(), atol=1e-6)


def test_a_model_file_loads_with_weights_only_and_holds_what_prediction_needs(
    trained: Path, tmp_path: Path
) -> None:
    path = export_model(ExportConfig(run=trained, epoch=1, out=tmp_path / "m.aufacs"))
    content = torch.load(path, weights_only=True)
    spec, provenance = content["spec"], content["provenance"]
    assert (content["format"], content["version"]) == ("aufacs model", 1)
    assert (spec["model"], spec["aus"], spec["size"], spec["box_enlarge"]) == (
        "jaa_net",
        list(BP4D.aus),
        40,
        2.9,
    )
    assert spec["input_spec"]["crop_size"] == 32 and spec["options"]["unit_dim"] == 1
    assert (provenance["origin"], provenance["epoch"], provenance["fold"]) == ("trained here", 1, 1)
    model, _, _ = load_model_file(path)
    assert set(model.state_dict()) == set(content["state_dict"])


def test_imported_weights_export_the_same_way(trained: Path, tmp_path: Path) -> None:
    checkpoint = trained / "checkpoints" / "epoch_002.pt"
    data = trained.parent / "data"
    config = ImportConfig(
        weights=(checkpoint,), data=data, kind="synthetic", out=tmp_path / "imported"
    )
    path = export_model(ExportConfig(run=import_weights(config), out=tmp_path / "m.aufacs"))
    _, spec, provenance = load_model_file(path)
    assert spec.aus == BP4D.aus and provenance["origin"] == "published weights"
    assert provenance["published"]["files"][0]["name"] == "epoch_002.pt"


def test_files_that_are_not_model_files_are_refused_in_one_sentence(
    trained: Path, tmp_path: Path
) -> None:
    checkpoint = trained / "checkpoints" / "epoch_001.pt"
    with pytest.raises(AufacsError, match="is not an aufacs model file"):
        load_predictor(checkpoint, device="cpu")
    with pytest.raises(AufacsError, match="does not exist"):
        load_predictor(tmp_path / "missing.aufacs", device="cpu")
    (tmp_path / "text.aufacs").write_text("not a model")
    with pytest.raises(AufacsError, match=r"^text\.aufacs [^\n]+$"):
        load_predictor(tmp_path / "text.aufacs", device="cpu")


# --- OpenFace's CSV ---------------------------------------------------------------------------


def test_the_openface_csv_has_openfaces_columns_and_one_based_frames(
    trained: Path, media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "a.csv"
    predict.predict_paths(_predict_config(trained, (media / "a.avi",), out=out, format="openface"))
    assert out.read_text().splitlines()[0] == ", ".join(OPENFACE_HEADER)
    table = pd.read_csv(out, skipinitialspace=True)
    assert list(table.columns) == OPENFACE_HEADER
    assert table["frame"].tolist() == [1, 2, 3] and table["success"].tolist() == [1, 1, 1]
    np.testing.assert_allclose(table["timestamp"], [0.0, 0.1, 0.2])
    as_py_feat_reads_it = pd.read_csv(out, sep=",")
    assert list(as_py_feat_reads_it.columns.str.strip(" ")) == OPENFACE_HEADER
    assert set(np.unique(table[OPENFACE_HEADER[5:]])) <= {0, 1}


def test_a_frame_without_a_face_is_an_openface_failure(trained: Path, tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((64, 64, 3), 128, np.uint8))
    out = tmp_path / "grey.csv"
    predict.predict_paths(_predict_config(trained, (grey,), out=out, format="openface"))
    row = pd.read_csv(out, skipinitialspace=True).iloc[0]
    assert (row["frame"], row["success"], row["confidence"]) == (1, 0, 0.0)


def test_several_files_into_one_openface_csv_are_refused(trained: Path, media: Path) -> None:
    config = _predict_config(trained, (media,), out=Path("x.csv"), format="openface")
    with pytest.raises(AufacsError, match="--out-dir"):
        predict.predict_paths(config)


# --- many files, resumable --------------------------------------------------------------------


def test_a_folder_gives_one_csv_per_file_and_a_second_run_skips_them(
    trained: Path, media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _predict_config(trained, (media,), out_dir=tmp_path / "results")
    first = predict.predict_paths(config)
    names = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert names == ["a.avi.csv", "aufacs_predict.json", "b.avi.csv", "face.jpg.csv"]
    assert first.attrs["skipped"] == 0 and len(first) == 7
    assert len(pd.read_csv(tmp_path / "results" / "b.avi.csv")) == 3
    monkeypatch.setattr(predict, "predict_file", _never)
    assert predict.predict_paths(config).attrs["skipped"] == 3


def test_a_killed_run_loses_only_the_file_it_was_on(
    trained: Path, media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _predict_config(trained, (media,), out_dir=tmp_path / "results")
    real, done = predict.predict_file, []

    def killed_on_the_second(predictor, path, **options):
        if done:
            raise KeyboardInterrupt
        done.append(path)
        return real(predictor, path, **options)

    monkeypatch.setattr(predict, "predict_file", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        predict.predict_paths(config)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "a.avi.csv",
        "aufacs_predict.json",
    ]
    monkeypatch.setattr(predict, "predict_file", real)
    again = predict.predict_paths(config)
    assert again.attrs["skipped"] == 1 and sorted(set(again["source"])) == [
        str(media / "b.avi"),
        str(media / "face.jpg"),
    ]


def test_a_results_folder_refuses_other_settings_and_other_contents(
    trained: Path, media: Path, tmp_path: Path
) -> None:
    batch.claim_folder(tmp_path / "results", {"model": "m", "threshold": 0.5})
    with pytest.raises(AufacsError, match=r"other settings \(threshold 0\.5 -> 0\.7\)"):
        batch.claim_folder(tmp_path / "results", {"model": "m", "threshold": 0.7})
    (tmp_path / "other" / "notes.txt").parent.mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(AufacsError, match="is not empty and holds no aufacs_predict.json"):
        batch.claim_folder(tmp_path / "other", {"model": "m"})


def test_result_names_keep_subfolders_and_extensions(tmp_path: Path) -> None:
    files = [tmp_path / "x" / "a.avi", tmp_path / "x" / "a.mp4", tmp_path / "x" / "y" / "b.jpg"]
    names = batch.result_paths(files, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in names.values()] == [
        "a.avi.csv",
        "a.mp4.csv",
        "y/b.jpg.csv",
    ]


def _never(*args, **kwargs) -> None:
    raise AssertionError("a finished file was predicted again")
