"""Conditioning-editing nodes: values set in the option dicts, averaging and concatenation."""

from __future__ import annotations

import copy
import logging

import torch

from nodes.conditioning_edit import (
    ConditioningAverage,
    ConditioningCombine,
    ConditioningConcat,
    ConditioningSetArea,
    ConditioningSetAreaPercentage,
    ConditioningSetAreaStrength,
    ConditioningSetMask,
    ConditioningSetTimestepRange,
)


def entry(value: float, tokens: int = 3, dim: int = 2, pooled: float | None = None, **options) -> list:
    if pooled is not None:
        options["pooled_output"] = torch.full((1, 4), pooled)
    return [torch.full((1, tokens, dim), value), options]


def run(node_class, ctx, **inputs):
    """Run a node and check that its input conditionings (tensors and dicts) are unchanged."""
    before = copy.deepcopy(inputs)
    result = node_class.model_construct(**inputs).execute(ctx)
    for name, value in inputs.items():
        if isinstance(value, list):
            for (cond, options), (cond_before, options_before) in zip(value, before[name], strict=True):
                assert torch.equal(cond, cond_before)
                assert options.keys() == options_before.keys()
                for key in options:
                    assert _equal(options[key], options_before[key]), (name, key)
    return result


def _equal(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_combine_concatenates_the_lists(ctx) -> None:
    one, two = [entry(1.0)], [entry(2.0), entry(3.0)]
    out = run(ConditioningCombine, ctx, conditioning_1=one, conditioning_2=two)
    assert [c[0, 0, 0].item() for c, _ in out] == [1.0, 2.0, 3.0]
    assert len(one) == 1 and len(two) == 2


def test_average_blends_token_by_token(ctx) -> None:
    to = [entry(1.0, tokens=4, pooled=1.0, area=(1, 2, 3, 4)), entry(5.0, tokens=2)]
    source = [entry(3.0, tokens=3, pooled=3.0)]
    out = run(ConditioningAverage, ctx, conditioning_to=to, conditioning_from=source, conditioning_to_strength=0.25)
    (first, first_options), (second, second_options) = out
    # the 3 tokens of from are zero-padded to 4
    assert torch.allclose(first[0, :, 0], torch.tensor([1 * 0.25 + 3 * 0.75] * 3 + [1 * 0.25]))
    assert torch.allclose(first_options["pooled_output"], torch.full((1, 4), 1 * 0.25 + 3 * 0.75))
    assert first_options["area"] == (1, 2, 3, 4)
    # from is cut to the 2 tokens of to; to has no pooled output: from's is taken
    assert second.shape == (1, 2, 2) and torch.allclose(second, torch.full((1, 2, 2), 5 * 0.25 + 3 * 0.75))
    assert torch.equal(second_options["pooled_output"], source[0][1]["pooled_output"])


def test_average_uses_only_the_first_from_entry(ctx, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        out = run(ConditioningAverage, ctx, conditioning_to=[entry(0.0)], conditioning_from=[entry(2.0), entry(8.0)],
                  conditioning_to_strength=0.5)
    assert torch.allclose(out[0][0], torch.full((1, 3, 2), 1.0))
    assert "only the first" in caplog.text
    kept = run(ConditioningAverage, ctx, conditioning_to=[entry(0.0, pooled=4.0)], conditioning_from=[entry(2.0)],
               conditioning_to_strength=0.5)
    assert torch.equal(kept[0][1]["pooled_output"], torch.full((1, 4), 4.0))


def test_concat_appends_tokens(ctx) -> None:
    to = [entry(1.0, tokens=77, pooled=1.0), entry(2.0, tokens=154)]
    out = run(ConditioningConcat, ctx, conditioning_to=to, conditioning_from=[entry(9.0, tokens=77)])
    assert [c.shape[1] for c, _ in out] == [154, 231]
    assert out[0][0][0, 76, 0] == 1.0 and out[0][0][0, 77, 0] == 9.0
    assert torch.equal(out[0][1]["pooled_output"], to[0][1]["pooled_output"]) and out[0][1] is not to[0][1]


def test_set_area_in_latent_units(ctx) -> None:
    cond = [entry(1.0, strength=0.3, mask=torch.ones(1, 2, 2))]
    out = run(ConditioningSetArea, ctx, conditioning=cond, width=200, height=64, x=24, y=100, strength=1.5)
    options = out[0][1]
    assert options["area"] == (8, 25, 12, 3) and options["strength"] == 1.5 and options["set_area_to_bounds"] is False
    assert "mask" in options and out[0][0] is cond[0][0]


def test_set_area_percentage_and_strength(ctx) -> None:
    out = run(ConditioningSetAreaPercentage, ctx, conditioning=[entry(1.0)], width=0.5, height=0.25, x=0.1, y=0.2, strength=2.0)
    assert out[0][1] == {"area": ("percentage", 0.25, 0.5, 0.2, 0.1), "strength": 2.0, "set_area_to_bounds": False}
    out = run(ConditioningSetAreaStrength, ctx, conditioning=[entry(1.0, area=(1, 1, 0, 0))], strength=0.7)
    assert out[0][1] == {"area": (1, 1, 0, 0), "strength": 0.7}


def test_set_mask_adds_a_batch_dimension(ctx) -> None:
    mask = torch.rand(8, 8)
    out = run(ConditioningSetMask, ctx, conditioning=[entry(1.0), entry(2.0)], mask=mask, strength=0.8, set_cond_area="mask bounds")
    for _, options in out:
        assert options["mask"].shape == (1, 8, 8) and torch.equal(options["mask"][0], mask)
        assert options["set_area_to_bounds"] is True and options["mask_strength"] == 0.8
    default = run(ConditioningSetMask, ctx, conditioning=[entry(1.0)], mask=torch.rand(2, 8, 8), strength=1.0, set_cond_area="default")
    assert default[0][1]["set_area_to_bounds"] is False and default[0][1]["mask"].shape == (2, 8, 8)


def test_set_timestep_range(ctx) -> None:
    out = run(ConditioningSetTimestepRange, ctx, conditioning=[entry(1.0, pooled=1.0)], start=0.25, end=0.75)
    assert out[0][1]["start_percent"] == 0.25 and out[0][1]["end_percent"] == 0.75 and "pooled_output" in out[0][1]
