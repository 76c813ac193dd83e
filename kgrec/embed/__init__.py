"""Side-information embeddings: PyKEEN entity embeddings of the KG and transformer embeddings of item text."""

from kgrec.embed.kge import KGEmbeddings, make_kg_model, train_kg_embeddings
from kgrec.embed.text import TextEmbeddings, encode_item_texts, has_item_text

__all__ = [
    "KGEmbeddings",
    "TextEmbeddings",
    "encode_item_texts",
    "has_item_text",
    "make_kg_model",
    "train_kg_embeddings",
]
