//! `PriceTable`: USD per million tokens by model, parsed from `model=IN/OUT,...`, and the cost
//! of a call from its [`Usage`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::response::Usage;

/// One model's list price, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    /// Answer and thinking tokens.
    pub output_per_mtok: f64,
}

impl ModelPrice {
    pub fn cost(&self, usage: &Usage) -> f64 {
        (usage.prompt_tokens as f64 * self.input_per_mtok
            + usage.billed_output() as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// Prices by model name. A model not in the table is matched by its longest listed prefix
/// (`gemini-2.5-flash-001` → `gemini-2.5-flash`); an unknown model costs `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    models: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    /// Google's paid-tier list prices for prompts up to 200k tokens, as published when this was
    /// written. Configure your own with `--gemini-prices`.
    fn default() -> Self {
        let rows: [(&str, f64, f64); 7] = [
            ("gemini-2.5-pro", 1.25, 10.0),
            ("gemini-2.5-flash", 0.30, 2.50),
            ("gemini-2.5-flash-lite", 0.10, 0.40),
            ("gemini-2.0-flash", 0.10, 0.40),
            ("gemini-2.0-flash-lite", 0.075, 0.30),
            ("gemini-1.5-pro", 1.25, 5.0),
            ("gemini-1.5-flash", 0.075, 0.30),
        ];
        Self {
            models: rows
                .into_iter()
                .map(|(m, i, o)| {
                    (
                        m.to_owned(),
                        ModelPrice {
                            input_per_mtok: i,
                            output_per_mtok: o,
                        },
                    )
                })
                .collect(),
        }
    }
}

impl PriceTable {
    pub fn empty() -> Self {
        Self {
            models: BTreeMap::new(),
        }
    }

    /// Adds or replaces one model's price.
    pub fn set(&mut self, model: impl Into<String>, price: ModelPrice) {
        self.models.insert(model.into(), price);
    }

    /// Overrides this table's rows with `other`'s.
    pub fn merged(mut self, other: &PriceTable) -> Self {
        for (m, p) in &other.models {
            self.models.insert(m.clone(), *p);
        }
        self
    }

    pub fn price(&self, model: &str) -> Option<ModelPrice> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        if let Some(p) = self.models.get(model) {
            return Some(*p);
        }
        self.models
            .iter()
            .filter(|(m, _)| model.starts_with(m.as_str()))
            .max_by_key(|(m, _)| m.len())
            .map(|(_, p)| *p)
    }

    /// The cost of one call in USD, when the model's price is known.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }
}

impl FromStr for PriceTable {
    type Err = String;

    /// `gemini-2.5-flash=0.30/2.50,gemini-2.5-flash-lite=0.10/0.40` (USD per million input /
    /// output tokens).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut t = PriceTable::empty();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (model, prices) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not MODEL=IN/OUT (USD per million tokens)"))?;
            let (i, o) = prices
                .split_once('/')
                .ok_or_else(|| format!("{item:?}: give input/output prices, e.g. 0.30/2.50"))?;
            let num = |v: &str| {
                v.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| format!("{item:?}: {v:?} is not a price"))
            };
            t.set(
                model.trim(),
                ModelPrice {
                    input_per_mtok: num(i)?,
                    output_per_mtok: num(o)?,
                },
            );
        }
        Ok(t)
    }
}

impl fmt::Display for PriceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: Vec<String> = self
            .models
            .iter()
            .map(|(m, p)| format!("{m}={}/{}", p.input_per_mtok, p.output_per_mtok))
            .collect();
        f.write_str(&rows.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_use_the_longest_prefix_and_bill_thinking_as_output() {
        let t = PriceTable::default();
        let u = Usage {
            prompt_tokens: 1_000_000,
            output_tokens: 500_000,
            thoughts_tokens: 500_000,
            total_tokens: 2_000_000,
        };
        let flash = t.cost("gemini-2.5-flash", &u).expect("known");
        assert!((flash - (0.30 + 2.50)).abs() < 1e-9, "{flash}");
        let lite = t.cost("gemini-2.5-flash-lite-001", &u).expect("prefix");
        assert!((lite - (0.10 + 0.40)).abs() < 1e-9, "{lite}");
        assert_eq!(t.cost("claude", &u), None);
    }

    #[test]
    fn tables_parse_and_merge() {
        let t: PriceTable = "my-model=1/2, gemini-2.5-flash=0.5/3"
            .parse()
            .expect("valid");
        let merged = PriceTable::default().merged(&t);
        assert_eq!(
            merged.price("my-model").map(|p| p.output_per_mtok),
            Some(2.0)
        );
        assert_eq!(
            merged.price("gemini-2.5-flash").map(|p| p.input_per_mtok),
            Some(0.5)
        );
        for bad in ["x", "x=1", "x=a/b", "x=-1/2"] {
            assert!(bad.parse::<PriceTable>().is_err(), "{bad}");
        }
        assert_eq!(t.to_string(), "gemini-2.5-flash=0.5/3,my-model=1/2");
    }
}
