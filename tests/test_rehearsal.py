"""The paper preset rehearsed: the projection's arithmetic, the rehearsal's plan (both
ME-GraphAU stages, random weights), the refusals before any notebook runs, and one rehearsal
end to end on synthetic frames of BP4D's size (slow)."""

from __future__ import annotations

import dataclasses
import json
import time
import types
from pathlib import Path

import pytest
import torch

from aufacs.core.errors import AufacsError
from aufacs.data.synthetic import SynthConfig, generate_synthetic
from aufacs.data.synthetic.planning import DEFECT_FIELDS
from aufacs.engine.config import TrainConfig, resolve_model_options
from aufacs.engine.train import Trainer
from aufacs.report.presets import PRESETS
from aufacs.report.rehearsal import (
    REHEARSAL_FILE,
    REHEARSAL_STEPS,
    cache_disk,
    check_training,
    project_run,
    projection_lines,
    seconds_per_step,
    steps_per_epoch,
)
from aufacs.report.study import StudyConfig, run_study, study_plan

REPO_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
RESOURCES = {
    "model": "me_graph_au",
    "stage": 2,
    "device": "cuda:0 (a GPU)",
    "batch_size": 64,
    "recipe_epochs": 20,
    "train_frames": 64 * 1000 + 63,
    "step_seconds": [9.0, 0.5, 0.7],
    "peak_memory_bytes": 3 * 2**30,
    "peak_memory": "CUDA max_memory_allocated",
}


def paper(tmp_path: Path, **changes) -> StudyConfig:
    values = {
        "name": "t",
        "size": "paper",
        "rehearse": True,
        "data": tmp_path / "data",
        "reports": tmp_path / "reports",
        "runs": tmp_path / "runs",
        "notebooks": REPO_NOTEBOOKS,
        **changes,
    }
    return StudyConfig(**values)


def trainings(config: StudyConfig) -> dict[str, dict]:
    return {s.report: s.parameters for s in study_plan(config) if s.notebook == "02_train"}


# --- the arithmetic ----------------------------------------------------------------------------


def test_the_first_step_is_left_out_as_warm_up_when_there_are_two_or_more():
    assert seconds_per_step([9.0, 1.0, 3.0]) == 2.0
    assert seconds_per_step([4.0]) == 4.0


def test_an_epoch_has_the_full_batches_of_the_folds_training_frames():
    assert steps_per_epoch(129, 64) == 2
    assert steps_per_epoch(63, 64) == 0


def test_a_run_is_projected_from_its_step_seconds_frames_batch_and_the_recipes_epochs():
    run = project_run("me_graph_au_stage2", RESOURCES, None)
    assert run["seconds_per_step"] == pytest.approx(0.6)
    assert run["steps_per_epoch"] == 1000
    assert run["epochs"] == 20
    assert run["hours_per_epoch"] == pytest.approx(0.6 * 1000 / 3600)
    assert run["total_hours"] == pytest.approx(20 * 0.6 * 1000 / 3600)
    assert run["peak_memory_bytes"] == 3 * 2**30


def test_the_studys_epochs_replace_the_recipes_in_the_projection():
    assert project_run("me_graph_au", RESOURCES, 5)["epochs"] == 5


def test_the_cache_disk_is_bytes_per_face_times_clean_frames():
    assert cache_disk(1000, 10, 140_000) == {
        "bytes_per_face": 100.0,
        "frames": 140_000,
        "bytes": 14_000_000.0,
    }


def test_the_printed_table_has_a_row_per_run_and_the_totals():
    run = project_run("me_graph_au_stage2", RESOURCES, None)
    record = {"runs": [run], "total_hours": run["total_hours"], "cache": cache_disk(10, 1, 5)}
    lines = projection_lines(record)
    assert lines[0].startswith("projection of the real run on cuda:0 (a GPU)")
    assert lines[2].split()[:5] == ["me_graph_au_stage2", "64", "0.600", "1000", "20"]
    assert lines[-2] == "training in all: 3.3 hours"


# --- the plan ----------------------------------------------------------------------------------


def test_a_rehearsal_trains_every_model_and_stage_one_epoch_of_a_few_recipe_batches(tmp_path):
    steps = trainings(paper(tmp_path))
    assert list(steps) == [
        "02_train_jaa_net",
        "02_train_eac_net",
        "02_train_me_graph_au",
        "02_train_me_graph_au_stage2",
    ]
    assert {s["EPOCHS"] for s in steps.values()} == {1}
    assert {s["MAX_STEPS_PER_EPOCH"] for s in steps.values()} == {REHEARSAL_STEPS}
    assert {s["BATCH_SIZE"] for s in steps.values()} == {None}  # the recipe's
    assert {s["IMAGE_SIZE"] for s in steps.values()} == {None}  # the model's full size


def test_the_paper_presets_second_stage_starts_from_the_first_stages_run(tmp_path):
    steps = trainings(paper(tmp_path, rehearse=False))
    first, second = steps["02_train_me_graph_au"], steps["02_train_me_graph_au_stage2"]
    assert first["MODEL_OPTIONS"]["stage"] == 1
    assert second["MODEL_OPTIONS"]["stage"] == 2
    assert second["MODEL_OPTIONS"]["stage1_weights"] == first["RUN_DIR"]
    assert second["RUN_DIR"] == str((tmp_path / "runs" / "t" / "me_graph_au_stage2").resolve())
    assert {first["EPOCHS"], second["EPOCHS"]} == {None}  # each stage's recipe


def test_the_later_notebooks_get_both_me_graph_au_runs(tmp_path):
    evaluation = study_plan(paper(tmp_path))[-4].parameters["RUN_DIRS"]
    assert [Path(run).name for run in evaluation] == [
        "jaa_net",
        "eac_net",
        "me_graph_au",
        "me_graph_au_stage2",
    ]


def test_the_smaller_presets_train_me_graph_au_once(tmp_path):
    steps = trainings(paper(tmp_path, size="smoke", rehearse=False))
    assert "02_train_me_graph_au_stage2" not in steps


def test_random_init_starts_the_imagenet_models_from_random_weights(tmp_path):
    steps = trainings(paper(tmp_path, random_init=True))
    assert steps["02_train_eac_net"]["MODEL_OPTIONS"]["pretrained"] is None
    assert steps["02_train_me_graph_au"]["MODEL_OPTIONS"]["pretrained"] is None
    assert "pretrained" not in steps["02_train_jaa_net"]["MODEL_OPTIONS"]


def test_a_run_folder_given_as_stage1_weights_stands_for_its_last_checkpoint(tmp_path):
    for epoch in (1, 2):
        (tmp_path / "checkpoints").mkdir(exist_ok=True)
        (tmp_path / "checkpoints" / f"epoch_{epoch:03d}.pt").touch()
    options = resolve_model_options({"stage": 2, "stage1_weights": str(tmp_path)})
    assert options["stage1_weights"] == str((tmp_path / "checkpoints" / "epoch_002.pt").resolve())


# --- refusals before any notebook runs ---------------------------------------------------------


def test_a_stage1_folder_without_checkpoints_is_refused_in_one_sentence(tmp_path):
    with pytest.raises(AufacsError, match="is a folder without checkpoints"):
        resolve_model_options({"stage": 2, "stage1_weights": str(tmp_path)})


def test_missing_imagenet_weights_stop_the_study_before_any_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("AUFACS_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(AufacsError, match="ImageNet weights for resnet50"):
        run_study(paper(tmp_path, models=("me_graph_au",)))
    assert not (tmp_path / "reports").exists()


def test_a_bad_data_folder_stops_the_study_before_any_notebook(tmp_path):
    with pytest.raises(AufacsError, match="data"):
        run_study(paper(tmp_path, kind="bp4d", random_init=True))
    assert not (tmp_path / "reports").exists()


def test_a_cuda_only_option_on_the_cpu_is_refused_in_one_sentence():
    with pytest.raises(AufacsError, match="amp='fp16' needs a CUDA device"):
        check_training(TrainConfig(model="jaa_net", device="cpu", amp="fp16"))


def test_running_out_of_memory_names_the_batch_size():
    def too_large(batch, epoch, iteration):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    trainer = types.SimpleNamespace(
        train_step=too_large,
        device=torch.device("cpu"),
        config=TrainConfig(model="me_graph_au", batch_size=64),
    )
    with pytest.raises(AufacsError, match="ran out of memory on cpu at batch size 64; lower"):
        Trainer.checked_step(trainer, {}, 1, 1)


def test_other_runtime_errors_of_a_step_pass_through():
    def broken(batch, epoch, iteration):
        raise RuntimeError("shapes do not match")

    trainer = types.SimpleNamespace(train_step=broken, device=torch.device("cpu"), config=None)
    with pytest.raises(RuntimeError, match="shapes do not match"):
        Trainer.checked_step(trainer, {}, 1, 1)


# --- end to end --------------------------------------------------------------------------------

#: Frames of BP4D's size (1040 x 1392), 4 subjects x 2 tasks x 4 frames: fold 2 of the BP4D
#: protocol trains on F001, F002 and M001 (24 frames, every AU present with seed 2; the
#: inverse AU weights need that) and tests on M002 (8 frames).
BP4D_SIZED = SynthConfig(
    subjects=4,
    tasks=2,
    frames_per_task=4,
    seed=2,
    frame_width=1040,
    frame_height=1392,
    **dict.fromkeys(DEFECT_FIELDS.values(), 0),
)


@pytest.mark.slow
def test_the_paper_preset_rehearses_on_bp4d_sized_frames_and_projects_the_real_run(
    tmp_path, monkeypatch, capsys
):
    # the recipes' batches (50, 64) take minutes per step on a CPU: 2 frames per step here
    plans = PRESETS["paper"].models
    small = {m: dataclasses.replace(plan, batch_size=2) for m, plan in plans.items()}
    monkeypatch.setitem(PRESETS, "paper", dataclasses.replace(PRESETS["paper"], models=small))
    generate_synthetic(tmp_path / "data", BP4D_SIZED, progress=False)
    started = time.perf_counter()
    out = run_study(paper(tmp_path, kind="bp4d", fold=2, random_init=True, device="cpu"))
    print(f"rehearsal: {time.perf_counter() - started:.0f} s")
    record = json.loads((out / REHEARSAL_FILE).read_text())
    runs = {run["run"]: run for run in record["runs"]}
    assert list(runs) == ["jaa_net", "eac_net", "me_graph_au", "me_graph_au_stage2"]
    assert [runs[name]["epochs"] for name in runs] == [12, 10, 20, 20]  # the recipes'
    assert {run["steps_per_epoch"] for run in runs.values()} == {12}
    assert all(run["seconds_per_step"] > 0 for run in runs.values())
    assert all(run["peak_memory_bytes"] > 2**20 for run in runs.values())
    assert record["cache"]["frames"] == 32
    assert record["cache"]["bytes_per_face"] > 200 * 200 * 3
    printed = capsys.readouterr().out
    assert "projection of the real run on cpu (CPU)" in printed
    assert "me_graph_au_stage2" in printed
