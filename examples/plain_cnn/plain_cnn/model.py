"""A plain CNN as an aufacs plug-in model: the worked example of aufacs's docs/your_model.md.

Four blocks of 3 x 3 convolution, batch norm and ReLU, each but the last halving the map,
then global average pooling and one linear layer: one log-odds per AU. Its loss is aufacs's
weighted binary cross-entropy on those log-odds, with unknown labels masked out.
"""

from __future__ import annotations

import torch
from torch import nn

from aufacs.models import AUModel, AUOutput, InputSpec
from aufacs.models.base import IMAGENET_NORMALISATION
from aufacs.models.losses import au_softmax_loss


class PlainCNN(AUModel):
    """``forward(batch)`` takes ``batch["image"]`` (B, 3, S, S), normalised as ``input_spec``
    says, and returns ``au_prob`` and ``au_logits`` (B, N)."""

    def __init__(self, num_aus: int, image_size: int, width: int) -> None:
        super().__init__()
        mean, std = IMAGENET_NORMALISATION
        # the aligned face is resized to 8/7 of the input side, then cropped to it
        resize = image_size * 8 // 7
        self.input_spec = InputSpec(crop_size=image_size, mean=mean, std=std, resize_to=resize)
        channels = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels, channels[1:], strict=False):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)]
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers[:-1])  # no pooling after the last block
        self.head = nn.Linear(channels[-1], num_aus)

    def forward(self, batch: dict[str, torch.Tensor]) -> AUOutput:
        maps = self.features(batch["image"])  # (B, 8 * width, S / 8, S / 8)
        logits = self.head(maps.mean(dim=(2, 3)))  # (B, N)
        return AUOutput(au_prob=torch.sigmoid(logits), au_logits=logits)

    def loss(
        self, output: AUOutput, batch: dict[str, torch.Tensor], au_weights: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted binary cross-entropy over the known labels of ``batch["au"]`` (B, N)."""
        total = au_softmax_loss(output.au_logits, batch["au"], au_weights)
        return total, {"au": total.detach()}


def build(num_aus: int = 12, image_size: int = 112, width: int = 16) -> PlainCNN:
    """A :class:`PlainCNN` for ``num_aus`` AUs on faces of ``image_size`` pixels, with
    ``width`` channels in its first block (doubling in each of the next three)."""
    return PlainCNN(num_aus, image_size, width)


#: How aufacs trains it where a study or ``aufacs train`` leaves a setting unset; fields of
#: aufacs.engine.recipes.Recipe, those left out from aufacs's default recipe for plug-ins.
build.recipe = {"optimizer": "adamw", "lr": 2e-3, "batch_size": 32, "epochs": 8}
