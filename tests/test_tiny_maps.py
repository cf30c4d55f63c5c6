"""TinyMapConv2d computes what nn.Conv2d computes, forward and backward, with the same parameters."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from simclr_core.model import make_backbone
from simclr_core.tiny_maps import TinyMapConv2d, use_tiny_map_convs


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding"),
    [
        (1, 3, 1, 1),
        (2, 3, 1, 1),
        (2, 3, 2, 1),
        (2, 1, 2, 0),
        (1, 7, 2, 3),
        (2, 5, 1, 2),
        ((1, 2), 3, 1, 1),
        (4, 3, 1, 1),
    ],
)
@pytest.mark.parametrize("bias", [False, True])
def test_matches_conv2d_forward_and_backward(
    size: int | tuple[int, int], kernel: int, stride: int, padding: int, bias: bool
) -> None:
    torch.manual_seed(0)
    h, w = (size, size) if isinstance(size, int) else size
    conv = nn.Conv2d(6, 5, kernel, stride, padding, bias=bias)
    tiny = TinyMapConv2d(6, 5, kernel, stride, padding, bias=bias)
    tiny.load_state_dict(conv.state_dict())
    x = torch.randn(4, 6, h, w, requires_grad=True)
    want, got = conv(x), tiny(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(want)
    params = [conv.weight] + ([conv.bias] if bias else [])
    mine = [tiny.weight] + ([tiny.bias] if bias else [])
    for a, b in zip(
        torch.autograd.grad(want, [x, *params], grad_out), torch.autograd.grad(got, [x, *mine], grad_out), strict=True
    ):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_a_resnet_at_32px_equals_torchvisions_and_keeps_its_state_dict() -> None:
    torch.manual_seed(1)
    plain = torchvision.models.resnet18(weights=None)
    plain.fc = nn.Identity()
    ours = make_backbone("resnet18")
    assert ours.state_dict().keys() == plain.state_dict().keys()
    ours.load_state_dict(plain.state_dict())
    assert sum(isinstance(m, TinyMapConv2d) for m in ours.modules()) == sum(
        isinstance(m, nn.Conv2d) for m in plain.modules()
    )
    x = torch.randn(8, 3, 32, 32)
    want, got = plain(x), ours(x)  # layer3 runs on 2x2 maps, layer4 on 1x1: both through the matmul
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    want.square().sum().backward()
    got.square().sum().backward()
    grads = dict(ours.named_parameters())
    for name, p in plain.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=1e-3, atol=1e-3 * p.grad.abs().max().item())


def test_channels_last_inputs_and_shared_parameters() -> None:
    net = use_tiny_map_convs(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1)))
    conv = net[0]
    assert isinstance(conv, TinyMapConv2d)
    x = torch.randn(2, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, conv.bias, padding=1))
