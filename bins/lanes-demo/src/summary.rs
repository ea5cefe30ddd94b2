//! The demo's summary table.

/// One checked expectation.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: &'static str,
    pub what: String,
    pub expected: String,
    pub got: String,
    pub detail: String,
    pub ok: bool,
}

pub fn print(rows: &[Row]) {
    println!(
        "\n{:<10} {:<34} {:<12} {:<12} {:<4} detail",
        "scenario", "check", "expected", "got", "ok"
    );
    println!("{}", "-".repeat(120));
    for r in rows {
        let mark = if r.ok { "yes" } else { "NO" };
        let detail: String = r.detail.chars().take(56).collect();
        println!(
            "{:<10} {:<34} {:<12} {:<12} {:<4} {detail}",
            r.scenario, r.what, r.expected, r.got, mark
        );
    }
    let passed = rows.iter().filter(|r| r.ok).count();
    println!(
        "{}\n{passed} of {} checks passed",
        "-".repeat(120),
        rows.len()
    );
}
