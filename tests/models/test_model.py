"""The SSCN network: every config builds and runs (timm-style), semantic-sparse selection, gradients,
determinism, the cached reference path, and memory-bounded attention."""
from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from sscn.models import CONFIGS, SSCN, get_config
from sscn.models import ldt
from sscn.models.ldt import attend, select_positions


def _inputs(batch: int = 1, height: int = 64, width: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Target L (B, 1, H, W) in [-1, 1] and a reference (B, 3, H, W) in [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    l_norm = torch.rand(batch, 1, height, width, generator=generator) * 2 - 1
    ref_rgb = torch.rand(batch, 3, height, width, generator=generator)
    return l_norm, ref_rgb


def _model(name: str = "tiny", seed: int = 0) -> SSCN:
    torch.manual_seed(seed)
    return SSCN(get_config(name)).eval()


@pytest.fixture(scope="module")
def tiny() -> SSCN:
    return _model("tiny")


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_config_runs(name):
    model = _model(name)
    l_norm, ref_rgb = _inputs(batch=2)
    with torch.no_grad():
        out = model(l_norm, ref_rgb, with_bins=True)
    assert out.ab.shape == out.ab_coarse.shape == (2, 2, 64, 64)
    assert out.bin_logits.shape == (2, model.num_bins, 16, 16)
    assert out.reference_logits.shape == (2, model.config.num_classes)
    assert torch.isfinite(out.ab).all() and torch.isfinite(out.ab_coarse).all()


@pytest.mark.parametrize("height, width", [(64, 64), (64, 96), (96, 32), (160, 128)])
def test_output_shapes_non_square(tiny, height, width):
    l_norm, _ = _inputs(height=height, width=width)
    _, ref_rgb = _inputs(height=width, width=height)           # the reference's own shape may differ
    with torch.no_grad():
        out = tiny(l_norm, ref_rgb, with_bins=True)
    assert out.ab.shape == (1, 2, height, width)
    assert out.bin_logits.shape == (1, tiny.num_bins, height // 4, width // 4)


def test_stage1_only(tiny):
    l_norm, ref_rgb = _inputs()
    with torch.no_grad():
        full = tiny(l_norm, ref_rgb)
        coarse = tiny(l_norm, ref_rgb, stage1_only=True)
    torch.testing.assert_close(coarse.ab, full.ab_coarse)
    assert coarse.bin_logits is None


class TestSelection:
    def test_sparse_attends_exactly_k_plus_r(self, tiny):
        _, ref_rgb = _inputs(batch=2, height=128, width=128)    # N = 32 * 32 = 1024 regions
        with torch.no_grad():
            encoding = tiny.encode_reference(ref_rgb, k=20, r=30, generator=torch.Generator().manual_seed(0))
        assert encoding.num_positions == 1024
        assert encoding.selected_idx.shape == (2, 50)
        assert encoding.keys.shape == (2, 50, tiny.config.attn_dim)
        assert encoding.values.shape == (2, 50, tiny.config.value_dim + 2)
        for idx, cam in zip(encoding.selected_idx, encoding.cam):
            assert len(set(idx.tolist())) == 50                          # distinct
            assert set(cam.topk(20).indices.tolist()) <= set(idx.tolist())  # the top-k CAM regions are in
            assert idx.min() >= 0 and idx.max() < 1024

    def test_keys_are_the_selected_rows(self, tiny):
        _, ref_rgb = _inputs(height=96, width=96)
        with torch.no_grad():
            dense = tiny.encode_reference(ref_rgb, dense=True)
            sparse = tiny.encode_reference(ref_rgb, k=5, r=7, generator=torch.Generator().manual_seed(3))
        torch.testing.assert_close(sparse.keys[0], dense.keys[0, sparse.selected_idx[0]])
        torch.testing.assert_close(sparse.values[0], dense.values[0, sparse.selected_idx[0]])

    def test_dense_attends_everything(self, tiny):
        _, ref_rgb = _inputs(height=64, width=96)
        with torch.no_grad():
            encoding = tiny.encode_reference(ref_rgb, dense=True)
        assert encoding.selected_idx is None
        assert encoding.num_positions == 16 * 24 and encoding.keys.shape[1] == 16 * 24

    @pytest.mark.parametrize("k, r", [(200, 56), (256, 0), (0, 300), (1000, 1000)])
    def test_k_plus_r_at_least_n_is_dense(self, k, r):
        cam = torch.rand(2, 256)
        assert select_positions(cam, k, r) is None

    @pytest.mark.parametrize("k, r", [(255, 0), (0, 255), (7, 0), (0, 1)])
    def test_only_topk_or_only_random(self, k, r):
        cam = torch.rand(1, 256)
        idx = select_positions(cam, k, r, torch.Generator().manual_seed(0))
        assert idx.shape == (1, k + r) and len(set(idx[0].tolist())) == k + r
        assert set(cam.topk(k).indices[0].tolist()) <= set(idx[0].tolist())

    def test_random_picks_are_stratified(self):
        # N = 240 positions, r = 12 strata of 20 in raster order; the top 25 CAM scores fill strata 0 and 1
        # and part of 2, so those strata have nothing (0, 1) or fewer positions (2) left to draw from.
        cam = torch.linspace(1.0, 0.0, 240)[None].repeat(3, 1)                   # (3, 240), top-k = 0..24
        idx = select_positions(cam, 25, 12, torch.Generator().manual_seed(4))
        for row in idx:
            others = row[25:]
            assert len(set(row.tolist())) == 37 and others.min() >= 25           # distinct, no top-k redrawn
            strata = (others * 12 // 240).tolist()
            assert set(range(2, 12)) <= set(strata)                               # every stratum left is hit
        assert not torch.equal(idx[0], idx[1])                                    # still random within strata

    @pytest.mark.parametrize("k, r, message", [
        (-1, 5, r"k and r must be >= 0 \(got k=-1, r=5\)"),
        (5, -2, r"k and r must be >= 0 \(got k=5, r=-2\)"),
        (0, 0, r"k \+ r must be at least 1"),
    ])
    def test_invalid_k_r(self, tiny, k, r, message):
        with pytest.raises(ValueError, match=message):
            select_positions(torch.rand(1, 64), k, r)
        _, ref_rgb = _inputs()
        with pytest.raises(ValueError, match=message):
            tiny.encode_reference(ref_rgb, k=k, r=r)

    def test_invalid_k_r_ignored_when_dense(self, tiny):
        _, ref_rgb = _inputs()
        with torch.no_grad():
            assert tiny.encode_reference(ref_rgb, k=0, r=0, dense=True).selected_idx is None


class TestDeterminism:
    def test_same_seed_same_output(self, tiny):
        l_norm, ref_rgb = _inputs(height=128, width=128)
        with torch.no_grad():
            outs = [tiny(l_norm, ref_rgb, generator=torch.Generator().manual_seed(7)).ab for _ in range(2)]
        torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)

    def test_different_seed_different_selection(self, tiny):
        _, ref_rgb = _inputs(height=128, width=128)
        with torch.no_grad():
            picks = [tiny.encode_reference(ref_rgb, generator=torch.Generator().manual_seed(seed)).selected_idx
                     for seed in (1, 2)]
        k = tiny.config.k
        assert torch.equal(picks[0][:, :k], picks[1][:, :k])          # the top-k CAM part is seed-free
        assert not torch.equal(picks[0][:, k:], picks[1][:, k:])

    def test_cached_reference_equals_per_call(self, tiny):
        l_norm, ref_rgb = _inputs(batch=1, height=128, width=128)
        targets = torch.cat([l_norm, -l_norm, l_norm * 0.5])          # three targets, one reference
        with torch.no_grad():
            encoding = tiny.encode_reference(ref_rgb, generator=torch.Generator().manual_seed(5))
            cached = [tiny(t[None], encoding).ab for t in targets]
            batched = tiny(targets, encoding).ab
            per_call = [tiny(t[None], ref_rgb, generator=torch.Generator().manual_seed(5)).ab for t in targets]
        for index in range(3):
            torch.testing.assert_close(cached[index], per_call[index], atol=0, rtol=0)
            torch.testing.assert_close(batched[index:index + 1], per_call[index], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["tiny", "base"])
def test_gradient_reaches_every_parameter(name):
    model = _model(name).train()
    l_norm, ref_rgb = _inputs(batch=2, height=64, width=64)
    out = model(l_norm, ref_rgb, with_bins=True, generator=torch.Generator().manual_seed(0))
    loss = (out.ab.square().mean() + out.ab_coarse.square().mean() + out.bin_logits.logsumexp(1).mean()
            + out.reference_logits.logsumexp(1).mean())
    loss.backward()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    missing = [name for name, p in trainable.items() if p.grad is None]
    not_finite = [name for name, p in trainable.items() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not missing, f"no gradient for {missing[:5]}"
    assert not not_finite, f"non-finite gradient for {not_finite[:5]}"
    modules_without_grad = {name.rsplit(".", 1)[0] for name, p in trainable.items() if p.grad.abs().sum() == 0}
    assert not modules_without_grad, f"zero gradient in {sorted(modules_without_grad)[:5]}"


class TestAttention:
    @staticmethod
    def _naive(queries, keys, values, temperature):
        q = torch.nn.functional.normalize(queries, dim=-1)
        k = torch.nn.functional.normalize(keys, dim=-1)
        return torch.softmax(q @ k.transpose(1, 2) / temperature, dim=-1) @ values

    def test_matches_naive_softmax(self):
        generator = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(2, n, d, generator=generator) for n, d in ((50, 8), (30, 8), (30, 6)))
        torch.testing.assert_close(attend(q, k, v, 0.01), self._naive(q, k, v, 0.01), atol=1e-4, rtol=1e-4)

    def test_chunked_equals_unchunked(self, monkeypatch):
        generator = torch.Generator().manual_seed(1)
        q, k, v = (torch.randn(1, n, d, generator=generator) for n, d in ((1024, 16), (1024, 16), (1024, 18)))
        whole = attend(q, k, v, 0.01)
        monkeypatch.setattr(ldt, "_ATTENTION_CHUNK_ELEMENTS", 1000 * 64)    # 62 queries per chunk
        torch.testing.assert_close(attend(q, k, v, 0.01), whole, atol=1e-5, rtol=1e-5)

    def test_dense_1024_never_holds_all_scores(self):
        """Dense attention at 1024x1024 (N = 65536 regions): no tensor larger than the chunk budget.

        Run on the meta device (shapes only, no memory) with the math kernel, which materialises scores,
        as CUDA does when the fused kernels do not apply.
        """
        class LargestTensor(TorchDispatchMode):
            largest = 0

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for tensor in out if isinstance(out, (tuple, list)) else (out,):
                    if isinstance(tensor, torch.Tensor):
                        self.largest = max(self.largest, tensor.numel())
                return out

        positions = (1024 // 4) ** 2
        config = get_config("base")
        q = torch.empty(1, positions, config.attn_dim, device="meta")
        v = torch.empty(1, positions, config.value_dim + 2, device="meta")
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with sdpa_kernel(SDPBackend.MATH), LargestTensor() as mode:
            out = attend(q, q, v, config.temperature)
        assert out.shape == (1, positions, config.value_dim + 2)
        assert positions ** 2 > 100 * ldt._ATTENTION_CHUNK_ELEMENTS
        assert mode.largest <= ldt._ATTENTION_CHUNK_ELEMENTS
