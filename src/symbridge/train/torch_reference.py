"""Write the PyTorch forward pass of the shipped model on the demo's functions to a test fixture, so that the
NumPy/PyTorch parity test runs where PyTorch is not installed (the product installs without it; this
module imports PyTorch only to write the file).

    python -m symbridge.train.torch_reference   # needs `pip install -e '.[train]'`; retrain.sh ship runs it
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..binary import Binary
from ..demo import demo_files
from ..model.model import Model, model_fingerprint

OUT = Path("tests/fixtures/model/torch-forward.npz")  # run from the repository's root
FUNCTIONS = 24  # the demo reference's first functions: enough code shapes, a small file


def torch_forward(model: Model, functions: list) -> np.ndarray:
    """The trained part of every member (no identifier sketch), concatenated as Model.forward does."""
    import torch

    from .train import BagMLP, collate

    m = Model(model.t, dict(model.meta, identifier_weight=0.0))
    bags, _ = m.featurize(functions)
    outs = []
    for k, part in enumerate(m.parts):
        net = BagMLP(part["ln_g"].shape[0], part["w1"].shape[1], part["w2"].shape[1])
        net.load_model(m, member=k)
        net.eval()
        with torch.no_grad():
            outs.append(net(*collate(bags)).numpy())
    return np.concatenate(outs, axis=1) / np.sqrt(len(outs))


def demo_functions() -> list:
    ref, _, _ = demo_files()
    return [f for f in Binary(ref).functions if not f.is_plt][:FUNCTIONS]


def main() -> int:
    import torch

    model = Model.default()
    ref = torch_forward(model, demo_functions())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, forward=ref.astype(np.float32), model=np.array(model_fingerprint(model)),
                        torch=np.array(torch.__version__))
    print(f"wrote {OUT}: {ref.shape[0]} functions x {ref.shape[1]}, model {model_fingerprint(model)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
