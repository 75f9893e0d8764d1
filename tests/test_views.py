"""Views of a tile (s2l8h.models.views) and ensemble members that see the tile in them."""

from __future__ import annotations

import pytest
import torch

from s2l8h import create_model
from s2l8h.defaults import DEFAULT_MODEL
from s2l8h.errors import OptionError
from s2l8h.inference.harmonize import build_predictor, ensemble_views, resolve_models
from s2l8h.inference.uncertainty import Ensemble
from s2l8h.models import registry
from s2l8h.models.harmonizer import split_output
from s2l8h.models.views import VIEWS, apply_view, undo_view


def test_every_view_is_undone_and_they_are_the_eight_dihedral_transforms() -> None:
    tile = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    seen = []
    for view in VIEWS:
        transformed = apply_view(tile, view)
        assert torch.equal(undo_view(transformed, view), tile)
        seen.append(tuple(transformed[0, 0].flatten().tolist()))
    assert len(set(seen)) == 8  # all different
    assert torch.equal(apply_view(tile, "rot180"), tile.flip(-2, -1))
    assert apply_view(tile, "rot90").shape == (2, 3, 5, 4)
    with pytest.raises(ValueError, match="unknown view"):
        apply_view(tile, "rot45")


def test_an_ensemble_member_sees_its_view_and_its_output_comes_back() -> None:
    torch.manual_seed(0)
    first, second = create_model("lite"), create_model("lite")
    multispectral = torch.rand(1, 6, 12, 10)
    pan = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        plain = split_output(first(multispectral, pan))[0]
        turned = split_output(second(multispectral.flip(-2, -1), pan.flip(-2, -1)))[0]
        mean, variance = Ensemble([first, second], views=("identity", "rot180"))(
            multispectral, pan)
        unviewed, _ = Ensemble([first, second])(multispectral, pan)
    expected = (plain + turned.flip(-2, -1)) / 2
    torch.testing.assert_close(mean, expected, atol=1e-6, rtol=0)
    assert mean.shape == (1, 6, 36, 30) and variance.shape == mean.shape
    assert not torch.allclose(mean, unviewed)  # the view changes what the member says
    with pytest.raises(OptionError, match="views"):
        Ensemble([first, second], views=("identity",))
    with pytest.raises(OptionError, match="views"):
        Ensemble([first, second], views=("identity", "sideways"))


def test_registered_views_reach_the_predictor_of_the_default_ensemble() -> None:
    assert registry.ensemble_member_views(DEFAULT_MODEL) == ("identity", "rot180")
    models = resolve_models([DEFAULT_MODEL])
    assert ensemble_views(models) == ("identity", "rot180")
    predictor = build_predictor(models)
    # Inside the consistency step, which also runs the input noise filter.
    assert predictor.filter_input and predictor.predictor.views == ("identity", "rot180")
    unfiltered = build_predictor(models, filter_input_noise=False)
    assert not unfiltered.filter_input and unfiltered.predictor.views == ("identity", "rot180")
    # The same members given one by one are no registered ensemble: no views.
    assert ensemble_views(resolve_models(list(registry.ensemble_members(DEFAULT_MODEL)))) == ()
    with pytest.raises(ValueError, match="member_views"):
        registry.register_ensemble("bad-views", ("lite", "lite2"), member_views=("rot180",))
