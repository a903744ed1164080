"""The founding VGG16-CAM network: architecture, CAM, backbone weights."""
import urllib.error

import pytest
import torch

from engine.errors import BackboneWeightsError
from engine.model import build_model


def test_architecture_matches_founding_design():
    model, origin = build_model(backbone_weights="none")
    assert origin.kind == "none"
    convs = [m for m in list(model.stem) + list(model.block5) if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13  # VGG16 conv layers
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.block5)  # last max-pool dropped
    assert isinstance(model.pool, torch.nn.MaxPool2d) and model.fc.in_features == 512 and model.fc.out_features == 2
    x = torch.randn(2, 3, 224, 224)
    feats = model.forward_features(x)
    assert feats.shape == (2, 512, 14, 14)
    assert torch.allclose(model(x), model.forward_head(feats))


def test_only_conv5_and_dense_layer_train_by_default():
    model, _ = build_model(backbone_weights="none")
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"block5", "fc"}
    assert sum(p.numel() for p in model.block5.parameters()) == 3 * (512 * 512 * 9 + 512)
    model.train()
    assert not model.stem.training  # frozen layers stay in eval mode
    full, _ = build_model(backbone_weights="none", trainable="all")
    assert all(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match="conv5, head, all"):
        build_model(backbone_weights="none", trainable="everything")


def test_cam_is_the_dense_weighted_sum_of_conv5_maps():
    model, _ = build_model(backbone="vgg16_bn", backbone_weights="none")
    model.eval()
    torch.nn.init.normal_(model.fc.weight)
    feats = model.forward_features(torch.randn(3, 3, 96, 96))
    cam = model.cam(feats)
    w = model.fc.weight[1]
    explicit = torch.stack([sum(w[k] * feats[n, k] for k in range(512)) for n in range(3)])
    assert cam.shape == (3, 6, 6)
    assert torch.allclose(cam, explicit, atol=1e-4)


def test_local_weights_file_is_used_and_recorded(tmp_path):
    donor, _ = build_model(backbone_weights="none")
    feats = list(donor.stem) + list(donor.block5) + [torch.nn.MaxPool2d(2)]
    state = {f"features.{k}": v for k, v in torch.nn.Sequential(*feats).state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)  # torchvision files also hold the classifier: ignored
    path = tmp_path / "vgg16-local.pth"
    torch.save(state, path)
    model, origin = build_model(backbone_weights=str(path))
    assert origin.kind == "file" and "vgg16-local.pth" in origin.detail
    assert torch.equal(model.block5[0].weight, donor.block5[0].weight)
    with pytest.raises(BackboneWeightsError, match="not vgg16_bn weights"):
        build_model(backbone="vgg16_bn", backbone_weights=str(path))


def test_offline_imagenet_request_says_where_to_put_the_file(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("VISINSPECT_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", no_network)
    with pytest.raises(BackboneWeightsError) as err:
        build_model(backbone_weights="imagenet")
    message = str(err.value)
    assert "vgg16-397923af.pth" in message and str(tmp_path / "weights" / "backbones") in message
    assert "--backbone-weights none" in message


def test_imagenet_weights_are_found_in_weights_backbones(tmp_path, monkeypatch):
    donor, _ = build_model(backbone_weights="none")
    feats = torch.nn.Sequential(*(list(donor.stem) + list(donor.block5) + [torch.nn.MaxPool2d(2)]))
    (tmp_path / "backbones").mkdir()
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, tmp_path / "backbones" / "vgg16-397923af.pth")
    monkeypatch.setenv("VISINSPECT_WEIGHTS", str(tmp_path))
    model, origin = build_model(backbone_weights="imagenet")
    assert origin.pretrained and origin.kind == "file"
    assert torch.equal(model.stem[0].weight, donor.stem[0].weight)


def test_bad_backbone_choices_name_the_allowed_values():
    with pytest.raises(ValueError, match="vgg16, vgg16_bn"):
        build_model(backbone="resnet50", backbone_weights="none")
    with pytest.raises(BackboneWeightsError, match="imagenet, none"):
        build_model(backbone_weights="/no/such/file.pth")
