"""The scale tier of the 1-D and 3-D ops: production sizes from the 1-D and 3-D suites.

Each case pushes one size to what real networks use, within :data:`harness.verify.scale.MAX_CASE_MACS`:
batch 32 (WaveNet's dilated convs, C3D-like volumes), 512 channels (wav2vec 2.0's feature
encoder, C3D's last stage, 3-D U-Net's bottom up-convolution), long sequences (a TCN level of
4,096 steps) and a 112-frame clip; half with the ``exact`` (or ``ties``) fill.
"""

from __future__ import annotations

from harness.ops.cases import conv_nd as C
from harness.ops.cases import pool_nd as P


def family_cases() -> dict[str, list]:
    """Op name -> its tier cases (see :func:`harness.verify.scale.family_cases` for the 2-D ops)."""
    return {
        "conv1d": [
            C.Conv1dCase((1, 512, 99), (512, 512, 2), stride=2, fill="exact"),  # wav2vec 2.0 conv5, 512 channels
            C.Conv1dCase((32, 32, 272), (64, 32, 2), bias=True, dilation=16),  # WaveNet d16, batch 32
            C.Conv1dCase((2, 25, 4864), (25, 25, 7), dilation=128, fill="exact"),  # TCN level 7, 4,096 steps
        ],
        "conv3d": [
            C.Conv3dCase((1, 512, 2, 7, 7), (512, 512, 1, 1, 1), bias=True, fill="exact"),  # 512 channels
            C.Conv3dCase((32, 4, 4, 14, 14), (8, 4, 3, 3, 3), padding=1),  # batch 32
            C.Conv3dCase((1, 2, 112, 16, 16), (4, 2, 3, 3, 3), padding=1, fill="exact"),  # a 112-frame clip
        ],
        "conv_transpose1d": [
            C.ConvTranspose1dCase((32, 64, 64), (64, 32, 4), stride=2, padding=1),  # batch 32 up-sampling
            C.ConvTranspose1dCase((1, 512, 50), (512, 512, 2), stride=2, fill="exact"),  # 512 channels
        ],
        "conv_transpose3d": [
            C.ConvTranspose3dCase((1, 512, 2, 4, 4), (512, 128, 2, 2, 2), stride=2, fill="exact"),  # U-Net bottom
            C.ConvTranspose3dCase((32, 8, 4, 6, 6), (8, 8, 2, 2, 2), bias=True, stride=2),  # batch 32
        ],
        "conv1d_backward": [
            C.Conv1dBackwardCase((32, 32, 272), (64, 32, 2), bias=True, dilation=16),
            C.Conv1dBackwardCase((1, 512, 99), (512, 512, 2), stride=2),
        ],
        "conv3d_backward": [
            C.Conv3dBackwardCase((32, 4, 4, 14, 14), (8, 4, 3, 3, 3), bias=True, padding=1),
            C.Conv3dBackwardCase((1, 512, 2, 7, 7), (512, 512, 1, 1, 1)),
        ],
        **{f"{kind}_pool1d{suffix}": [cls((32, 64, 1000), 3, 2, 1, fill="ties" if kind == "max" else "normal"),
                                      cls((8, 512, 199), 2)]
           for kind in ("max", "avg") for suffix, cls in (("", P.CASE_CLASSES[1, kind, False]),
                                                           ("_backward", P.CASE_CLASSES[1, kind, True]))},
        **{f"{kind}_pool3d{suffix}": [cls((4, 64, 16, 28, 28), 2, fill="ties" if kind == "max" else "normal"),
                                      cls((32, 16, 4, 14, 14), 3, 2, 1), cls((2, 64, 16, 56, 56), (1, 2, 2))]
           for kind in ("max", "avg") for suffix, cls in (("", P.CASE_CLASSES[3, kind, False]),
                                                           ("_backward", P.CASE_CLASSES[3, kind, True]))},
    }
