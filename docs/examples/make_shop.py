"""Writes the small shop of docs/getting-started.md: orders.csv, products.csv and shop.yaml, the same every time.

    python docs/examples/make_shop.py [FOLDER]      # default: the current folder

80 customers and 60 products in 5 categories and 4 makers; each customer orders mostly within two favourite
categories; the five newest products have no orders yet (cold items). The text is messy on purpose, as a real
export is: quotes inside names, a comma and a line break inside descriptions, column names of the shop's own.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

CATEGORIES = ["Garden", "Outdoor", "Books", "Kitchen", "Toys"]
MAKERS = ["Initech", "Umbrella", "Acme", "Globex"]
CONFIG = """data:
  interactions: {user: customer, item: product_id, rating: stars, timestamp: ordered_at}
  items: {item: product_id, title: name, description: blurb, brand: maker}
"""


def main(folder: Path) -> None:
    """Write the three files into ``folder``."""
    rng = random.Random(2024)
    folder.mkdir(parents=True, exist_ok=True)
    products = []
    for index in range(60):
        first = CATEGORIES[index % len(CATEGORIES)]
        categories = [first] if index % 3 else [first, CATEGORIES[(index + 1) % len(CATEGORIES)]]
        blurb = f"A {'sturdy' if index % 2 else 'handy'} {first.lower()} item"
        if index % 4 == 0:
            blurb = f"A {first.lower()} product,\nmade by hand"  # a comma and a line break inside the cell
        products.append((f"p{index}", f'Thing "{index}"', blurb, "|".join(categories), MAKERS[index % len(MAKERS)]))
    on_sale = products[:-5]  # the last five are new this week: nobody has ordered them yet
    by_category = {c: [p[0] for p in on_sale if c in p[3].split("|")] for c in CATEGORIES}
    start = datetime(2024, 1, 1, 10)
    orders = []
    for customer in range(80):
        favourites = rng.sample(CATEGORIES, 2)
        day = rng.randrange(30)
        bought: set[str] = set()
        for _ in range(rng.randrange(10, 26)):
            pool = by_category[rng.choice(favourites)] if rng.random() < 0.8 else [p[0] for p in on_sale]
            choice = rng.choice(pool)
            if choice in bought:  # a shop's log does repeat orders; kgrec would merge them (and say so)
                continue
            bought.add(choice)
            day += rng.randrange(1, 6)
            orders.append((f"c{customer}", choice, rng.randint(1, 5), (start + timedelta(days=day)).isoformat()))
    with open(folder / "products.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product_id", "name", "blurb", "category", "maker"])
        writer.writerows(products)
    with open(folder / "orders.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer", "product_id", "stars", "ordered_at"])
        writer.writerows(orders)
    (folder / "shop.yaml").write_text(CONFIG, encoding="utf-8")
    print(f"wrote {len(orders):,} orders of {len(products)} products by 80 customers into {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
