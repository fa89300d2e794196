"""The public API: names, docstrings, keyword-only options, jit/vmap/eager agreement."""

import importlib
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sigcnn
from sigcnn import ops, spectra

MODULES = ["sigcnn", "sigcnn.ops", "sigcnn.spectra", "sigcnn.data",
           "sigcnn.data.synthetic", "sigcnn._checks"]

# Positional-by-contract second parameters (the API contract in docs/architecture.md), and
# fourier_upsample / nyquist_mask, which mirror the contracted (r2, stride) form.
POSITIONAL_BY_CONTRACT = {
    "polyphase": "stride", "fourier_shift": "shift", "aliasing_ratio": "stride",
    "shiftability_error": "stride", "fourier_upsample": "stride",
    "nyquist_mask": "stride",
}
# Option names: never positional unless listed above.
OPTION_NAMES = {"stride", "dilation", "padding", "window", "size", "cutoff", "shift",
                "axis", "method", "mode", "reduce", "remove_mean", "confidence",
                "n_resamples", "bins", "dtype", "phase", "amplitude", "fmax", "batch",
                "channels", "chunk", "chunk_size", "mask", "peak"}


def _public_functions():
    for name in sigcnn.__all__:
        obj = getattr(sigcnn, name)
        if inspect.isfunction(obj):
            yield name, obj


def test_module_all_names_exist():
    for modname in MODULES:
        mod = importlib.import_module(modname)
        assert isinstance(mod.__all__, list), modname
        assert len(set(mod.__all__)) == len(mod.__all__), modname
        for name in mod.__all__:
            assert hasattr(mod, name), f"{modname}.{name} in __all__ but missing"
        assert mod.__doc__ and mod.__doc__.strip(), f"{modname} has no docstring"


@pytest.mark.parametrize("name", sigcnn.__all__)
def test_public_name_has_docstring(name):
    obj = getattr(sigcnn, name)
    doc = inspect.getdoc(obj)
    assert doc and len(doc.strip()) > 20, f"sigcnn.{name} lacks a docstring"
    if inspect.isfunction(obj) and inspect.signature(obj).parameters:
        assert "Args:" in doc and "Returns:" in doc, f"sigcnn.{name}: Google style"


@pytest.mark.parametrize("name", [n for n, _ in _public_functions()])
def test_options_are_keyword_only(name):
    # At most the first one or two (array) inputs are positional, without
    # defaults; an option name in second place only where the contract says so.
    params = list(inspect.signature(getattr(sigcnn, name)).parameters.values())
    assert all(p.kind is not p.VAR_POSITIONAL for p in params), f"{name}: no *args"
    positional = [p for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    hint = f"prefer `{name}(x, *, option=...)`"
    assert len(positional) <= 2, f"sigcnn.{name}: options keyword-only; {hint}"
    for i, p in enumerate(positional):
        assert p.default is p.empty, (
            f"sigcnn.{name}: option `{p.name}` has a default, so it must be "
            f"keyword-only; {hint}")
        if i == 1 and p.name in OPTION_NAMES:
            assert POSITIONAL_BY_CONTRACT.get(name) == p.name, (
                f"sigcnn.{name}: option `{p.name}` must be keyword-only; {hint}")


def test_contract_signatures():
    # docs/architecture.md: these are called positionally by users and by the docs.
    def positional(fn):
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind is p.POSITIONAL_OR_KEYWORD]

    assert positional(sigcnn.conv) == ["x", "kernel"]
    assert positional(sigcnn.polyphase) == ["x", "stride"]
    assert positional(sigcnn.fourier_shift) == ["x", "shift"]
    assert positional(sigcnn.aliasing_ratio) == ["r2", "stride"]
    assert positional(sigcnn.shiftability_error) == ["r2", "stride"]
    for fn in (sigcnn.max_pool, sigcnn.avg_pool, sigcnn.blur_pool):
        assert positional(fn) == ["x"]
    defaults = {k: p.default for k, p in
                inspect.signature(sigcnn.blur_pool).parameters.items()}
    assert defaults == dict(x=inspect.Parameter.empty, size=3, stride=2, dilation=1,
                            padding="reflect")


def test_no_parameter_named_rng():
    for modname in MODULES:
        mod = importlib.import_module(modname)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if callable(obj):
                try:
                    params = inspect.signature(obj).parameters
                except (TypeError, ValueError):
                    continue
                assert "rng" not in params, (
                    f"{modname}.{name}: prefer `key` to `rng` (following JAX).")


# --------------------------------------------------------- jit / vmap / eager


def _arr(shape, seed):
    return np.random.default_rng(seed).normal(size=shape)


# name -> (function of arrays only, options bound; maker of its array arguments)
TRANSFORM_CASES = {
    "conv": (lambda x, k: ops.conv(x, k, stride=(2, 1), dilation=(1, 2),
                                   padding="circular"),
             lambda s: (_arr((1, 6, 7, 2), s), _arr((3, 2, 2, 3), s + 100))),
    "max_pool": (lambda x: ops.max_pool(x, window=(2, 3), stride=2,
                                        padding="reflect"),
                 lambda s: (_arr((2, 6, 7, 2), s),)),
    "avg_pool": (lambda x: ops.avg_pool(x, window=3, stride=(1, 2), dilation=2,
                                        padding="zero"),
                 lambda s: (_arr((1, 6, 7, 2), s),)),
    "blur_pool": (lambda x: ops.blur_pool(x, size=4, stride=2),
                  lambda s: (_arr((1, 7, 6, 3), s),)),
    "polyphase": (lambda x: ops.polyphase(x, (2, 4)),
                  lambda s: (_arr((1, 6, 8, 2), s),)),
    "unpolyphase": (ops.unpolyphase, lambda s: (_arr((1, 2, 2, 3, 4, 2), s),)),
    "ideal_lowpass": (lambda x: ops.ideal_lowpass(x, cutoff=(0.25, 0.4)),
                      lambda s: (_arr((1, 8, 7, 2), s),)),
    "power_spectrum": (lambda x: spectra.power_spectrum(x, reduce=False),
                       lambda s: (_arr((2, 8, 7, 2), s),)),
    "aliasing_ratio": (lambda x: spectra.aliasing_ratio(x, (2, 3)),
                       lambda s: (_arr((2, 8, 9, 2), s),)),
    "shiftability_error": (lambda x: spectra.shiftability_error(x, (2, 3)),
                           lambda s: (_arr((1, 6, 9, 2), s),)),
    "fourier_upsample": (lambda r: spectra.fourier_upsample(r, (2, 3)),
                         lambda s: (_arr((1, 4, 3, 2), s),)),
    "fourier_shift": (spectra.fourier_shift,
                      lambda s: (_arr((1, 8, 7, 2), s), _arr((2,), s) * 3)),
}
# Functions of static arguments only (they return NumPy arrays; nothing to trace).
STATIC_HELPERS = {"binomial_filter", "nyquist_mask"}


def test_transform_cases_cover_ops_and_spectra():
    for name in sigcnn.__all__:
        obj = getattr(sigcnn, name)
        if getattr(obj, "__module__", "") in ("sigcnn.ops", "sigcnn.spectra"):
            assert name in TRANSFORM_CASES or name in STATIC_HELPERS, name
    for name in STATIC_HELPERS:
        assert isinstance(getattr(sigcnn, name)(*{"binomial_filter": (3,),
                                                  "nyquist_mask": ((4, 4), 2)}[name]),
                          np.ndarray)


@pytest.mark.parametrize("name", sorted(TRANSFORM_CASES))
def test_jit_vmap_and_eager_agree(name):
    fn, make = TRANSFORM_CASES[name]
    tol = dict(rtol=1e-12, atol=1e-12)
    traces = []

    def counted(*args):
        traces.append(1)
        return fn(*args)

    jitted = jax.jit(counted)
    for seed in (0, 1):             # the second call has new values, same shapes
        args = make(seed)
        eager = fn(*args)
        np.testing.assert_allclose(jitted(*args), eager, **tol)
    assert len(traces) == 1, f"{name} retraced for new values of the same shape"

    batch = [make(seed) for seed in (2, 3, 4)]
    stacked = [np.stack(a) for a in zip(*batch)]
    looped = np.stack([np.asarray(fn(*args)) for args in batch])
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(*stacked), looped, **tol)
    if name in ("fourier_shift", "polyphase"):     # eager vmap too (cheap ones)
        np.testing.assert_allclose(jax.vmap(fn)(*stacked), looped, **tol)


def test_float32_inputs_stay_float32_under_jit():
    x32 = _arr((1, 8, 6, 2), 0).astype(np.float32)
    for name, (fn, make) in TRANSFORM_CASES.items():
        args = [a.astype(np.float32) for a in make(0)]
        out = jax.jit(fn)(*args)
        assert out.dtype == jnp.float32, name
    assert jax.jit(lambda x: spectra.fourier_shift(x, (0.5, 1)))(x32).dtype == \
        jnp.float32


def test_installed_jax_is_within_the_declared_bounds():
    # The interpreter uses jax.extend and a few private helpers (source lines);
    # pyproject.toml pins the versions it is tested with.
    import pathlib
    import re

    import jax

    text = (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    lo, hi = re.search(r'"jax>=([\d.]+),<([\d.]+)"', text).groups()

    def key(v):
        return tuple(int(p) for p in re.findall(r"\d+", v)[:3])

    assert key(lo) <= key(jax.__version__) < key(hi), (jax.__version__, lo, hi)
    from jax.extend.core import primitives  # noqa: F401  (the rules' primitives)
