//! The product catalog the SP-API and Keepa fakes serve: `fixtures/products/catalog.json`
//! (deterministic, made by `scripts/gen-products.py`) and `failing.json` (ids that always fail:
//! `not_found` answer 404, `server_error` answer 500).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One product of the fixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub asin: String,
    pub title: String,
    pub brand: String,
    /// Current price in USD.
    pub price: f64,
    /// Best-seller rank in its category.
    pub bsr: u64,
    pub category: String,
    pub display_group: String,
    pub category_id: u64,
}

#[derive(Debug, Default, Deserialize)]
struct Failing {
    #[serde(default)]
    not_found: Vec<String>,
    #[serde(default)]
    server_error: Vec<String>,
}

/// The catalog, indexed by ASIN.
#[derive(Debug, Default)]
pub struct Catalog {
    products: Vec<Product>,
    by_asin: HashMap<String, usize>,
    not_found: Vec<String>,
    server_error: HashSet<String>,
    server_error_list: Vec<String>,
}

impl Catalog {
    /// Loads `<fixtures>/products/catalog.json` and `failing.json`.
    pub fn load(fixtures: &Path) -> Result<Self, String> {
        let dir = fixtures.join("products");
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| format!("read {}: {e}", path.display()))
        };
        let products: Vec<Product> = serde_json::from_slice(&read("catalog.json")?)
            .map_err(|e| format!("parse catalog.json: {e}"))?;
        let failing: Failing = serde_json::from_slice(&read("failing.json")?)
            .map_err(|e| format!("parse failing.json: {e}"))?;
        Ok(Self::new(products, failing.not_found, failing.server_error))
    }

    pub fn new(products: Vec<Product>, not_found: Vec<String>, server_error: Vec<String>) -> Self {
        let by_asin = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.asin.clone(), i))
            .collect();
        Self {
            products,
            by_asin,
            not_found,
            server_error: server_error.iter().cloned().collect(),
            server_error_list: server_error,
        }
    }

    pub fn get(&self, asin: &str) -> Option<&Product> {
        self.by_asin.get(asin).map(|i| &self.products[*i])
    }

    /// Every product, in fixture order.
    pub fn products(&self) -> &[Product] {
        &self.products
    }

    /// Valid ASINs the catalog does not hold (404).
    pub fn not_found(&self) -> &[String] {
        &self.not_found
    }

    /// ASINs whose every SP-API call fails with 500.
    pub fn server_error(&self) -> &[String] {
        &self.server_error_list
    }

    pub fn fails_with_500(&self, asin: &str) -> bool {
        self.server_error.contains(asin)
    }
}

/// True for the shape of an ASIN: ten of `A-Z 0-9`.
pub fn is_asin(s: &str) -> bool {
    s.len() == 10
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
