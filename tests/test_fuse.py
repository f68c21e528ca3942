import torch

from srgan._fuse import fold_batchnorm, fuse_conv_bn, prepare_for_inference
from srgan.models import Generator


def test_folded_generator_matches_and_has_no_batchnorm() -> None:
    g = Generator(num_blocks=3, channels=16).eval()
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.2, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 17, 13)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), g(x), atol=1e-5, rtol=0)
    # the original is untouched
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules()) == 7


def test_fuse_conv_bn_rounds_the_float64_product_once_and_copies_nothing() -> None:
    torch.manual_seed(0)
    conv, bn = torch.nn.Conv2d(8, 16, 3), torch.nn.BatchNorm2d(16).eval()
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.2, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
    before = conv.weight.detach().clone()
    fused = fuse_conv_bn(conv, bn)
    inv = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    expected = (conv.weight.double() * inv.view(-1, 1, 1, 1)).float()
    assert torch.equal(fused.weight, expected)  # the float64 product, rounded once: bit for bit
    assert torch.equal(fused.bias, ((conv.bias.double() - bn.running_mean.double()) * inv + bn.bias.double()).float())
    assert torch.equal(conv.weight, before)
    assert fused.weight.data_ptr() != conv.weight.data_ptr() and fused.bias.data_ptr() != conv.bias.data_ptr()


def test_folded_copy_shares_no_tensor_with_the_original() -> None:
    g = Generator(num_blocks=2, channels=8).eval()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    folded = fold_batchnorm(g)
    with torch.no_grad():
        for p in folded.parameters():
            p.add_(1.0)  # writing to the copy ...
    originals = {t.data_ptr() for t in g.state_dict().values()}
    assert not any(t.data_ptr() in originals for t in folded.state_dict().values())
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())  # ... leaves the original alone


def test_prepared_generator_traces_with_torch_fx() -> None:
    # torch.fx symbolic tracing (what torch.ao's prepare_fx quantization runs) sees the plain ops: the CPU fast
    # paths (in-place PReLU, fused residual additions) must not branch on a proxy's attributes.
    g = Generator(num_blocks=2, channels=8).eval()
    prepared = prepare_for_inference(g)
    traced = torch.fx.symbolic_trace(prepared)
    targets = {str(n.target) for n in traced.graph.nodes if n.op == "call_function"}
    assert "<built-in function add>" in targets  # the residual additions are plain graph nodes
    x = torch.rand(1, 3, 9, 11)
    with torch.inference_mode():
        torch.testing.assert_close(traced(x), g(x), atol=1e-5, rtol=0)
