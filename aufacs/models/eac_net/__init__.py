"""The EAC-Net package (Li et al., FG 2017 / TPAMI 2018): VGG-19 with enhancing and cropping nets.

The layers follow the authors' Theano/Lasagne release (wiibrew/EAC-Net,
``BP4D_ENet_dlib_train.py`` and ``BP4D_EAC_dlib_train.py``), with the same parameter counts
(E-Net AU path 131,204,172; C-Net head 77,945,796 at 12 AUs), but the C-Net's twenty per-crop
branches run as one grouped convolution and one batched matrix product, and the crops are
gathered with one indexing operation.

Modules: :mod:`.config` (sizes, stage and attention variant), :mod:`.init` (Lasagne's
initialisation), :mod:`.enet` (the VGG-19 trunk with the enhancing layers, the E-Net AU head),
:mod:`.cnet` (the cropping net's head) and :mod:`.model` (stages, input, the model and its
builder).

Shapes at input side S (release S = 224, N AUs, widths at ``width_divisor`` 1):

=====================  ===========================================  ==================
attention map          (B, 1, 100, 100) -> (B, 1, S, S)              0..1
conv3_all              (B, 256, S/4, S/4)                            (B, 256, 56, 56)
conv4_all              (B, 512, S/8, S/8)                            (B, 512, 28, 28)
crops                  (B, 20, 512, 3, 3)
crop features          (B, 20, 150) -> (B, 3000)
AU logits / prob       (B, N)
per-AU attention       (B, N, 100, 100)
=====================  ===========================================  ==================
"""

from aufacs.models.eac_net.cnet import NUM_CROPS, CNetHead, gather_crops, local_response_norm
from aufacs.models.eac_net.config import EACNetConfig
from aufacs.models.eac_net.enet import ENetHead, ENetTrunk
from aufacs.models.eac_net.model import EACNet, build_eac_net

__all__ = [
    "NUM_CROPS",
    "CNetHead",
    "EACNet",
    "EACNetConfig",
    "ENetHead",
    "ENetTrunk",
    "build_eac_net",
    "gather_crops",
    "local_response_norm",
]
