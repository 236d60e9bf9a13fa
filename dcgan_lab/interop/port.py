"""Copy weights between the PyTorch and Keras twins of a model.

``torch_to_keras(torch_model, keras_model)`` and ``keras_to_torch(keras_model, torch_model)`` walk
the weighted layers of both models in order (Linear/Dense, Conv2d/Conv2D,
ConvTranspose2d/Conv2DTranspose, BatchNorm1d|2d/BatchNormalization), check that they pair up, and
copy with the layout changes between the frameworks:

* Dense kernel (in, out) <-> Linear weight (out, in).
* Conv2D kernel (kh, kw, in, out) <-> Conv2d weight (out, in, kh, kw).
* Conv2DTranspose kernel (kh, kw, out, in) <-> ConvTranspose2d weight (in, out, kh, kw).
  No spatial flip is needed: both frameworks store the kernel the same way round.
* BatchNormalization gamma, beta, moving mean/variance <-> weight, bias, running mean/var.
* Dense -> Reshape: Keras reshapes the features as (H, W, C), PyTorch views them as (C, H, W), so
  the Dense outputs (and a BatchNorm on them) are permuted; likewise Flatten -> Dense permutes the
  Dense inputs.

After a copy, the two models compute the same function in eval mode (to float32 round-off, after
NCHW <-> NHWC transposition). Both frameworks are imported lazily, inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["torch_to_keras", "keras_to_torch", "PortError"]


class PortError(ValueError):
    """The two models do not pair up layer by layer."""


@dataclass
class _KerasEntry:
    layer: object
    kind: str  # "dense", "conv", "convt", "bn"
    perm_in: np.ndarray | None = None  # torch feature j <- keras feature perm[j]
    perm_out: np.ndarray | None = None


def _chw_from_hwc(h: int, w: int, c: int) -> np.ndarray:
    """perm[j] = the Keras (H, W, C) flat index of the PyTorch (C, H, W) flat index j."""
    return np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()


def _keras_layers(model) -> list:
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_keras_layers(layer))
        else:
            out.append(layer)
    return out


def _keras_entries(model) -> list[_KerasEntry]:
    from keras import layers as L

    entries: list[_KerasEntry] = []
    pending: list[_KerasEntry] = []  # Dense (+ BatchNorm on its features) before a Reshape
    flat_shape = None  # (H, W, C) of the last Flatten, until a Dense consumes it
    for layer in _keras_layers(model):
        if isinstance(layer, L.Dense):
            e = _KerasEntry(layer, "dense")
            if flat_shape is not None:
                e.perm_in = _chw_from_hwc(*flat_shape)
                flat_shape = None
            entries.append(e)
            pending = [e]
        elif isinstance(layer, L.BatchNormalization):
            e = _KerasEntry(layer, "bn")
            entries.append(e)
            if len(layer.input.shape) == 2 and pending:
                pending.append(e)
            else:
                pending = []
        elif isinstance(layer, (L.Conv2DTranspose, L.Conv2D)):
            kind = "convt" if isinstance(layer, L.Conv2DTranspose) else "conv"
            entries.append(_KerasEntry(layer, kind))
            pending, flat_shape = [], None
        elif isinstance(layer, L.Reshape):
            target = tuple(layer.target_shape)
            if pending and len(target) == 3:
                perm = _chw_from_hwc(*target)
                for e in pending:
                    e.perm_out = perm
            pending = []
        elif isinstance(layer, L.Flatten):
            shape = tuple(layer.input.shape[1:])
            flat_shape = shape if len(shape) == 3 else None
        elif layer.weights and type(layer).__name__ != "InputLayer":
            raise PortError(
                f"Keras layer {layer.name!r} ({type(layer).__name__}) has weights but no PyTorch "
                "counterpart in dcgan_lab.interop.port (supported: Dense, Conv2D, Conv2DTranspose, "
                "BatchNormalization)"
            )
    return entries


def _torch_entries(model) -> list[tuple[str, object, str]]:
    from torch import nn

    kinds = ((nn.Linear, "dense"), (nn.ConvTranspose2d, "convt"), (nn.Conv2d, "conv"),
             (nn.BatchNorm1d, "bn"), (nn.BatchNorm2d, "bn"))
    out = []
    for name, m in model.named_modules():
        for cls, kind in kinds:
            if isinstance(m, cls):
                out.append((name, m, kind))
                break
        else:
            if not list(m.children()) and list(m.parameters(recurse=False)):
                raise PortError(
                    f"PyTorch module {name!r} ({type(m).__name__}) has parameters but no Keras "
                    "counterpart in dcgan_lab.interop.port (supported: Linear, Conv2d, ConvTranspose2d, "
                    "BatchNorm1d/2d)"
                )
    return out


_TORCH_NAMES = {"dense": "Linear", "conv": "Conv2d", "convt": "ConvTranspose2d", "bn": "BatchNorm"}
_KERAS_NAMES = {"dense": "Dense", "conv": "Conv2D", "convt": "Conv2DTranspose",
                "bn": "BatchNormalization"}


def _pairs(torch_model, keras_model) -> list:
    """Pair the weighted layers and validate every pair (kinds, shapes, options) before copying."""
    t = _torch_entries(torch_model)
    k = _keras_entries(keras_model)
    pairs = []
    for i, ((tname, tm, tkind), ke) in enumerate(zip(t, k, strict=False)):
        if tkind != ke.kind:
            raise PortError(
                f"weighted layer {i}: PyTorch {tname!r} ({type(tm).__name__}) cannot pair with "
                f"Keras {ke.layer.name!r} ({type(ke.layer).__name__}); expected a "
                f"{_KERAS_NAMES[tkind]}; build both from the same recipe and options"
            )
        _keras_to_torch_arrays(i, tname, tm, ke)  # raises on a shape/option mismatch
        pairs.append((i, tname, tm, ke))
    if len(t) != len(k):
        tl = ", ".join(type(m).__name__ for _, m, _ in t)
        kl = ", ".join(type(e.layer).__name__ for e in k)
        raise PortError(
            f"the models do not pair up: the PyTorch model has {len(t)} weighted layers ({tl}), "
            f"the Keras model {keras_model.name!r} has {len(k)} ({kl}); build both from the same "
            "recipe and options"
        )
    return pairs


def _mismatch(i, tname, tm, ke, what, tshape, kshape):
    return PortError(
        f"weighted layer {i}: PyTorch {tname!r} ({type(tm).__name__}) {what} {tuple(tshape)} does "
        f"not match Keras {ke.layer.name!r} ({type(ke.layer).__name__}) {what} {tuple(kshape)} "
        "(after the PyTorch<->Keras layout change); build both from the same recipe and options"
    )


def _inv(perm: np.ndarray | None) -> np.ndarray | None:
    return None if perm is None else np.argsort(perm)


def _keras_to_torch_arrays(i, tname, tm, ke) -> list[np.ndarray]:
    """The Keras layer's weights in the PyTorch layout, in tm's parameter/buffer order."""
    layer = ke.layer
    ws = [np.asarray(w) for w in layer.get_weights()]
    if ke.kind == "bn":
        if not (layer.scale and layer.center):
            raise PortError(f"Keras {layer.name!r}: BatchNormalization without scale/center "
                            "cannot pair with a PyTorch BatchNorm (affine=True)")
        if abs(float(layer.epsilon) - float(tm.eps)) > 1e-12:
            raise PortError(
                f"weighted layer {i}: BatchNorm epsilon differs: PyTorch {tname!r} eps={tm.eps}, "
                f"Keras {layer.name!r} epsilon={layer.epsilon}; eval outputs would not agree"
            )
        if tuple(ws[0].shape) != tuple(tm.weight.shape):
            raise _mismatch(i, tname, tm, ke, "features", tm.weight.shape, ws[0].shape)
        if ke.perm_out is not None:
            ws = [w[ke.perm_out] for w in ws]
        return ws
    kernel, bias = ws[0], (ws[1] if layer.use_bias else None)
    if (bias is None) != (tm.bias is None):
        raise PortError(
            f"weighted layer {i}: PyTorch {tname!r} bias={tm.bias is not None} but Keras "
            f"{layer.name!r} use_bias={layer.use_bias}"
        )
    if ke.kind == "dense":
        w = kernel.T
    else:
        # Conv2D (kh, kw, in, out) -> (out, in, kh, kw); Conv2DTranspose (kh, kw, out, in) ->
        # (in, out, kh, kw): the same axis permutation, no spatial flip.
        w = kernel.transpose(3, 2, 0, 1)
    if tuple(w.shape) != tuple(tm.weight.shape):
        raise _mismatch(i, tname, tm, ke, "weight", tm.weight.shape, w.shape)
    if ke.perm_in is not None:  # Flatten (H, W, C) -> Dense: torch input j <- keras perm_in[j]
        w = w[:, ke.perm_in]
    if ke.perm_out is not None:  # Dense -> Reshape (H, W, C): torch output j <- keras perm_out[j]
        w = w[ke.perm_out, :]
        bias = None if bias is None else bias[ke.perm_out]
    return [w] if bias is None else [w, bias]


def keras_to_torch(keras_model, torch_model) -> None:
    """Copy the weights (and BatchNorm statistics) of ``keras_model`` into ``torch_model``."""
    import torch

    for i, tname, tm, ke in _pairs(torch_model, keras_model):
        arrays = _keras_to_torch_arrays(i, tname, tm, ke)
        if ke.kind == "bn":
            targets = [tm.weight, tm.bias, tm.running_mean, tm.running_var]
        else:
            targets = [tm.weight] + ([tm.bias] if tm.bias is not None else [])
        for t, a in zip(targets, arrays, strict=True):
            with torch.no_grad():
                t.copy_(torch.from_numpy(np.ascontiguousarray(a)).to(device=t.device, dtype=t.dtype))


def torch_to_keras(torch_model, keras_model) -> None:
    """Copy the weights (and BatchNorm statistics) of ``torch_model`` into ``keras_model``."""
    for _i, _tname, tm, ke in _pairs(torch_model, keras_model):
        layer = ke.layer
        if ke.kind == "bn":
            ws = [tm.weight, tm.bias, tm.running_mean, tm.running_var]
            ws = [t.detach().cpu().numpy() for t in ws]
            inv = _inv(ke.perm_out)
            if inv is not None:
                ws = [w[inv] for w in ws]
        else:
            w = tm.weight.detach().cpu().numpy()
            b = None if tm.bias is None else tm.bias.detach().cpu().numpy()
            if ke.kind == "dense":
                kernel = w.T
                inv_in, inv_out = _inv(ke.perm_in), _inv(ke.perm_out)
                if inv_in is not None:
                    kernel = kernel[inv_in, :]
                if inv_out is not None:
                    kernel = kernel[:, inv_out]
                    b = None if b is None else b[inv_out]
            else:
                kernel = w.transpose(2, 3, 1, 0)  # inverse of transpose(3, 2, 0, 1)
            ws = [kernel] if b is None else [kernel, b]
        layer.set_weights([np.ascontiguousarray(w, dtype=v.dtype)
                           for w, v in zip(ws, layer.weights, strict=True)])
