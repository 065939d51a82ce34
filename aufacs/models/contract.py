"""Whether a model meets the contract the workbook relies on, checked on a tiny batch.

:func:`check_model` builds a registered model, runs ``forward`` and ``loss`` on a random batch
of two faces shaped by its :class:`InputSpec`, back-propagates, and says in sentences what the
model provides to the notebooks (optional :class:`AUOutput` fields) and what breaks the
contract (``docs/your_model.md`` writes the contract down). :func:`refuse_broken` turns the
first problem of a plug-in into an AufacsError before it is trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aufacs.core.aus import NUM_LANDMARKS
from aufacs.core.errors import AufacsError
from aufacs.models.base import AUModel, AUOutput, InputSpec
from aufacs.models.registry import build_model, check_options, plugin_package

#: Faces in the batch that :func:`check_model` runs.
CHECK_BATCH = 2
#: The optional AUOutput fields: name, shape (B faces, N AUs, "*" any), what the notebooks do
#: with the field, and what they do without it.
OPTIONAL_FIELDS: tuple[tuple[str, tuple, str, str], ...] = (
    ("au_logits", ("B", "N"), "04's Grad-CAM follows these log-odds", "04's Grad-CAM uses au_prob"),
    ("landmarks", ("B", NUM_LANDMARKS, 2), "03 reports their NME", "03 reports no NME"),
    ("attention", ("B", "N", "*", "*"), "04 shows these maps", "04 shows its Grad-CAM only"),
    ("edge_logits", ("B", "N*N", 4), "AU-pair logits for its loss", "no AU-pair relations"),
)


@dataclass(frozen=True)
class ModelCheck:
    """What :func:`check_model` found: ``provides``, sentences on what the model offers the
    notebooks; ``problems``, sentences on what breaks the contract (empty: none)."""

    model: str
    provides: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        verdict = "meets the model contract" if self.ok else "does not meet the model contract"
        lines = [f"{self.model} {verdict}."]
        lines += [f"- {sentence}" for sentence in self.provides]
        lines += [f"- problem: {sentence}" for sentence in self.problems]
        return "\n".join(lines)


def tiny_batch(spec: InputSpec, num_aus: int) -> dict[str, torch.Tensor]:
    """A random batch of :data:`CHECK_BATCH` faces as the data set hands it to a model with
    ``spec``: ``image`` (B, 3, S, S) normalised, ``landmarks`` (B, 49, 2) pixels inside the
    middle of the crop, ``au`` (B, N) labels with one unknown (NaN), ``biocular`` (B,) pixels²."""
    generator = torch.Generator().manual_seed(0)
    size, batch = spec.crop_size, CHECK_BATCH
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)
    image = (torch.rand(batch, 3, size, size, generator=generator) - mean) / std
    landmarks = size * (0.3 + 0.4 * torch.rand(batch, NUM_LANDMARKS, 2, generator=generator))
    au = (torch.rand(batch, num_aus, generator=generator) > 0.5).float()
    au[0, 0] = math.nan
    biocular = torch.full((batch,), (0.4 * size) ** 2)
    return {"image": image, "landmarks": landmarks, "au": au, "biocular": biocular}


def check_model(name: str, num_aus: int = 12, **options) -> ModelCheck:
    """Build model ``name`` with ``options`` for ``num_aus`` AUs and check it on a tiny batch
    (module docstring). An unknown name or option raises AufacsError; everything the model
    itself gets wrong, building included, is reported in :attr:`ModelCheck.problems`."""
    check_options(name, options)
    try:
        model = build_model(name, num_aus, **options)
    except AufacsError as error:  # a builder that returns something else than an AUModel
        return ModelCheck(name, (), (f"{error}.",))
    except Exception as error:  # a plug-in's builder may fail in any way
        return ModelCheck(name, (), (f"building it failed ({_failure(error)}).",))
    problems = _spec_problems(model.input_spec)
    if problems:
        return ModelCheck(name, (), tuple(problems))
    batch = tiny_batch(model.input_spec, num_aus)
    model.train()
    try:
        output = model(batch)
    except Exception as error:  # a plug-in's forward may fail in any way
        failed = f"forward failed on a batch of {CHECK_BATCH} ({_failure(error)})."
        return ModelCheck(name, (), (failed,))
    if not isinstance(output, AUOutput):
        kind = type(output).__name__
        return ModelCheck(name, (), (f"forward returned a {kind}; it must return an AUOutput.",))
    provides, problems = _output_findings(output, CHECK_BATCH, num_aus)
    problems += _loss_problems(model, output, batch, num_aus)
    provides.append(_gradcam_sentence(model))
    return ModelCheck(name, tuple(provides), tuple(problems))


def refuse_broken(name: str, num_aus: int = 12, **options) -> None:
    """Raise AufacsError, naming the package, when plug-in ``name`` built with ``options``
    breaks the contract (its first problem); the built-in models are not checked."""
    package = plugin_package(name)
    if package is None:
        return
    check = check_model(name, num_aus, **options)
    if not check.ok:
        raise AufacsError(
            f"model {name!r} of package {package} does not meet the model contract of "
            f"docs/your_model.md: {check.problems[0].rstrip('.')}"
        )


def _failure(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _spec_problems(spec: InputSpec) -> list[str]:
    """What is wrong with an input spec: a crop that is not a positive integer, a mean or
    std that is not three numbers (std positive), a resize smaller than the crop."""
    if not isinstance(spec.crop_size, int) or spec.crop_size < 1:
        return [f"input_spec.crop_size is {spec.crop_size!r}; it must be pixels > 0."]
    problems = []
    for field_name in ("mean", "std"):
        values = getattr(spec, field_name)
        if len(values) != 3 or (field_name == "std" and min(values) <= 0):
            problems.append(
                f"input_spec.{field_name} is {values!r}; it must be three RGB values"
                + (" above 0." if field_name == "std" else ".")
            )
    if spec.resize_to is not None and spec.resize_to < spec.crop_size:
        problems.append(
            f"input_spec.resize_to {spec.resize_to} is smaller than its crop_size "
            f"{spec.crop_size}; the face is resized to resize_to pixels and then cropped."
        )
    return problems


def _shape_problem(field_name: str, value: object, expected: tuple[int | str, ...]) -> str | None:
    """A sentence when ``value`` is not a tensor of shape ``expected`` ("*": any size)."""
    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else None
    if shape is not None and len(shape) == len(expected):
        if all(e == "*" or e == s for e, s in zip(expected, shape, strict=True)):
            return None
    wanted = "(" + ", ".join(str(e) for e in expected) + ")"
    got = f"shape {shape}" if shape is not None else f"a {type(value).__name__}"
    return f"{field_name} is {got}; it must be a tensor of shape {wanted}."


def _range_problem(field_name: str, value: torch.Tensor, what: str) -> str | None:
    """A sentence when ``value`` holds values outside [0, 1] or that are not finite."""
    value = value.detach().float()
    if not torch.isfinite(value).all():
        return f"{field_name} holds NaN or infinite values; it must be {what} in [0, 1]."
    low, high = value.min().item(), value.max().item()
    if low < 0 or high > 1:
        return (
            f"{field_name} holds values from {low:.3g} to {high:.3g}, outside [0, 1]; it must "
            f"be {what} (e.g. torch.sigmoid of the logits)."
        )
    return None


def _output_findings(output: AUOutput, batch: int, num_aus: int) -> tuple[list[str], list[str]]:
    """(what the output provides, what is wrong with it), field by field of AUOutput."""
    problems = [_shape_problem("au_prob", output.au_prob, (batch, num_aus))]
    if problems[0] is None:
        problems.append(_range_problem("au_prob", output.au_prob, "probabilities"))
    provides = []
    if problems == [None, None]:
        provides.append(f"au_prob ({batch}, {num_aus}): every notebook scores these probabilities.")
    sizes = {"B": batch, "N": num_aus, "N*N": num_aus * num_aus}
    for field_name, template, present, absent in OPTIONAL_FIELDS:
        shape = tuple(sizes.get(size, size) for size in template)
        value = getattr(output, field_name)
        if value is None:
            provides.append(f"no {field_name}: {absent}.")
            continue
        problem = _shape_problem(field_name, value, shape)
        if problem is None and field_name == "attention":
            problem = _range_problem("attention", value, "maps")
        problems.append(problem)
        if problem is None:
            provides.append(f"{field_name} {tuple(value.shape)}: {present}.")
    return provides, [p for p in problems if p is not None]


def _loss_problems(
    model: AUModel, output: AUOutput, batch: dict[str, torch.Tensor], num_aus: int
) -> list[str]:
    """What is wrong with ``model.loss(output, batch, au_weights)``: a failure, a result that
    is not ``(total, parts)``, a total that is not a finite scalar, parts that are not
    scalars, or a total whose gradient reaches no parameter."""
    try:
        result = model.loss(output, batch, torch.ones(num_aus))
    except Exception as error:  # a plug-in's loss may fail in any way
        return [f"loss failed ({_failure(error)})."]
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        return ["loss must return (total, parts): a scalar tensor and a dict of named scalars."]
    total, parts = result
    if not isinstance(total, torch.Tensor) or total.dim() != 0:
        shape = tuple(total.shape) if isinstance(total, torch.Tensor) else type(total).__name__
        return [f"loss returned a total of shape {shape}; it must be a scalar (0-dim) tensor."]
    problems = []
    if not torch.isfinite(total):
        problems.append(f"loss returned a total of {total.item()}; it must be finite.")
    odd = [k for k, v in parts.items() if not isinstance(v, torch.Tensor) or v.dim() != 0]
    if odd:
        problems.append(f"loss parts {', '.join(odd)} are not scalars (0-dim tensors).")
    if not total.requires_grad:
        return [*problems, "loss returned a total without a gradient; training cannot use it."]
    try:
        total.backward()
    except Exception as error:  # a plug-in's graph may fail in any way
        return [*problems, f"back-propagating the loss failed ({_failure(error)})."]
    if all(p.grad is None or not p.grad.abs().sum() for p in model.parameters()):
        problems.append("the loss's gradient reaches none of the model's parameters.")
    return problems


def _gradcam_sentence(model: AUModel) -> str:
    if hasattr(model, "gradcam_layer"):
        return "gradcam_layer(): 04 draws Grad-CAM on the layer it returns."
    return (
        "no gradcam_layer(): 04 draws Grad-CAM on its last convolution whose map is at least "
        "7 x 7 pixels."
    )
