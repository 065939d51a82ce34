"""Published weights as runs: official-layout JAA-Net and ME-GraphAU files written from the
reference modules, imported with ``aufacs import``, evaluated and used for predictions from the
command line, equal to the references; provenance; one-sentence refusals."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from train_worker import SUBJECTS, make_data, tiny_config

from aufacs.analysis.evaluate import EvaluateConfig, evaluate, load_predictions
from aufacs.analysis.folds import MEAN_OF_FOLDS, fold_table
from aufacs.cli import main
from aufacs.core.aus import BP4D_AUS, DISFA_AUS
from aufacs.core.errors import AufacsError
from aufacs.data.splits import split_subjects
from aufacs.engine.published import (
    PROVENANCE_FILE,
    PUBLISHED_LABEL,
    ImportConfig,
    import_weights,
    load_provenance,
    run_origin,
)
from aufacs.engine.published_folds import import_runs
from aufacs.engine.runs import LoadedRun
from aufacs.engine.train import train
from aufacs.models.base import AUModel, AUOutput
from aufacs.models.me_graph_au import build_me_graph_au
from aufacs.report import three_folds
from aufacs.report.three_folds import fold_predictions_of
from benchmarks.official_jaa_net import OfficialJAANet
from benchmarks.official_me_graph_au import RefMEFARG

#: The tiny JAA-Net of the engine tests: 32 px crops, channel unit 1.
CROP, UNIT = 32, 1
EPOCH = 5
KIND = "synthetic"
CPU = ["--device", "cpu", "--threads", "1", "--no-progress"]


# --- official-layout files from the reference modules -------------------------------------


def _randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics, so that every tensor's place matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if name.endswith("running_var"):
                value.copy_(0.5 + torch.rand(value.shape, generator=generator))
            elif value.is_floating_point():
                value.copy_(0.3 * torch.randn(value.shape, generator=generator))
            elif name.endswith("num_batches_tracked"):
                value.fill_(7)
    return module.eval()


def _prefixed(module: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{key}": value for key, value in module.state_dict().items()}


def official_jaa_state_dicts(reference: OfficialJAANet) -> dict[str, dict[str, torch.Tensor]]:
    """The six state dicts ``train_JAAv1.py`` saves, under the key names of the official
    ``network.py`` modules (HMRegionLearning, AlignNet, LocalAttentionRefine, LocalAUNetv1,
    HLFeatExtractor, AUNet), from the reference's modules."""
    region = {}
    for index in (0, 2):
        layer, prefix = reference.region_learning[index], f"multiscale_feat.{index}"
        region |= _prefixed(layer.conv, f"{prefix}.conv") | _prefixed(layer.norm, f"{prefix}.bn")
        for b, branch in enumerate(layer.branches, start=1):
            region |= _prefixed(branch.norms, f"{prefix}.local_conv_branch{b}.bns")
            region |= _prefixed(branch.convs, f"{prefix}.local_conv_branch{b}.convs")
    local = {}
    for k, branch in enumerate(reference.local_branches):
        local |= _prefixed(branch, f"local_aus_branch.{k}.feat_extract")
    return {
        "region_learning": region,
        "align_net": _prefixed(reference.align_feat, "align_feat.feat_extract")
        | _prefixed(reference.align_output, "align_output"),
        "local_attention_refine": _prefixed(reference.refine, "local_aus_attention"),
        "local_au_net": local,
        "global_au_feat": _prefixed(reference.global_au_feat, "feat_extract"),
        "au_net": _prefixed(reference.au_net, "au_output"),
    }


def write_official_jaa(reference: OfficialJAANet, folder: Path, epoch: int = EPOCH) -> Path:
    """``<module>_<epoch>.pth`` for the six modules, as the official snapshots are laid out."""
    folder.mkdir(parents=True, exist_ok=True)
    for module, state in official_jaa_state_dicts(reference).items():
        torch.save(state, folder / f"{module}_{epoch}.pth")
    return folder


def jaa_reference(aus: tuple[int, ...] = BP4D_AUS, seed: int = 0) -> OfficialJAANet:
    torch.manual_seed(seed)
    return _randomise(OfficialJAANet(aus, crop_size=CROP, unit_dim=UNIT), seed)


def me_reference(stage: int, seed: int = 0) -> RefMEFARG:
    torch.manual_seed(seed)
    backbone = build_me_graph_au(12, stage=stage, pretrained=None, backbone="resnet18").backbone
    return _randomise(RefMEFARG(copy.deepcopy(backbone), 12, stage), seed)


def write_official_me(reference: RefMEFARG, path: Path) -> Path:
    """A checkpoint as ME-GraphAU's ``train_stage{1,2}.py`` saves it (DataParallel keys)."""
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    torch.save({"epoch": 4, "state_dict": state, "optimizer": {}}, path)
    return path


class JAAReferenceModel(AUModel):
    """The official-layout reference behind aufacs's model interface (for ``predict``)."""

    def __init__(self, reference: OfficialJAANet, spec) -> None:
        super().__init__()
        self.reference, self.input_spec = reference, spec

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        out = self.reference(batch["image"])
        prob = out["scores"][:, 1].exp()
        return AUOutput(au_prob=prob, landmarks=out["landmarks"].unflatten(1, (-1, 2)))


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The engine tests' tiny data set (six subjects, 40 px cache, BP4D's twelve AUs)."""
    return make_data(tmp_path_factory.mktemp("published") / "data")


@pytest.fixture(scope="module")
def jaa(data: Path, tmp_path_factory) -> tuple[OfficialJAANet, Path, Path]:
    """(reference, its official files, the run ``aufacs import`` made of them)."""
    root = tmp_path_factory.mktemp("jaa")
    reference = jaa_reference()
    files = write_official_jaa(reference, root / "snapshots")
    run = root / "run"
    options = json.dumps({"crop_size": CROP})
    argv = ["import", str(files), "--data", str(data), "--kind", "synthetic", "--out", str(run)]
    assert main([*argv, "--model-options", options]) == 0
    return reference, files, run


def _test_batch(run: Path) -> dict[str, torch.Tensor]:
    test = LoadedRun.open(run, "cpu").test_set()
    return test[np.arange(len(test))]


# --- JAA-Net ----------------------------------------------------------------------------------


def test_imported_jaa_net_evaluates_to_the_reference_outputs(jaa):
    reference, _, run = jaa
    assert main(["evaluate", "--run", str(run), *CPU]) == 0
    predictions = load_predictions(run, EPOCH)
    batch = _test_batch(run)
    with torch.no_grad():
        expected = reference(batch["image"])
    np.testing.assert_allclose(predictions.prob, expected["scores"][:, 1].exp(), atol=1e-5)
    landmarks = expected["landmarks"].unflatten(1, (-1, 2)).numpy()
    np.testing.assert_allclose(predictions.landmarks, landmarks, atol=1e-4)
    summary = pd.read_csv(run / "evaluation_summary.csv")
    assert list(summary["epoch"]) == [EPOCH]


def test_imported_jaa_net_predicts_photos_as_the_reference_does(jaa, tmp_path):
    from aufacs.inference.predict import predict_files
    from aufacs.inference.predictor import load_predictor

    reference, _, run = jaa
    data = pytest.importorskip("skimage.data")
    import cv2

    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut()[20:240, 120:340], cv2.COLOR_RGB2BGR))
    out = tmp_path / "predictions.csv"
    argv = ["predict", str(photo), "--run", str(run), "--out", str(out), "--backend", "haar"]
    assert main([*argv, *CPU]) == 0
    table = pd.read_csv(out)
    predictor = load_predictor(run, device="cpu")
    wrapped = JAAReferenceModel(reference, predictor.model.input_spec)
    predictor = dataclasses.replace(predictor, model=wrapped)
    expected = predict_files(predictor, [photo], backend="haar", progress=False)
    columns = [f"AU{au}_prob" for au in BP4D_AUS]
    assert len(table) == 1 and table[columns].notna().all().all()
    assert table[columns].to_numpy().std() > 0.01
    np.testing.assert_allclose(table[columns], expected[columns], atol=1e-5)


def test_the_run_records_where_its_weights_came_from(jaa):
    _, files, run = jaa
    provenance = load_provenance(run)
    assert provenance["label"] == PUBLISHED_LABEL == run_origin(run)
    assert provenance["model"] == "jaa_net" and provenance["epoch"] == EPOCH
    assert provenance["aus"] == list(BP4D_AUS)
    recorded = {entry["name"]: entry for entry in provenance["files"]}
    assert set(recorded) == {path.name for path in files.iterdir()}
    for path in files.iterdir():
        entry = recorded[path.name]
        assert entry["bytes"] == path.stat().st_size
        assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    config = json.loads((run / "config.json").read_text())
    assert config["model_options"] == {"unit_dim": UNIT, "crop_size": CROP}


def test_a_trained_run_is_labelled_as_trained_here(tmp_path):
    assert load_provenance(tmp_path) is None and run_origin(tmp_path) == "trained here"


def test_files_named_one_by_one_import_like_their_folder(jaa, data, tmp_path):
    _, files, run = jaa
    config = ImportConfig(
        weights=tuple(sorted(files.iterdir())),
        data=data,
        kind="synthetic",
        out=tmp_path / "run",
        model_options={"crop_size": CROP},
    )
    again = import_weights(config)
    first = torch.load(run / "checkpoints" / f"epoch_{EPOCH:03d}.pt", weights_only=True)
    second = torch.load(again / "checkpoints" / f"epoch_{EPOCH:03d}.pt", weights_only=True)
    for key, value in first["model"].items():
        torch.testing.assert_close(second["model"][key], value, rtol=0, atol=0)


# --- ME-GraphAU -------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", [1, 2])
def test_imported_me_graph_au_evaluates_to_the_reference_outputs(stage, data, tmp_path):
    reference = me_reference(stage)
    weights = write_official_me(reference, tmp_path / "epoch4_model_fold1.pth")
    run = tmp_path / "run"
    argv = ["import", str(weights), "--data", str(data), "--kind", "synthetic", "--out", str(run)]
    options = ["--model-options", '{"neighbor_num": 2}'] if stage == 1 else []
    assert main([*argv, *options]) == 0
    assert main(["evaluate", "--run", str(run), *CPU]) == 0
    predictions = load_predictions(run, 4)
    with torch.no_grad():
        expected, _ = reference(_test_batch(run)["image"])
    np.testing.assert_allclose(predictions.prob, expected, atol=1e-5)
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "me_graph_au" and config["model_options"]["stage"] == stage
    assert load_provenance(run)["format"].startswith(f"an official ME-GraphAU ResNet stage-{stage}")


# --- aufacs's own weights ---------------------------------------------------------------------


def test_an_aufacs_checkpoint_imports_as_its_run(data, tmp_path):
    trained = train(tiny_config(data, tmp_path / "trained", epochs=1, max_steps_per_epoch=1))
    checkpoint = trained / "checkpoints" / "epoch_001.pt"
    run = import_weights(
        ImportConfig(weights=(checkpoint,), data=data, kind=KIND, out=tmp_path / "run")
    )
    batch = _test_batch(run)
    with torch.no_grad():
        ours = LoadedRun.open(run, "cpu").load_epoch()(batch).au_prob
        theirs = LoadedRun.open(trained, "cpu").load_epoch()(batch).au_prob
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    bare = tmp_path / "bare.pth"
    torch.save(torch.load(checkpoint, weights_only=True)["model"], bare)
    options = {"crop_size": CROP}
    config = ImportConfig(
        weights=(bare,), data=data, kind=KIND, out=tmp_path / "bare", model_options=options
    )
    assert LoadedRun.open(import_weights(config), "cpu").config.model == "jaa_net"


# --- refusals ---------------------------------------------------------------------------------


def _refused(data: Path, out: Path, *weights: Path, **changes) -> str:
    config = ImportConfig(weights=weights, data=data, kind=KIND, out=out, **changes)
    with pytest.raises(AufacsError) as error:
        import_runs(config)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_weights_for_another_au_count_are_refused(data, tmp_path):
    files = write_official_jaa(jaa_reference(DISFA_AUS), tmp_path / "disfa")
    message = _refused(data, tmp_path / "run", files, model_options={"crop_size": CROP})
    assert message.startswith(f"au_net_{EPOCH}.pth holds weights for 8 AUs")
    assert "has 12" in message and not (tmp_path / "run").exists()


def test_a_file_of_another_model_is_refused_naming_it(jaa, data, tmp_path):
    _, files, _ = jaa
    me = write_official_me(me_reference(2), tmp_path / "cur_model_fold1.pth")
    message = _refused(data, tmp_path / "run", me, model="jaa_net")
    assert message == (
        "cur_model_fold1.pth holds an official ME-GraphAU ResNet stage-2 checkpoint for 12 AUs, "
        "not jaa_net weights"
    )
    others = [p for p in files.iterdir() if not p.name.startswith("global_au_feat")]
    message = _refused(data, tmp_path / "run", *others, me)
    assert message.startswith("cur_model_fold1.pth holds an official ME-GraphAU ResNet stage-2")


def test_a_swin_checkpoint_is_refused(data, tmp_path):
    path = tmp_path / "MEFARG_swin_base_BP4D_fold1.pth"
    state = {"backbone.patch_embed.proj.weight": torch.zeros(1), "head.sc": torch.zeros(12, 4)}
    torch.save({"state_dict": state}, path)
    message = _refused(data, tmp_path / "run", path)
    assert "Swin Transformer" in message and message.startswith(path.name)


def test_misnamed_missing_and_mixed_jaa_files_are_refused(jaa, data, tmp_path):
    _, files, _ = jaa
    named = {p.name.rsplit("_", 1)[0]: p for p in files.iterdir()}
    renamed = tmp_path / f"global_au_feat_{EPOCH}.pth"
    renamed.write_bytes(named["au_net"].read_bytes())
    others = [p for m, p in named.items() if m not in ("au_net", "global_au_feat")]
    message = _refused(data, tmp_path / "run", *others, renamed)
    assert message.startswith(f"global_au_feat_{EPOCH}.pth is named as JAA-Net's global_au_feat")
    message = _refused(data, tmp_path / "run", *others, named["au_net"])
    assert "global_au_feat is missing" in message
    two = write_official_jaa(jaa_reference(), tmp_path / "two", epoch=3)
    for path in files.iterdir():
        (two / path.name).write_bytes(path.read_bytes())
    assert "choose one with --epoch" in _refused(data, tmp_path / "run", two)
    assert "found epochs [3, 5]" in _refused(data, tmp_path / "run", two, epoch=7)


def test_an_output_folder_that_is_not_empty_is_refused(jaa, data):
    _, files, run = jaa
    message = _refused(data, run, files, model_options={"crop_size": CROP})
    assert message == f"output folder {run} is not empty; choose a new folder for the import"
    assert (run / PROVENANCE_FILE).is_file()


def test_training_into_an_imported_run_is_refused_and_changes_nothing(jaa, data):
    _, _, run = jaa
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    config = tiny_config(data, run, model_options={"crop_size": CROP, "unit_dim": UNIT})
    with pytest.raises(AufacsError, match="holds published weights imported with `aufacs import`"):
        train(config)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


# --- three folds at once ----------------------------------------------------------------------

#: The names of ME-GraphAU's released ResNet-50 BP4D checkpoints, one per fold.
ME_RELEASED = "MEFARG_resnet50_BP4D_fold{}.pth"


@pytest.fixture(scope="module")
def me_folds(data: Path, tmp_path_factory) -> tuple[dict[int, RefMEFARG], Path, str]:
    """Three ME-GraphAU stage-2 references (one per fold), written as the released
    ``MEFARG_resnet50_BP4D_fold{k}.pth`` and imported with one ``aufacs import --folds auto``
    (given out of order): (references by fold, the runs' folder, what the command printed)."""
    root = tmp_path_factory.mktemp("me_folds")
    references = {k: me_reference(2, seed=k) for k in (1, 2, 3)}
    files = [write_official_me(references[k], root / ME_RELEASED.format(k)) for k in (3, 1, 2)]
    out = root / "published_me_graph_au"
    argv = ["import", *map(str, files), "--folds", "auto", "--data", str(data), "--kind", KIND]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main([*argv, "--out", str(out)]) == 0
    return references, out, printed.getvalue()


def _f1(prob: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-AU F1 at 0.5 over the known labels, written out here for the check."""
    known = ~np.isnan(target)
    hit, truth = (prob >= 0.5) & known, (target == 1) & known
    tp = (hit & truth).sum(axis=0)
    return 2 * tp / np.maximum(hit.sum(axis=0) + truth.sum(axis=0), 1)


def _three_fold_rows(label: str, runs: list[Path]) -> tuple[dict, pd.DataFrame]:
    """Evaluate the fold runs and tabulate them as the study's comparison does; checks each
    fold's row against F1 computed here from that run's predictions, and the mean row.
    Returns the predictions by fold and the model's rows."""
    for run in runs:
        evaluate(EvaluateConfig(run=run, device="cpu", threads=1, progress=False))
    predictions = fold_predictions_of({label: runs})[label]
    table = fold_table({label: predictions}).loc[label]
    rows = [f"fold {k}" for k in (1, 2, 3)]
    assert list(table.index[:4]) == [*rows, MEAN_OF_FOLDS]
    for k, fold in predictions.items():
        assert set(fold.subject) == set(split_subjects(SUBJECTS, k).test)
        f1 = _f1(fold.prob, fold.target)
        np.testing.assert_allclose(table.loc[f"fold {k}"].to_numpy(), [*f1, f1.mean()])
    np.testing.assert_allclose(table.loc[MEAN_OF_FOLDS], table.loc[rows].mean())
    return predictions, table.loc[rows]


def test_three_folds_import_as_three_runs_on_their_test_parts(me_folds):
    references, out, printed = me_folds
    runs = [out / f"fold{k}" for k in (1, 2, 3)]
    assert printed.splitlines() == [f"run folder: {run}" for run in runs]
    for k, run in enumerate(runs, start=1):
        assert LoadedRun.open(run, "cpu").config.fold == k
        assert load_provenance(run)["files"][0]["name"] == ME_RELEASED.format(k)
    predictions, _ = _three_fold_rows("me_graph_au (published)", runs)
    for k, fold in predictions.items():
        with torch.no_grad():
            expected, _ = references[k](_test_batch(runs[k - 1])["image"])
        np.testing.assert_allclose(fold.prob, expected, atol=1e-5)


def test_jaa_net_snapshot_folders_import_as_the_folds_their_names_imply(data, tmp_path):
    folders = {
        fold: write_official_jaa(jaa_reference(seed=fold), tmp_path / f"JAAv1_combine_{parts}")
        for parts, fold in (("2_3", 3), ("1_2", 1), ("1_3", 2))
    }
    config = ImportConfig(
        weights=tuple(folders.values()),
        folds=("auto",),
        data=data,
        kind=KIND,
        out=tmp_path / "runs",
        model_options={"crop_size": CROP},
    )
    runs = import_runs(config)
    assert runs == [tmp_path / "runs" / f"fold{k}" for k in (1, 2, 3)]
    for fold, run in zip((1, 2, 3), runs, strict=True):
        recorded = load_provenance(run)["files"][0]["path"]
        assert Path(recorded).parent == folders[fold].resolve()
        assert LoadedRun.open(run, "cpu").config.fold == fold
    predictions, rows = _three_fold_rows("jaa_net (published)", runs)
    assert rows.to_numpy().max() > 0 and rows["Avg"].nunique() == 3
    label = "jaa_net (published)"
    table = three_folds.three_fold_table({label: predictions}, tmp_path / "table")
    [note] = three_folds.published_weight_notes({label: runs}, table)
    mean = table.loc[(label, MEAN_OF_FOLDS), "Avg"]
    assert note.startswith(
        f"{label}: the published weights evaluated here score mean F1 {mean:.3f}"
    )
    assert "against 0.600 published" in note and "fold spread" in note


def test_a_file_named_for_another_fold_is_refused_in_one_sentence(me_folds, data, tmp_path):
    released = tmp_path / ME_RELEASED.format(1)
    write_official_me(me_reference(2), released)
    argv = ["import", str(released), "--data", str(data), "--kind", KIND, "--fold", "2"]
    with contextlib.redirect_stderr(io.StringIO()) as stderr:
        assert main([*argv, "--out", str(tmp_path / "run")]) != 0
    assert stderr.getvalue() == (
        f"aufacs: error: {released.name} is named for fold 1 (ME-GraphAU's released "
        "files carry their fold), so its weights trained on parts 1 and 2, and fold 2 would "
        "test them on part 2, frames they learnt from; import it as fold 1\n"
    )
    assert not (tmp_path / "run").exists()
    stage2 = tmp_path / "epoch20_model_fold2.pth"  # train_stage2.py's name for --fold 1
    released.rename(stage2)
    message = _refused(data, tmp_path / "run", stage2, fold=3)
    assert message.startswith(f"{stage2.name} is named for fold 1 (ME-GraphAU's train_stage2.py")
    run = import_weights(ImportConfig(weights=(stage2,), data=data, kind=KIND, out=tmp_path / "r"))
    assert LoadedRun.open(run, "cpu").config.fold == 1
    _, out, _ = me_folds
    given = (stage2, out.parent / ME_RELEASED.format(2))
    message = _refused(data, tmp_path / "runs", *given, folds=("2", "1"))
    assert message.startswith(f"{stage2.name} is named for fold 1") and "fold 2 would" in message
    plain = tmp_path / "model.pth"
    plain.write_bytes(stage2.read_bytes())
    message = _refused(data, tmp_path / "runs", stage2, plain, folds=("auto",))
    assert message.startswith(f"{plain} names no fold")
    assert not (tmp_path / "runs").exists()
