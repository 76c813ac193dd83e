"""Side-information embeddings: PyKEEN entity embeddings of the KG and transformer embeddings of item text."""

from kgrec.embed.kge import KGEmbeddings, train_kg_embeddings
from kgrec.embed.text import TextEmbeddings, encode_item_texts

__all__ = ["KGEmbeddings", "TextEmbeddings", "encode_item_texts", "train_kg_embeddings"]
