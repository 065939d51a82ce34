"""Plug-in models: the ``aufacs.models`` entry points, their refusals, their recipes, the
contract that ``check_model`` checks, and the example plug-in (examples/plain_cnn) trained,
imported and planned into a study.

Broken plug-ins are installed for one test each: a ``*.dist-info`` folder with its
``entry_points.txt`` and a module, on ``sys.path``. The example goes through every notebook in
tests/test_notebooks.py's smoke study.
"""

from __future__ import annotations

import re
import textwrap

import pytest
import torch
from train_worker import make_data, tiny_config

from aufacs.cli import main
from aufacs.core.errors import AufacsError
from aufacs.engine.published import ImportConfig, import_weights
from aufacs.engine.recipes import PLUGIN_DEFAULT, recipe_for, recipe_source
from aufacs.engine.runs import LoadedRun
from aufacs.engine.train import train
from aufacs.models import available_models, build_model, check_model
from aufacs.models.plugins import forget_plugins
from aufacs.models.registry import builtin_models, image_size_option, plugin_package
from aufacs.report.study import StudyConfig, study_plan
from aufacs.report.workbook import recipe_note, train_config

EXAMPLE = "plain_cnn"
TINY_EXAMPLE = {"image_size": 16, "width": 4}

#: Toy plug-ins: a sound one, and three that each break one rule of the contract.
TOYS = """
import torch
from torch import nn
from aufacs.models import AUModel, AUOutput, InputSpec

class Toy(AUModel):
    def __init__(self, num_aus, fault):
        super().__init__()
        self.input_spec = InputSpec(crop_size=8, mean=(0.5,) * 3, std=(0.5,) * 3)
        self.fc = nn.Linear(3, num_aus)
        self.fault = fault

    def forward(self, batch):
        logits = self.fc(batch["image"].mean(dim=(2, 3)))
        prob = logits * 10 if self.fault == "range" else torch.sigmoid(logits)
        if self.fault == "shape":
            prob = prob[:, :-1]
        return AUOutput(au_prob=prob, au_logits=logits)

    def loss(self, output, batch, au_weights):
        each = (output.au_logits - torch.nan_to_num(batch["au"])) ** 2
        total = each.mean(dim=1) if self.fault == "loss" else each.mean()
        return total, {"squares": total.detach()}

def sound(num_aus=12):
    return Toy(num_aus, None)

def out_of_range(num_aus=12):
    return Toy(num_aus, "range")

def wrong_shape(num_aus=12):
    return Toy(num_aus, "shape")

def vector_loss(num_aus=12):
    return Toy(num_aus, "loss")

def not_a_model(num_aus=12):
    return nn.Linear(3, num_aus)

vector_loss.recipe = {"lr": 0.5, "epochs": 3}
out_of_range.recipe = {"learning_rate": 0.5}
"""


@pytest.fixture
def install(tmp_path, monkeypatch):
    """``install(package, entries, module=None)``: a package that declares ``entries``
    (model name -> "module:builder") and, optionally, ships the module ``toys`` (:data:`TOYS`)
    under its own name."""

    def installer(package: str, entries: dict[str, str], module: str | None = None) -> None:
        info = tmp_path / f"{package.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
        lines = [f"{name} = {target}" for name, target in entries.items()]
        (info / "entry_points.txt").write_text("[aufacs.models]\n" + "\n".join(lines) + "\n")
        if module is not None:
            (tmp_path / f"{module}.py").write_text(textwrap.dedent(TOYS))
        forget_plugins()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield installer
    forget_plugins()


def toys(install, module: str) -> None:
    names = ("sound", "out_of_range", "wrong_shape", "vector_loss", "not_a_model")
    install("toy-models", {f"{module}_{n}": f"{module}:{n}" for n in names}, module)


# --- the entry points --------------------------------------------------------------------------


def test_the_installed_example_is_listed_after_the_built_in_models():
    assert available_models()[:3] == builtin_models() == ["eac_net", "jaa_net", "me_graph_au"]
    assert EXAMPLE in available_models()[3:]
    assert plugin_package(EXAMPLE) == "aufacs-plain-cnn" and plugin_package("jaa_net") is None


def test_a_plugin_named_like_a_built_in_model_is_refused_naming_its_package(install):
    install("clashing-models", {"jaa_net": "clashing:build"})
    with pytest.raises(AufacsError, match="package clashing-models declares a model named "):
        available_models()


def test_two_packages_declaring_one_name_are_refused_naming_both(install):
    install("first-models", {"twin": "first:build"})
    install("second-models", {"twin": "second:build"})
    with pytest.raises(AufacsError, match="first-models and second-models both declare"):
        available_models()


def test_a_plugin_is_listed_without_importing_it_and_refused_when_its_import_fails(install):
    install("missing-models", {"ghost": "no_such_module_here:build"})
    assert "ghost" in available_models()
    with pytest.raises(AufacsError) as error:
        build_model("ghost")
    assert str(error.value) == (
        "model 'ghost' of package missing-models could not be imported from "
        "no_such_module_here:build (ModuleNotFoundError: No module named 'no_such_module_here')"
    )


def test_a_builder_that_returns_no_aufacs_model_is_refused_naming_its_package(install):
    toys(install, "toys_kind")
    with pytest.raises(AufacsError, match="of package toy-models built a Linear without"):
        build_model("toys_kind_not_a_model")


# --- the contract ------------------------------------------------------------------------------


def test_check_model_says_what_the_example_provides():
    check = check_model(EXAMPLE, **TINY_EXAMPLE)
    assert check.ok and str(check).startswith("plain_cnn meets the model contract.\n")
    assert "au_logits (2, 12): 04's Grad-CAM follows these log-odds." in check.provides
    assert "no landmarks: 03 reports no NME." in check.provides


@pytest.mark.parametrize(
    ("toy", "problem"),
    [
        ("out_of_range", r"au_prob holds values from -?[\d.]+ to [\d.]+, outside \[0, 1\]; it"),
        ("wrong_shape", r"au_prob is shape \(2, 11\); it must be a tensor of shape \(2, 12\)\."),
        ("vector_loss", r"loss returned a total of shape \(2,\); it must be a scalar"),
    ],
    ids=["probabilities", "shape", "loss"],
)
def test_check_model_reports_each_broken_rule_in_one_sentence(install, toy, problem):
    toys(install, f"toys_{toy}")
    check = check_model(f"toys_{toy}_{toy}")
    assert not check.ok and len(check.problems) == 1
    (sentence,) = check.problems
    assert "\n" not in sentence and sentence.endswith(".")
    assert re.match(problem, sentence), sentence
    assert check_model(f"toys_{toy}_sound").ok


def test_training_refuses_a_broken_plugin_before_any_work(install, tmp_path, capsys):
    toys(install, "toys_train")
    status = main(["train", "--model", "toys_train_wrong_shape", "--data", str(tmp_path)])
    error = capsys.readouterr().err
    assert status == 2 and "package toy-models does not meet the model contract" in error
    assert "au_prob is shape (2, 11)" in error and "Traceback" not in error


# --- recipes -----------------------------------------------------------------------------------


def test_a_declared_recipe_takes_its_missing_fields_from_the_plugin_default(install):
    toys(install, "toys_recipe")
    recipe = recipe_for("toys_recipe_vector_loss")
    assert (recipe.lr, recipe.epochs, recipe.optimizer) == (0.5, 3, PLUGIN_DEFAULT.optimizer)
    assert recipe_for("toys_recipe_sound") == PLUGIN_DEFAULT
    assert "default recipe for plug-in models" in recipe_source("toys_recipe_sound")
    with pytest.raises(AufacsError, match=r"\(package toy-models\) has unknown field"):
        recipe_for("toys_recipe_out_of_range")


def test_the_training_report_says_which_recipe_the_model_trains_with(tmp_path):
    config = train_config(EXAMPLE, data=tmp_path, image_size=32)
    assert config.model_options == {"image_size": 32} and image_size_option("jaa_net")
    assert recipe_note(config) == (
        "plain_cnn trains with the recipe that package aufacs-plain-cnn declares wherever this "
        "notebook's parameters leave a setting at None."
    )
    assert recipe_for(EXAMPLE).lr == 2e-3


# --- the example in training, import and a study ------------------------------------------------


def test_the_example_trains_and_its_saved_state_dict_imports_as_a_run(tmp_path):
    data = make_data(tmp_path / "data")
    config = tiny_config(data, tmp_path / "trained", model=EXAMPLE, model_options=TINY_EXAMPLE)
    trained = train(config)
    bare = tmp_path / "plain_cnn.pt"
    torch.save(LoadedRun.open(trained, "cpu").load_epoch().state_dict(), bare)
    imported = import_weights(
        ImportConfig(
            weights=(bare,),
            model=EXAMPLE,
            data=data,
            kind="synthetic",
            out=tmp_path / "imported",
            model_options=TINY_EXAMPLE,
        )
    )
    run = LoadedRun.open(imported, "cpu")
    batch = {"image": torch.rand(2, 3, 16, 16)}
    with torch.no_grad():
        ours = run.load_epoch()(batch).au_prob
        theirs = LoadedRun.open(trained, "cpu").load_epoch()(batch).au_prob
    assert run.config.model == EXAMPLE and torch.equal(ours, theirs)


def test_a_study_trains_the_example_with_the_plugin_plan_and_shows_it_everywhere(tmp_path):
    config = StudyConfig(size="smoke", models=("jaa_net", EXAMPLE), runs=tmp_path / "runs")
    steps = {step.report: step.parameters for step in study_plan(config)}
    training = steps["02_train_plain_cnn"]
    assert (training["EPOCHS"], training["BATCH_SIZE"], training["IMAGE_SIZE"]) == (2, 4, 32)
    example_run = str((tmp_path / "runs" / "default" / EXAMPLE).resolve())
    for report in ("03_evaluate_epochs", "04_heatmaps", "05_compare_models"):
        assert example_run in steps[report]["RUN_DIRS"]
    assert steps["04_heatmaps"]["GRADCAM_FOR"] == ["jaa_net", EXAMPLE]
    assert steps["06_own_photos"]["RUN"] == example_run
