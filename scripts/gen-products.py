#!/usr/bin/env python3
"""Regenerates fixtures/products/{catalog,failing}.json: 1200 deterministic products (ASIN, title,
brand, price, BSR, category) served by the SP-API and Keepa fakes, plus ids that always fail.
Deterministic: a fixed-seed LCG, no randomness from the environment. Run from the repo root."""
import json

SEED = 0x5EED_0003
state = SEED


def rnd(n):
    """Next value in [0, n) from a 64-bit LCG (Knuth's MMIX constants)."""
    global state
    state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (state >> 33) % n


ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
CATEGORIES = [
    ("Kitchen & Dining", "kitchen_display_on_website", 1055398),
    ("Home & Kitchen", "home_garden_display_on_website", 1063498),
    ("Sports & Outdoors", "sporting_goods_display_on_website", 3375251),
    ("Toys & Games", "toy_display_on_website", 165793011),
    ("Pet Supplies", "pet_products_display_on_website", 2619533011),
    ("Office Products", "office_product_display_on_website", 1064954),
    ("Tools & Home Improvement", "home_improvement_display_on_website", 228013),
    ("Beauty & Personal Care", "beauty_display_on_website", 3760911),
    ("Electronics", "ce_display_on_website", 172282),
    ("Garden & Outdoor", "lawn_and_garden_display_on_website", 2972638011),
]
ADJ = ["Stainless", "Bamboo", "Compact", "Heavy-Duty", "Silicone", "Portable", "Ergonomic",
       "Foldable", "Insulated", "Magnetic", "Rechargeable", "Non-Stick", "Waterproof", "Adjustable"]
NOUN = ["Spatula Set", "Water Bottle", "Desk Organizer", "Yoga Mat", "Dog Leash", "Cutting Board",
        "LED Lamp", "Garden Hose", "Tool Kit", "Phone Stand", "Lunch Box", "Storage Bins",
        "Resistance Bands", "Cat Toy", "Knife Sharpener", "Coffee Grinder"]
BRANDS = ["Acmeware", "Northpeak", "Brightline", "Kitchora", "Pawsome", "Deskly", "Trailhand",
          "Homenest", "Voltix", "Greenfold"]


def asin(seen):
    while True:
        a = "B0" + "".join(ALNUM[rnd(36)] for _ in range(8))
        if a not in seen:
            seen.add(a)
            return a


seen = set()
catalog = []
for i in range(1200):
    cat, group, cat_id = CATEGORIES[rnd(len(CATEGORIES))]
    brand = BRANDS[rnd(len(BRANDS))]
    catalog.append({
        "asin": asin(seen),
        "title": f"{brand} {ADJ[rnd(len(ADJ))]} {NOUN[rnd(len(NOUN))]}, {1 + rnd(6)} Pack",
        "brand": brand,
        "price": round(4.99 + rnd(19500) / 100, 2),
        "bsr": 1 + rnd(250000),
        "category": cat,
        "display_group": group,
        "category_id": cat_id,
    })
failing = {
    "_comment": "ids the fakes always fail: not_found answer 404 (valid ASIN shape, not in the "
                "catalog); server_error answer 500 from SP-API on every call",
    "not_found": [asin(seen) for _ in range(3)],
    "server_error": [asin(seen) for _ in range(3)],
}
with open("fixtures/products/catalog.json", "w") as f:
    # One product per line: small diffs, easy to grep.
    f.write("[\n" + ",\n".join(json.dumps(p) for p in catalog) + "\n]\n")
with open("fixtures/products/failing.json", "w") as f:
    json.dump(failing, f, indent=1)
    f.write("\n")
print(f"{len(catalog)} products, failing: {failing['not_found'] + failing['server_error']}")
