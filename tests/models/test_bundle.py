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
    read_weights,
    save_bundle,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


# the hostile file is pickled with Python's protocol, which torch's safe loader notes
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_weights_are_loaded_with_weights_only(tiny_bundle, capsys):
    path = tiny_bundle / WEIGHTS_PATH
    with open(path, "wb") as fh:
        pickle.dump({"x": _Evil()}, fh)
    with pytest.raises(ModelBundleError) as err:
        ModelBundle.load(tiny_bundle).load_network()
    assert "this must never run" not in capsys.readouterr().out
    text = str(err.value)
    assert str(path) in text and "state_dict()" in text and "\n" not in text


def test_a_pickled_network_object_is_refused_naming_its_class(tiny_bundle, tmp_path):
    network = ModelBundle.load(tiny_bundle).build_network()
    path = tmp_path / "whole.pt"
    torch.save(network, path)  # the whole module, not its state dict
    with pytest.raises(ModelBundleError) as err:
        read_weights(path)
    text = str(err.value)
    assert str(path) in text and "monai.networks.nets.unet.UNet" in text
    assert "torch.save(model.state_dict()" in text and "\n" not in text


def test_corrupt_missing_and_wrapped_checkpoints_are_explained(tiny_bundle, tmp_path):
    good = tiny_bundle / WEIGHTS_PATH
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    for path in (truncated, text):
        with pytest.raises(ModelBundleError) as err:
            read_weights(path)
        assert str(path) in str(err.value) and "unreadable" in str(err.value)
        assert "\n" not in str(err.value)
    with pytest.raises(ModelBundleError, match="not found"):
        read_weights(tmp_path / "nothing.pt")
    wrapped = tmp_path / "lightning.pt"
    torch.save({"state_dict": read_weights(good), "epoch": 3}, wrapped)
    with pytest.raises(ModelBundleError) as err:
        read_weights(wrapped)
    assert "'state_dict'" in str(err.value) and "not a state dict" in str(err.value)


def test_a_text_or_json_file_is_called_unreadable_not_pickled(tmp_path):
    # bytes that happen to be pickle opcodes ('g', '{') made torch raise UnpicklingError,
    # and the message claimed the file held pickled Python objects
    # and plain text torch reads otherwise gave "not a torch file: 101", a bare number
    for name, content in (
        ("garbage.pt", "garbage\n"),
        ("manifest.json", '{"cases": []}'),
        ("notes.txt", "hello world\n"),
    ):
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ModelBundleError) as err:
            read_weights(path)
        text = str(err.value)
        assert str(path) in text and "not a torch file" in text, text
        assert "pickled" not in text and "\n" not in text and "101" not in text


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
    with pytest.raises(ModelMismatchError) as err:
        ModelBundle.load(tiny_bundle).load_network()
    text = str(err.value)
    assert "3 classes" in text and "model.pt" in text
    # the output layer says how many classes the checkpoint was trained for
    assert "10 output channels (9 classes and background)" in text


def test_class_list_mismatch_names_both(tiny_bundle):
    bundle = ModelBundle.load(tiny_bundle)
    with pytest.raises(ModelMismatchError) as err:
        bundle.check_classes(["liver", "tumour"], "project P")
    assert "'tumour'" in str(err.value) and "'pancreas'" in str(err.value)


def test_missing_or_incomplete_folders_are_explained(tmp_path, tiny_bundle):
    with pytest.raises(ModelBundleError, match="no such model folder"):
        ModelBundle.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelBundleError, match="not a model folder"):
        ModelBundle.load(tmp_path / "empty")
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


def test_a_derived_model_records_its_own_making_and_keeps_the_parent_recipe(tiny_bundle):
    parent = ModelBundle.load(tiny_bundle)
    parent.metadata.update(pytorch_version="1.0.0", monai_version="0.1", created_at=1.0)
    derived = parent.derived_metadata(version="tiny-1", round=1, training={"cases": ["a"]})
    assert derived["version"] == "tiny-1" and derived["parent_version"] == parent.version
    assert derived["round"] == 1 and derived["training"] == {"cases": ["a"]}
    assert derived["classes"] == parent.classes and derived["spacing"] == parent.metadata["spacing"]
    for made_when_saved in ("schema", "created_at", "pytorch_version", "monai_version"):
        assert made_when_saved not in derived
    derived["classes"].append("extra")  # a copy: the parent is unchanged
    assert "extra" not in parent.classes
    saved = ModelBundle.load(
        save_bundle(tiny_bundle.parent / "tiny-1", parent.build_network(), derived)
    )
    assert saved.metadata["pytorch_version"] == torch.__version__.split("+")[0]
