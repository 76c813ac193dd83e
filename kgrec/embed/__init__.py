"""Side-information embeddings: PyKEEN entity embeddings of the KG and transformer embeddings of item text."""

from kgrec.embed.kge import KGEmbeddings, make_kg_model, train_kg_embeddings
from kgrec.embed.text import TextEmbeddings, encode_item_texts

__all__ = ["KGEmbeddings", "TextEmbeddings", "encode_item_texts", "make_kg_model", "train_kg_embeddings"]
