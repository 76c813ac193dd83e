"""The KG as RDF: the kgrec ontology, IRIs for items, entities and relations, and N-Triples output.

N-Triples are written line by line, so graphs of any size stream to disk without an in-memory
``rdflib.Graph``. Literals and IRIs are escaped as the N-Triples grammar requires (rdflib's ``n3()``
writes Turtle's triple-quoted strings for text with newlines, which N-Triples does not allow).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    import rdflib

    from kgrec.graph.knowledge import KnowledgeGraph

__all__ = [
    "ONTOLOGY_IRI",
    "DATA_IRI",
    "ontology_turtle",
    "iter_ntriples",
    "to_rdflib",
    "node_iri",
    "relation_iri",
    "literal",
]

ONTOLOGY_IRI = "https://w3id.org/kgrec/ontology#"
DATA_IRI = "https://w3id.org/kgrec/id/"
_ABSOLUTE_IRI = re.compile(r"^(https?://|urn:)\S+$")

# (term, kind, label, comment): the whole ontology; ontology_turtle() renders it.
_ONTOLOGY = (
    ("Item", "Class", "item", "Something users interact with: a row of the item catalog."),
    ("Category", "Class", "category", "A catalog category (genre, department); an item may have several."),
    ("Brand", "Class", "brand", "A maker or label of items (for films: the production company)."),
    ("AttributeValue", "Class", "attribute value", "A value of a catalog column turned into a node (e.g. a year)."),
    ("Entity", "Class", "entity", "Any other node of the knowledge graph (person, place, topic...)."),
    ("hasCategory", "ObjectProperty", "has category", "Links an Item to a Category it belongs to."),
    ("hasBrand", "ObjectProperty", "has brand", "Links an Item to its Brand."),
    ("description", "DatatypeProperty", "description", "Free text describing an Item; input to the text encoder."),
    ("itemId", "DatatypeProperty", "item id", "The item's id in the user's files."),
    ("entityId", "DatatypeProperty", "entity id", "The entity's id in the user's files (e.g. a Freebase mid)."),
)
_CATALOG_RELATIONS = {"has_category": "hasCategory", "has_brand": "hasBrand"}
_KIND_CLASS = {
    "item": "Item",
    "category": "Category",
    "brand": "Brand",
    "attribute": "AttributeValue",
    "entity": "Entity",
}


def _term(name: str) -> str:
    return f"<{ONTOLOGY_IRI}{name}>"


def ontology_turtle() -> str:
    """The kgrec ontology as Turtle (also committed as ``graphs/ontology.ttl``)."""
    lines = [
        f"@prefix kgrec: <{ONTOLOGY_IRI}> .",
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .",
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .",
        "",
        f"<{ONTOLOGY_IRI}> a owl:Ontology ;",
        '    rdfs:label "kgrec knowledge-graph ontology" ;',
        f'    rdfs:comment "Items, categories, brands and other entities of a kgrec graph. Data IRIs: {DATA_IRI}item/<id>, '
        f'{DATA_IRI}entity/<id>, {DATA_IRI}relation/<name> (ids percent-encoded; absolute IRIs from RDF input kept as they are)." .',
        "",
    ]
    for name, kind, label, comment in _ONTOLOGY:
        lines.append(f'kgrec:{name} a owl:{kind} ;\n    rdfs:label "{label}" ;\n    rdfs:comment "{comment}" .')
    for name in ("hasCategory", "hasBrand"):
        target = "Category" if name == "hasCategory" else "Brand"
        lines.append(f"kgrec:{name} rdfs:domain kgrec:Item ; rdfs:range kgrec:{target} .")
    return "\n".join(lines) + "\n"


# N-Triples ECHARs for the characters a quoted literal may not hold raw; other controls become \\uXXXX.
_LITERAL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_LITERAL_SPECIAL = re.compile(r'[\\"\x00-\x1f\x7f]')
# Characters IRIREF excludes (besides controls and space, which an absolute id never holds).
_IRI_UNSAFE = re.compile(r'[<>"{}|^`\\\x00-\x20]')


def literal(text: str) -> str:
    """``text`` as an N-Triples string literal: one line, whatever quotes, backslashes or newlines it holds."""
    return '"' + _LITERAL_SPECIAL.sub(lambda m: _LITERAL_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04X}"), text) + '"'


def _iri(kind: str, id_: str) -> str:
    if _ABSOLUTE_IRI.match(id_):
        return "<" + _IRI_UNSAFE.sub(lambda m: quote(m.group(), safe=""), id_) + ">"
    return f"<{DATA_IRI}{kind}/{quote(id_, safe='')}>"


def node_iri(graph: KnowledgeGraph, node: int) -> str:
    """The N-Triples IRI of a KG node."""
    if node < len(graph.items):
        return f"<{DATA_IRI}item/{quote(graph.items.ids[node], safe='')}>"
    return _iri("entity", graph.entities.ids[node - len(graph.items)])


def relation_iri(name: str) -> str:
    """The N-Triples IRI of a relation: an ontology property for catalog facts, else a data IRI."""
    if name in _CATALOG_RELATIONS:
        return _term(_CATALOG_RELATIONS[name])
    return _iri("relation", name)


def iter_ntriples(graph: KnowledgeGraph) -> Iterator[str]:
    """Yield the KG as N-Triples lines: types, labels, descriptions, ids, then the relation triples."""
    rdf_type = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
    label = "<http://www.w3.org/2000/01/rdf-schema#label>"
    num_items = len(graph.items)
    nodes = [node_iri(graph, n) for n in range(graph.num_kg_nodes)]
    for node, iri in enumerate(nodes):
        is_item = node < num_items
        kind = "item" if is_item else graph.entity_kinds[node - num_items]
        yield f"{iri} {rdf_type} {_term(_KIND_CLASS[kind])} .\n"
        yield f"{iri} {label} {literal(graph.node_label(node))} .\n"
        if is_item:
            yield f"{iri} {_term('itemId')} {literal(graph.items.ids[node])} .\n"
            if description := graph.catalog["description"].iat[node]:
                yield f"{iri} {_term('description')} {literal(description)} .\n"
        else:
            yield f"{iri} {_term('entityId')} {literal(graph.entities.ids[node - num_items])} .\n"
    relations = [relation_iri(name) for name in graph.relations.ids]
    for name, iri in zip(graph.relations.ids, relations):
        if name not in _CATALOG_RELATIONS:
            yield f"{iri} {rdf_type} <http://www.w3.org/1999/02/22-rdf-syntax-ns#Property> .\n"
            yield f"{iri} {label} {literal(name)} .\n"
    for head, relation, tail in graph.triples.tolist():
        yield f"{nodes[head]} {relations[relation]} {nodes[tail]} .\n"


def to_rdflib(graph: KnowledgeGraph) -> rdflib.Graph:
    """Parse :func:`iter_ntriples` into an in-memory ``rdflib.Graph`` with the kgrec prefixes bound."""
    import rdflib

    rdf = rdflib.Graph()
    rdf.bind("kgrec", ONTOLOGY_IRI)
    rdf.bind("kg", DATA_IRI)
    rdf.parse(data="".join(iter_ntriples(graph)), format="nt")
    return rdf
