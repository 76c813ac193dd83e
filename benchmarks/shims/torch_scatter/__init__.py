"""The one torch-scatter function RecBole 1.2.1's KGIN imports, on torch's own index_add_.

torch-scatter ships no wheel for torch 2.13 (only sources that need a compiler and torch headers),
so run.py puts this folder on KGIN's PYTHONPATH. Semantics are torch_scatter.scatter_mean's: the
mean of ``src`` rows per ``index`` value along ``dim``, 0 where an index receives nothing.
"""

import torch

__all__ = ["scatter_mean"]


def scatter_mean(
    src: torch.Tensor, index: torch.Tensor, dim: int = 0, out=None, dim_size: int | None = None
) -> torch.Tensor:  # noqa: ANN001
    if dim != 0 or out is not None:
        raise NotImplementedError("this shim covers scatter_mean(src, index, dim=0, dim_size=...) as KGIN calls it")
    size = int(index.max()) + 1 if dim_size is None else dim_size
    total = torch.zeros((size, *src.shape[1:]), dtype=src.dtype, device=src.device).index_add_(0, index, src)
    count = torch.zeros(size, dtype=src.dtype, device=src.device).index_add_(
        0, index, torch.ones_like(index, dtype=src.dtype)
    )
    return total / count.clamp(min=1).view(-1, *([1] * (src.dim() - 1)))
