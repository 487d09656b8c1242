r"""The square root of a positive semi-definite matrix, for numpy arrays and torch tensors alike."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

__all__ = ["psd_sqrt"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def psd_sqrt(C: Array, *, symmetric: bool = False) -> Array:
    r"""A square root of a symmetric PSD matrix, or of a stack of them, by eigendecomposition.

    With :math:`C = V \Lambda V'` (of the symmetric part :math:`(C + C')/2`, so a covariance rounded out of
    symmetry still has real eigenvalues; tiny negative eigenvalues from rounding are taken as zero):

    .. math::

        L = V \Lambda_+^{1/2}, \quad L L' = C \qquad \text{(the default: a factor, to sample } x = \mu + L z),

        S = V \Lambda_+^{1/2} V', \quad S = S', \ S S = C \qquad (\texttt{symmetric=True}).

    Both hold for singular ``C`` (a Cholesky factor does not).

    Parameters
    ----------
    C : numpy.ndarray or torch.Tensor
        ``(..., n, n)``; the result has the same type, shape, dtype and device.
    symmetric : bool
        Return the symmetric root :math:`S` (what the Bures distance between covariances reads) instead of
        the factor :math:`L`.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[4.0, 2.0], [2.0, 1.0]])  # rank one
    >>> L = psd_sqrt(C)
    >>> bool(np.allclose(L @ L.T, C)), bool(np.allclose(psd_sqrt(C, symmetric=True), C / np.sqrt(5)))
    (True, True)
    """
    sym = 0.5 * (C + C.swapaxes(-1, -2))
    if isinstance(C, torch.Tensor):
        vals, vecs = torch.linalg.eigh(sym)
        root = vecs * vals.clamp_min(0).sqrt()[..., None, :]
    else:
        vals, vecs = np.linalg.eigh(sym)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))[..., None, :]
    return root @ vecs.swapaxes(-1, -2) if symmetric else root
