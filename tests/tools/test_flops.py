"""Parameter and FLOP counts (tools.flops)."""
from __future__ import annotations

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from sscn.models import CONFIGS, SSCN, get_config
from sscn.tools.flops import checkpoint_bytes, count_flops, count_parameters, main


@pytest.fixture(scope="module")
def tiny() -> SSCN:
    torch.manual_seed(0)
    return SSCN(get_config("tiny")).eval()


def test_count_parameters(tiny):
    assert count_parameters(tiny) == sum(p.numel() for p in tiny.parameters())
    tiny.encoder.requires_grad_(False)
    try:
        frozen = sum(p.numel() for p in tiny.encoder.parameters())
        assert count_parameters(tiny, trainable_only=True) == count_parameters(tiny) - frozen
    finally:
        tiny.encoder.requires_grad_(True)


def test_checkpoint_bytes_match_a_saved_file(tiny, tmp_path):
    from sscn.models import save_checkpoint

    path = tmp_path / "tiny.safetensors"
    save_checkpoint(tiny, path)
    assert checkpoint_bytes(tiny) <= path.stat().st_size < checkpoint_bytes(tiny) + 64 * 1024  # + header


def test_meta_count_equals_a_real_run(tiny):
    """Counting on the meta device gives the FLOPs of a real forward on the CPU, attention counted as the
    math kernel's two matrix products (the fused CPU kernel is not counted by every torch release)."""
    generator = torch.Generator().manual_seed(0)
    ref_rgb = torch.rand(1, 3, 64, 64, generator=generator)
    l_norm = torch.rand(1, 1, 64, 64, generator=generator) * 2 - 1
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as counter:
            reference = tiny.encode_reference(ref_rgb)
        reference_flops = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            tiny(l_norm, reference)
    counted = count_flops(tiny, 64)
    assert (counted.reference, counted.target) == (reference_flops, counter.get_total_flops())


def test_dense_costs_more_and_grows_faster(tiny):
    sparse = [count_flops(tiny, size).target for size in (128, 256)]
    dense = [count_flops(tiny, size, dense=True).target for size in (128, 256)]
    assert dense[0] > sparse[0] and dense[1] > sparse[1]
    # sparse work is ~linear in pixels (x4 per doubling); dense attention is quadratic
    assert sparse[1] / sparse[0] < 4.5 < dense[1] / dense[0]


def test_reference_flops_do_not_depend_on_mode(tiny):
    assert count_flops(tiny, 128).reference == count_flops(tiny, 128, dense=True).reference


def test_size_must_be_a_multiple_of_32(tiny):
    with pytest.raises(ValueError, match="multiple of 32"):
        count_flops(tiny, 100)


def test_table_lists_every_config(capsys):
    main(["--size", "64"])
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| config")]
    assert [row.split("|")[1].strip() for row in rows] == list(CONFIGS)


def test_attention_is_counted_as_two_matrix_products(tiny):
    """Sparse target FLOPs grow by exactly 2 x 2 x queries x width per extra selected position."""
    queries, width = (64 // 4) ** 2, -(-max(tiny.config.attn_dim, tiny.config.value_dim + 2) // 8) * 8
    one, two = (count_flops(tiny, 64, k=1, r=extra).target for extra in (0, 1))
    assert two - one == 2 * 2 * queries * width
