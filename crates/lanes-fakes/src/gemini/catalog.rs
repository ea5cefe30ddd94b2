//! What the Gemini fake "sees": an image's dominant colour (ignoring its background) and its
//! shape (portrait, square, landscape) name one of 33 catalog items, each with a resale price.
//! Deterministic, so tests know the right answer for every fixture photo.

use std::collections::HashMap;

use image::{DynamicImage, GenericImageView};

/// The named colours an image's pixels are sorted into (nearest in RGB).
pub const PALETTE: [(&str, [u8; 3]); 11] = [
    ("red", [200, 30, 30]),
    ("orange", [235, 130, 20]),
    ("yellow", [235, 210, 40]),
    ("green", [40, 160, 60]),
    ("blue", [40, 80, 200]),
    ("purple", [130, 50, 170]),
    ("pink", [240, 140, 190]),
    ("brown", [120, 75, 40]),
    ("black", [20, 20, 20]),
    ("white", [245, 245, 245]),
    ("grey", [128, 128, 128]),
];

/// An image's orientation class: more than 1.2 × wider than tall is landscape, more than
/// 1.2 × taller than wide is portrait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Shape {
    Portrait,
    Square,
    Landscape,
}

impl Shape {
    pub fn of(width: u32, height: u32) -> Self {
        let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
        if w > h * 1.2 {
            Self::Landscape
        } else if h > w * 1.2 {
            Self::Portrait
        } else {
            Self::Square
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portrait => "portrait",
            Self::Square => "square",
            Self::Landscape => "landscape",
        }
    }
}

/// One thing the fake can recognise.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub name: &'static str,
    pub category: &'static str,
    pub brand: Option<&'static str>,
    /// Typical resale price in USD, in good condition.
    pub price_usd: f64,
}

impl Item {
    pub fn low_usd(&self) -> f64 {
        (self.price_usd * 0.8).round()
    }

    pub fn high_usd(&self) -> f64 {
        (self.price_usd * 1.2).round()
    }
}

const fn item(
    name: &'static str,
    category: &'static str,
    brand: Option<&'static str>,
    price_usd: f64,
) -> Item {
    Item {
        name,
        category,
        brand,
        price_usd,
    }
}

/// The catalog: colour × shape → item (square, landscape, portrait per colour).
pub const ITEMS: [(&str, [Item; 3]); 11] = [
    (
        "red",
        [
            item(
                "Red Cast-Iron Dutch Oven",
                "Cookware",
                Some("Le Creuset"),
                180.0,
            ),
            item("Red Road Bike", "Bicycles", Some("Trek"), 450.0),
            item(
                "Red Electric Guitar",
                "Musical Instruments",
                Some("Fender"),
                650.0,
            ),
        ],
    ),
    (
        "orange",
        [
            item("Orange Basketball", "Sports", Some("Spalding"), 22.0),
            item(
                "Orange Sit-On-Top Kayak",
                "Outdoor",
                Some("Perception"),
                320.0,
            ),
            item("Orange Hiking Backpack", "Outdoor", Some("Osprey"), 110.0),
        ],
    ),
    (
        "yellow",
        [
            item("Yellow Cordless Drill", "Tools", Some("DeWalt"), 95.0),
            item("Yellow Toy Excavator", "Toys", Some("Tonka"), 30.0),
            item("Yellow Rain Jacket", "Clothing", Some("Patagonia"), 85.0),
        ],
    ),
    (
        "green",
        [
            item("Green Ceramic Planter", "Home & Garden", None, 28.0),
            item("Green Camping Tent", "Outdoor", Some("REI"), 140.0),
            item("Green Glass Vase", "Home Decor", None, 24.0),
        ],
    ),
    (
        "blue",
        [
            item("Blue Denim Jacket", "Clothing", Some("Levi's"), 45.0),
            item("Blue Velvet Sofa", "Furniture", Some("West Elm"), 650.0),
            item(
                "Blue Insulated Water Bottle",
                "Kitchen",
                Some("Hydro Flask"),
                28.0,
            ),
        ],
    ),
    (
        "purple",
        [
            item("Purple Yoga Mat", "Fitness", Some("Lululemon"), 40.0),
            item("Purple Electric Scooter", "Sports", Some("Razor"), 180.0),
            item("Purple Table Lamp", "Home Decor", Some("IKEA"), 30.0),
        ],
    ),
    (
        "pink",
        [
            item("Pink Stand Mixer", "Kitchen", Some("KitchenAid"), 260.0),
            item(
                "Pink Hard-Shell Suitcase",
                "Travel",
                Some("Samsonite"),
                90.0,
            ),
            item("Pink Hair Dryer", "Beauty", Some("Dyson"), 280.0),
        ],
    ),
    (
        "brown",
        [
            item("Brown Leather Handbag", "Fashion", Some("Coach"), 120.0),
            item(
                "Brown Leather Sofa",
                "Furniture",
                Some("Pottery Barn"),
                800.0,
            ),
            item("Brown Leather Boots", "Shoes", Some("Red Wing"), 150.0),
        ],
    ),
    (
        "black",
        [
            item(
                "Black Mirrorless Camera",
                "Electronics",
                Some("Sony"),
                850.0,
            ),
            item(
                "Black Office Chair",
                "Furniture",
                Some("Herman Miller"),
                450.0,
            ),
            item("Black Floor Lamp", "Home Decor", Some("IKEA"), 45.0),
        ],
    ),
    (
        "white",
        [
            item("White Wireless Earbuds", "Electronics", Some("Apple"), 90.0),
            item("White Game Console", "Electronics", Some("Sony"), 300.0),
            item("White Sneakers", "Shoes", Some("Nike"), 70.0),
        ],
    ),
    (
        "grey",
        [
            item("Grey Laptop", "Electronics", Some("Apple"), 600.0),
            item("Grey Sectional Sofa", "Furniture", Some("IKEA"), 700.0),
            item("Grey Tower Fan", "Appliances", Some("Dyson"), 200.0),
        ],
    ),
];

/// The item for a colour and a shape.
pub fn item_for(colour: &str, shape: Shape) -> Option<&'static Item> {
    let (_, items) = ITEMS.iter().find(|(c, _)| *c == colour)?;
    Some(match shape {
        Shape::Square => &items[0],
        Shape::Landscape => &items[1],
        Shape::Portrait => &items[2],
    })
}

/// The catalog item named in `text` (case-insensitive; the longest name wins).
pub fn item_named_in(text: &str) -> Option<&'static Item> {
    let text = text.to_lowercase();
    ITEMS
        .iter()
        .flat_map(|(_, items)| items.iter())
        .filter(|i| text.contains(&i.name.to_lowercase()))
        .max_by_key(|i| i.name.len())
}

/// What the fake makes of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub colour: &'static str,
    pub background: &'static str,
    pub shape: Shape,
    /// Share of the non-background pixels that have the dominant colour (0..1).
    pub share: f64,
    pub item: &'static Item,
}

/// The nearest palette colour of a pixel.
pub fn nearest(rgb: [u8; 3]) -> &'static str {
    PALETTE
        .iter()
        .min_by_key(|(_, p)| {
            (0..3)
                .map(|i| {
                    let d = i32::from(rgb[i]) - i32::from(p[i]);
                    d * d
                })
                .sum::<i32>()
        })
        .map_or("grey", |(n, _)| n)
}

/// Looks at an image: the background is the commonest colour along its border; the item is
/// the commonest other colour (sampling about 40 000 pixels).
pub fn look(img: &DynamicImage) -> Seen {
    let (w, h) = img.dimensions();
    let rgb = img.to_rgb8();
    let px = |x: u32, y: u32| rgb.get_pixel(x, y).0;
    let mut border: HashMap<&str, u32> = HashMap::new();
    let step_x = (w / 64).max(1);
    let step_y = (h / 64).max(1);
    for x in (0..w).step_by(step_x as usize) {
        *border.entry(nearest(px(x, 0))).or_default() += 1;
        *border.entry(nearest(px(x, h - 1))).or_default() += 1;
    }
    for y in (0..h).step_by(step_y as usize) {
        *border.entry(nearest(px(0, y))).or_default() += 1;
        *border.entry(nearest(px(w - 1, y))).or_default() += 1;
    }
    let background = commonest(&border).unwrap_or("white");
    let stride = (((u64::from(w) * u64::from(h)) as f64 / 40_000.0)
        .sqrt()
        .floor() as u32)
        .max(1);
    let mut inner: HashMap<&str, u32> = HashMap::new();
    let mut total = 0u32;
    for y in (0..h).step_by(stride as usize) {
        for x in (0..w).step_by(stride as usize) {
            let c = nearest(px(x, y));
            if c != background {
                *inner.entry(c).or_default() += 1;
                total += 1;
            }
        }
    }
    let colour = commonest(&inner).unwrap_or(background);
    let share = if total == 0 {
        0.0
    } else {
        f64::from(inner.get(colour).copied().unwrap_or(0)) / f64::from(total)
    };
    let shape = Shape::of(w, h);
    let item = item_for(colour, shape)
        .or_else(|| item_for("grey", shape))
        .unwrap_or(&ITEMS[10].1[0]);
    Seen {
        colour,
        background,
        shape,
        share,
        item,
    }
}

fn commonest(counts: &HashMap<&'static str, u32>) -> Option<&'static str> {
    // Ties go to the palette's order, so the answer never depends on hash order.
    PALETTE
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| counts.contains_key(n))
        .max_by(|a, b| {
            counts[a]
                .cmp(&counts[b])
                .then_with(|| rank(b).cmp(&rank(a)))
        })
}

fn rank(name: &str) -> usize {
    PALETTE
        .iter()
        .position(|(n, _)| *n == name)
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_colour_and_shape_has_an_item() {
        for (colour, _) in PALETTE {
            for shape in [Shape::Portrait, Shape::Square, Shape::Landscape] {
                let item = item_for(colour, shape).expect("an item");
                assert!(
                    item.name.to_lowercase().starts_with(colour),
                    "{}",
                    item.name
                );
                assert_eq!(
                    item_named_in(&format!("price the {} please", item.name)),
                    Some(item)
                );
            }
        }
        assert_eq!(Shape::of(480, 320), Shape::Landscape);
        assert_eq!(Shape::of(320, 480), Shape::Portrait);
        assert_eq!(Shape::of(400, 380), Shape::Square);
    }
}
