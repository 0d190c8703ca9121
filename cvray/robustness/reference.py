"""Shim that runs the ``imagecorruptions`` reference package (1.1.2) on today's stack.

Used only by the tests and ``benchmarks/bench_corruptions.py`` to compare
:mod:`cvray.robustness.corruptions` with the COCO-C reference; never by the runtime path.
Nothing in site-packages is edited. What is patched, and why:

1. **pkg_resources** -- ``imagecorruptions.corruptions`` does ``from pkg_resources import
   resource_filename`` (for the frost textures); setuptools >= 82 no longer ships
   ``pkg_resources``. If (and only if) it cannot be imported, a minimal module whose
   ``resource_filename(package, resource)`` joins the package's directory with ``resource`` is put
   in ``sys.modules`` *for the duration of the import* and removed right after it, so no other code
   ever sees a fake ``pkg_resources``.
2. **np.float_** -- ``plasma_fractal`` (fog) allocates with ``np.float_``, which numpy 2 removed.
   During a reference call (only) ``np.float_`` is set to ``np.float64``; it is deleted again
   afterwards when numpy did not have it.
3. **multichannel=** -- ``gaussian_blur`` and ``glass_blur`` call ``skimage.filters.gaussian(...,
   multichannel=True)``, removed in scikit-image 0.19+. During a call the module-level name
   ``imagecorruptions.corruptions.gaussian`` is replaced by a wrapper that maps ``multichannel=True``
   to ``channel_axis=-1`` (``False`` to ``None``); the original is restored afterwards.
4. **random_noise's RNG** -- ``impulse_noise`` calls ``skimage.util.random_noise``, which in current
   scikit-image draws from a fresh ``np.random.default_rng()`` (OS entropy) and ignores
   ``np.random.seed``. During a call the module's ``sk`` name is replaced by a proxy whose
   ``util.random_noise`` is given ``rng=np.random.randint(2**31)``, i.e. a seed drawn from the
   (seeded) global RNG, so the reference impulse noise is reproducible too. Everything else on
   the proxy is the real ``skimage``.
5. **The global RNG** -- every reference corruption draws from the global ``np.random``; each call
   seeds it with ``seed`` and restores the previous state (``np.random.get_state`` /
   ``set_state``) afterwards.

All 19 reference corruptions run through this shim (motion blur and snow use the package's own
numpy shift-and-add motion blur, not Wand/ImageMagick; frost reads the package's texture files).
The reference output is what its ``corrupt()`` returns: ``np.uint8`` of the float result
(truncation, not rounding), always HxWx3.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
import warnings
from typing import Any, Iterator

import numpy as np

_MODULE: Any = None


def _fake_pkg_resources() -> types.ModuleType:
    """A ``pkg_resources`` with only ``resource_filename`` (what imagecorruptions uses)."""
    mod = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        pkg = importlib.import_module(package)
        return os.path.normpath(os.path.join(os.path.dirname(pkg.__file__), resource))

    mod.resource_filename = resource_filename  # type: ignore[attr-defined]
    mod.__doc__ = "cvray.robustness.reference: temporary stand-in for the removed pkg_resources"
    return mod


def _pkg_resources_missing() -> bool:
    if "pkg_resources" in sys.modules:
        return False
    try:
        return importlib.util.find_spec("pkg_resources") is None
    except (ImportError, ValueError):
        return True


def load_reference() -> Any:
    """Import ``imagecorruptions.corruptions`` (once), with the temporary pkg_resources if needed.

    Raises ImportError when the package is not installed.
    """
    global _MODULE
    if _MODULE is not None:
        return _MODULE
    added = _pkg_resources_missing()
    if added:
        sys.modules["pkg_resources"] = _fake_pkg_resources()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # scipy.ndimage.interpolation
            _MODULE = importlib.import_module("imagecorruptions.corruptions")
    finally:
        if added:
            sys.modules.pop("pkg_resources", None)
    return _MODULE


def _gaussian_wrapper(gaussian: Any) -> Any:
    def wrapped(image: Any, *args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
        if multichannel is not None:
            kwargs.setdefault("channel_axis", -1 if multichannel else None)
        return gaussian(image, *args, **kwargs)
    return wrapped


class _SkimageProxy:
    """``skimage`` with ``util.random_noise`` seeded from the global numpy RNG."""

    def __init__(self, sk: Any) -> None:
        self._sk = sk
        real = sk.util.random_noise

        def random_noise(image: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("rng", int(np.random.randint(2 ** 31)))
            return real(image, *args, **kwargs)

        self.util = types.SimpleNamespace(random_noise=random_noise)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sk, name)


@contextlib.contextmanager
def _patched(mod: Any, seed: int) -> Iterator[None]:
    """Apply patches 2-5 for one call and undo them all afterwards."""
    state = np.random.get_state()
    had_float_ = "float_" in np.__dict__
    saved = {"gaussian": mod.gaussian, "sk": mod.sk}
    try:
        if not had_float_:
            np.float_ = np.float64  # type: ignore[attr-defined]
        mod.gaussian = _gaussian_wrapper(saved["gaussian"])
        mod.sk = _SkimageProxy(saved["sk"])
        np.random.seed(seed)
        yield
    finally:
        mod.gaussian, mod.sk = saved["gaussian"], saved["sk"]
        if not had_float_:
            with contextlib.suppress(AttributeError):
                del np.float_
        np.random.set_state(state)


def reference_names() -> tuple[str, ...]:
    """The 19 corruption names of the reference package, in its order."""
    return ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
            "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
            "elastic_transform", "pixelate", "jpeg_compression", "speckle_noise", "gaussian_blur",
            "spatter", "saturate")


def reference_corrupt(image: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Run the reference corruption ``name`` at ``severity`` with ``np.random`` seeded by ``seed``.

    Mirrors ``imagecorruptions.corrupt``: HxW / HxWx1 input is stacked to RGB, the function is
    called on a PIL image and the result is ``np.uint8``-truncated (HxWx3). The global numpy RNG
    state and all patched names are restored before returning.
    """
    from PIL import Image

    if name not in reference_names():
        raise ValueError(f"unknown reference corruption {name!r}; valid: {', '.join(reference_names())}")
    if severity not in (1, 2, 3, 4, 5):
        raise ValueError(f"severity must be 1..5, got {severity!r}")
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = np.stack((img,) * 3, axis=-1)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    mod = load_reference()
    fn = getattr(mod, name)
    with _patched(mod, seed), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(Image.fromarray(np.ascontiguousarray(img)), severity)
    return np.uint8(out)
