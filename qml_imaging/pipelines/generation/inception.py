"""FID and KID in Inception features (torchmetrics), for data sets where ImageNet features mean something.

torchmetrics computes them with torch-fidelity's FID Inception network, whose weights
(``weights-inception-2015-12-05-6726825d.pth``) are downloaded on first use. When the package or the
weights are missing, :func:`inception_fid_kid` stops with one line naming what is missing and how to get it.
"""

from __future__ import annotations

import torch

WEIGHTS = "weights-inception-2015-12-05-6726825d.pth (github.com/toshas/torch-fidelity releases)"


@torch.no_grad()
def inception_fid_kid(real: torch.Tensor, generated: torch.Tensor, kid_subset_size: int = 100,
                      kid_subsets: int = 50, batch_size: int = 500) -> dict[str, float]:
    """FID (Heusel et al. 2017) and KID (Binkowski et al. 2018) between ``(N, C, H, W)`` image sets in
    [-1, 1] in the 2048-d Inception pool features (grey images repeated to 3 channels).

    Raises RuntimeError naming the missing package or weights.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        subset = min(kid_subset_size, len(real), len(generated))
        fid = FrechetInceptionDistance(feature=2048, normalize=True)
        kid = KernelInceptionDistance(feature=2048, subset_size=subset, subsets=kid_subsets, normalize=True)
    except ModuleNotFoundError as error:
        raise RuntimeError(f"Inception-feature FID needs the torch-fidelity package ({error}); install it with "
                           "`pip install torch-fidelity`") from error
    except (OSError, RuntimeError) as error:
        raise RuntimeError(f"Inception-feature FID needs the Inception weights {WEIGHTS}, which could not be "
                           f"downloaded: {error}") from error
    device = real.device if real.is_cuda else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fid, kid = fid.to(device), kid.to(device)
    for images, is_real in ((real, True), (generated, False)):
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size].to(device).clamp(-1, 1).add(1).div(2)
            chunk = chunk.repeat(1, 3, 1, 1) if chunk.shape[1] == 1 else chunk
            fid.update(chunk, real=is_real)
            kid.update(chunk, real=is_real)
    kid_mean, kid_std = kid.compute()
    return {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std)}
