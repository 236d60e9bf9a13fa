"""Export a run's generator to ONNX and check it with onnxruntime.

A PyTorch generator is exported as it is; a Keras generator through its PyTorch twin
(:func:`dcgan_lab.interop.port.keras_to_torch`: the twins compute the same function), and the ONNX
output is then checked against the Keras model's own output, not the twin's.

The exporter is torch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``): it
needs only the ``onnx`` package and works offline; the dynamo exporter would also need
``onnxscript``. The graph takes ``z`` of shape (N, latent_dim) float32 and returns ``images`` of
shape (N, C, H, W) in [-1, 1]; N is free.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import frameworks
from ..run import rundir, streams

#: the largest difference between the ONNX output and the framework's own output that passes
TOLERANCE = 1e-4
OPSET = 17


class ExportError(RuntimeError):
    """The export could not be made or does not match the framework's output."""


def _torch_generator(run_dir: Path, framework: str):
    """(the PyTorch generator to export, a function z -> the framework's own images NCHW)."""
    import torch

    if framework == "torch":
        G = frameworks.get("torch").load_generator(run_dir).float().eval()

        def own(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return G(torch.from_numpy(z)).numpy()

        return G, own
    from .port import keras_to_torch

    cfg = rundir.RunDir(run_dir).read_config()
    K = frameworks.get(framework).load_generator(run_dir)
    G, _ = frameworks.get("torch").build_for(cfg)
    keras_to_torch(K, G)

    def own_keras(z: np.ndarray) -> np.ndarray:
        images = np.asarray(K(z, training=False))  # NHWC
        return images.transpose(0, 3, 1, 2)

    return G.eval(), own_keras


def export(run_dir: str | Path, out: str | Path, n_check: int = 16, *,
           force: bool = False) -> float:
    """Write the generator of ``run_dir`` to ``out`` as ONNX; return the largest difference
    between onnxruntime's images and the framework's own on ``n_check`` seeded z.

    ``out`` must not exist (unless ``force``) and is never a file of a run folder
    (:func:`~dcgan_lab.run.atomic.check_output_file`). The model is written to a temporary file
    and checked there: only a model that passes replaces ``out``. Raises :class:`ExportError` if
    ``onnx``/``onnxruntime`` are missing or the difference is over :data:`TOLERANCE`.
    """
    from ..run.atomic import check_output_file, write_output

    run_dir, out = Path(run_dir), Path(out)
    cfg = rundir.RunDir(run_dir).read_config()
    check_output_file(out, "--onnx", force=force)
    try:
        import onnx
        import onnxruntime as ort
    except ImportError as e:
        raise ExportError(f"the ONNX export needs onnx and onnxruntime ({e}); install them with "
                          f"pip install 'dcgan-lab[onnx]'") from None
    import torch

    G, own = _torch_generator(run_dir, cfg.framework)
    latent = cfg.recipe_obj.latent_dim
    diffs: list[float] = []

    def write_and_check(tmp: Path) -> None:
        # G.net: the layers alone (the input-shape check of Generator.forward would not trace)
        torch.onnx.export(G.net, (torch.zeros(2, latent),), str(tmp), dynamo=False,
                          opset_version=OPSET, input_names=["z"], output_names=["images"],
                          dynamic_axes={"z": {0: "n"}, "images": {0: "n"}})
        onnx.checker.check_model(onnx.load(str(tmp)))
        z = streams.sample_noise(n_check, latent, 0).astype(np.float32)
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = session.run(["images"], {"z": z})[0]
        diffs.append(float(np.abs(got - own(z)).max()))
        if not diffs[0] <= TOLERANCE:
            raise ExportError(f"{out}: onnxruntime's images differ from {cfg.framework}'s by "
                              f"{diffs[0]:.2e} (over {TOLERANCE:.0e}); nothing was written")

    write_output(out, write_and_check, "--onnx")
    return diffs[0]
