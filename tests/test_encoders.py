"Tests of deepocc.encoders against torchvision and on shapes, init, gradients and feature extraction."
import pytest, torch
from torch import nn
from torchvision.models import resnet18
from deepocc.encoders import ResNet18, MLPHead, EncoderWithHead

torch.set_num_threads(2)

def _tv_keys(sd):
    "Our ResNet18 state dict under torchvision's names."
    return {k.replace('stem.0.', 'conv1.').replace('stem.1.', 'bn1.'): v for k,v in sd.items()}

def test_imagenet_stem_matches_torchvision():
    "With the ImageNet stem and width 64, ours is torchvision's resnet18 backbone: same keys, same output."
    torch.manual_seed(0)
    ours = ResNet18(3, 64, 'imagenet').eval()
    tv = resnet18(); tv.fc = nn.Identity(); tv.eval()
    missing = tv.load_state_dict(_tv_keys(ours.state_dict()), strict=True)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad(): torch.testing.assert_close(ours(x), tv(x), rtol=1e-5, atol=1e-5)

def test_cifar_stem_is_3x3_stride1_without_maxpool():
    net = ResNet18(1, 8, 'cifar')
    conv = net.stem[0]
    assert conv.kernel_size == (3, 3) and conv.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    # spatial size before pooling: 32 -> 32 -> 16 -> 8 -> 4
    feats = net.layer4(net.layer3(net.layer2(net.layer1(net.stem(torch.rand(2, 1, 32, 32))))))
    assert feats.shape == (2, 64, 4, 4)

def test_imagenet_stem_downsamples_by_32():
    net = ResNet18(3, 4, 'imagenet')
    assert any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    feats = net.layer4(net.layer3(net.layer2(net.layer1(net.stem(torch.rand(2, 3, 256, 256))))))
    assert feats.shape == (2, 32, 8, 8)

@pytest.mark.parametrize('c', [1, 3])
@pytest.mark.parametrize('s', [8, 32, 64, 128, 256])
@pytest.mark.parametrize('w', [2, 16])
def test_feature_dim(c, s, w):
    net = ResNet18(c, w, image_size=s).eval()
    assert net.stem_kind == ('cifar' if s <= 64 else 'imagenet')
    assert net(torch.rand(2, c, s, s)).shape == (2, net.feature_dim) == (2, 8*w)

def test_kaiming_init_like_torchvision():
    torch.manual_seed(0)
    net = ResNet18(3, 64)
    w = net.layer3[0].conv1.weight  # 256 out channels, 3x3: fan_out = 256*9
    assert abs(w.std().item() - (2/(256*9))**0.5) < 0.05*(2/(256*9))**0.5
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d): assert (m.weight == 1).all() and (m.bias == 0).all()

def test_every_parameter_gets_a_gradient():
    net = EncoderWithHead(ResNet18(1, 4), MLPHead(32, (16, 16), 8), n_classes=3)
    out = net(torch.rand(4, 1, 16, 16))
    (out['logits'].sum() + out['embed'].sum()).backward()
    for n,p in net.named_parameters(): assert p.grad is not None and p.grad.abs().sum() > 0, n

def test_mlp_head_structure():
    h = MLPHead(64, (512,)*8, 128)
    lin = [m for m in h if isinstance(m, nn.Linear)]
    assert len(lin) == 9 and all(m.bias is None for m in lin[:-1]) and lin[-1].bias is not None
    assert sum(isinstance(m, nn.BatchNorm1d) for m in h) == 8 and sum(isinstance(m, nn.ReLU) for m in h) == 8
    assert lin[-1].out_features == 128 and lin[0].in_features == 64
    single = MLPHead(10, (), 3)
    assert len(single) == 1 and isinstance(single[0], nn.Linear)

def test_features_chunked_equals_full_and_uses_running_stats():
    torch.manual_seed(0)
    net = EncoderWithHead(ResNet18(3, 4), MLPHead(32, (16,), 8), n_classes=2)
    net.train(); net(torch.rand(16, 3, 16, 16))  # update BN running stats
    x = torch.rand(11, 3, 16, 16)
    for tap in ('pool', 'embed'):
        a,b = net.features(x, tap, batch_size=4),net.features(x, tap, batch_size=100)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        # eval mode: one image's feature does not depend on the rest of the batch
        torch.testing.assert_close(net.features(x[:1], tap), a[:1], rtol=1e-5, atol=1e-6)
    assert net.training

def test_features_bad_input():
    net = EncoderWithHead(ResNet18(1, 2), MLPHead(16, (), 4))
    with pytest.raises(ValueError, match='valid taps'): net.features(torch.rand(2, 1, 8, 8), 'logits')
    with pytest.raises(ValueError, match='N,C,H,W'): net.features(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match='out_dim'): EncoderWithHead(ResNet18(1, 2), nn.Linear(16, 4))
