import json
import pickle

import pytest
import torch

from napari_atlas_annotate.models.bundle import (
    WEIGHTS_PATH,
    ModelBundle,
    ModelBundleError,
    ModelMismatchError,
    build_network,
    save_bundle,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


# the hostile file is pickled with Python's protocol, which torch's safe loader notes
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_weights_are_loaded_with_weights_only(tiny_bundle):
    path = tiny_bundle / WEIGHTS_PATH
    with open(path, "wb") as fh:
        pickle.dump({"x": _Evil()}, fh)
    with pytest.raises(pickle.UnpicklingError):
        ModelBundle.load(tiny_bundle).load_network()


def test_checkpoint_of_another_architecture_names_both(tiny_bundle, tmp_path):
    other = build_network(
        {"name": "UNet", "kwargs": {"channels": [8, 16], "strides": [2], "num_res_units": 0}}, 9
    )
    torch.save(other.state_dict(), tiny_bundle / WEIGHTS_PATH)
    with pytest.raises(ModelMismatchError) as err:
        ModelBundle.load(tiny_bundle).load_network()
    text = str(err.value)
    assert "model.pt" in text and "UNet(channels=[4, 8]" in text and "in the checkpoint" in text


def test_checkpoint_with_another_class_count_names_both(tiny_bundle):
    meta_path = tiny_bundle / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["classes"] = meta["classes"][:3]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError, match="3 classes"):
        ModelBundle.load(tiny_bundle).load_network()


def test_class_list_mismatch_names_both(tiny_bundle):
    bundle = ModelBundle.load(tiny_bundle)
    with pytest.raises(ModelMismatchError) as err:
        bundle.check_classes(["liver", "tumour"], "project P")
    assert "'tumour'" in str(err.value) and "'pancreas'" in str(err.value)


def test_missing_or_incomplete_folders_are_explained(tmp_path, tiny_bundle):
    with pytest.raises(ModelBundleError, match="not a model folder"):
        ModelBundle.load(tmp_path / "nothing")
    meta_path = tiny_bundle / "configs" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["architecture"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ModelBundleError, match="architecture"):
        ModelBundle.load(tiny_bundle)


def test_unknown_architecture_and_immutable_folders(tiny_bundle):
    with pytest.raises(ModelMismatchError, match="unknown network architecture"):
        build_network({"name": "NoSuchNet"}, 3)
    bundle = ModelBundle.load(tiny_bundle)
    with pytest.raises(ModelBundleError, match="immutable"):
        save_bundle(tiny_bundle, bundle.build_network(), bundle.metadata)
