from symbridge.model.model import Model
from symbridge.train.finalize import main


def test_a_set_identifier_weight_is_written_without_a_fit(tmp_path):
    ckpt, out = tmp_path / "ckpt.safetensors", tmp_path / "final.safetensors"
    Model.default().save(ckpt, bits=4)
    # no pairs file and no corpus: a set weight must need neither
    assert main([str(ckpt), "--identifier-weight", "0.25", "--bits", "4", "--out", str(out),
                 "--pairs", str(tmp_path / "absent.json"), "--corpus", str(tmp_path)]) == 0
    m = Model.load(out)
    assert m.meta["identifier_weight"] == 0.25 and m.meta["context_weight"] == 0.5
    assert "set" in m.meta["identifier_weight_fit"]
