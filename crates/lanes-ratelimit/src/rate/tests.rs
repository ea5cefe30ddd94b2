//! Parsing, validation and display of `Rate`.

use std::time::Duration;

use super::Rate;
use crate::Error;

fn ok(s: &str) -> Rate {
    match s.parse::<Rate>() {
        Ok(r) => r,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn reason(s: &str) -> String {
    match s.parse::<Rate>() {
        Ok(r) => panic!("{s:?} should be refused, parsed as {r}"),
        Err(Error::InvalidRate { input, reason }) => {
            assert_eq!(input, s, "the error names the input");
            reason
        }
        Err(other) => panic!("{s:?}: expected InvalidRate, got {other:?}"),
    }
}

#[test]
fn parses_the_common_forms() {
    let r = ok("8/s");
    assert_eq!(
        (r.count(), r.period(), r.burst()),
        (8, Duration::from_secs(1), 1)
    );
    assert_eq!(r.emission_interval(), Duration::from_millis(125));

    let r = ok("50/m");
    assert_eq!((r.count(), r.period()), (50, Duration::from_secs(60)));
    assert_eq!(r.emission_interval(), Duration::from_millis(1200));

    let r = ok("3000/h");
    assert_eq!((r.count(), r.period()), (3000, Duration::from_secs(3600)));

    let r = ok("8/s,burst=4");
    assert_eq!((r.count(), r.burst()), (8, 4));

    let r = ok(" 5 / 10s , burst = 2 ");
    assert_eq!(
        (r.count(), r.period(), r.burst()),
        (5, Duration::from_secs(10), 2)
    );

    assert_eq!(ok("100/ms").emission_interval(), Duration::from_micros(10));
    assert_eq!(ok("1/d").period(), Duration::from_secs(86_400));
    assert_eq!(ok("2/Minute"), ok("2/m"));
    assert_eq!(ok("7/sec"), ok("7/s"));
}

#[test]
fn display_round_trips() {
    for s in [
        "8/s",
        "50/m",
        "3000/h",
        "8/s,burst=4",
        "5/10s",
        "1/d",
        "3/250ms",
        "1/90s",
    ] {
        let r = ok(s);
        assert_eq!(r.to_string(), s);
        assert_eq!(ok(&r.to_string()), r);
    }
    assert_eq!(ok("120/60s").to_string(), "120/m");
}

#[test]
fn interval_rounds_up_so_rounding_is_never_looser() {
    let r = ok("3/s");
    assert_eq!(r.emission_interval(), Duration::from_micros(333_334));
    assert!(r.emission_interval() * 3 >= Duration::from_secs(1));
}

#[test]
fn window_bound_is_rate_times_window_plus_burst() {
    assert_eq!(ok("50/s").max_in_window(Duration::from_secs(1)), 51);
    assert_eq!(
        ok("50/s,burst=5").max_in_window(Duration::from_secs(2)),
        105
    );
    assert_eq!(ok("8/s").max_in_window(Duration::from_millis(100)), 1);
}

#[test]
fn refuses_malformed_strings_with_a_reason() {
    assert!(reason("").contains("COUNT/PERIOD"));
    assert!(reason("8").contains("COUNT/PERIOD"));
    assert!(reason("eight/s").contains("whole number"));
    assert!(reason("0.5/s").contains("1/2s"));
    assert!(reason("/s").contains("missing count"));
    assert!(reason("8/").contains("missing unit"));
    assert!(reason("8/s,burst").contains("burst=4"));
    assert!(reason("8/s,burst=x").contains("whole number"));
    assert!(reason("8/s,burst=2,burst=3").contains("twice"));
    assert!(reason("8/s,jitter=2").contains("unknown option"));
    assert!(reason("99999999999/s").contains("too large"));
}

#[test]
fn refuses_zero_and_negative_rates() {
    assert!(reason("0/s").contains("positive"));
    assert!(reason("-5/s").contains("positive"));
    assert!(reason("5/0s").contains("positive"));
    assert!(matches!(
        Rate::per_second(0),
        Err(Error::InvalidRate { .. })
    ));
    assert!(matches!(
        Rate::new(1, Duration::ZERO),
        Err(Error::InvalidRate { .. })
    ));
}

#[test]
fn refuses_a_burst_of_zero() {
    assert!(reason("8/s,burst=0").contains("at least 1"));
    assert!(reason("8/s,burst=-1").contains("at least 1"));
    match ok("8/s").with_burst(0) {
        Err(Error::InvalidRate { input, reason }) => {
            assert_eq!(input, "8/s,burst=0");
            assert!(reason.contains("at least 1"));
        }
        other => panic!("expected InvalidRate, got {other:?}"),
    }
}

#[test]
fn refuses_unknown_units() {
    assert!(reason("8/fortnight").contains("unknown unit"));
    assert!(reason("8/w").contains("unknown unit"));
    assert!(reason("8/5").contains("missing unit"));
}

#[test]
fn refuses_out_of_range_values() {
    assert!(reason("2000000/s").contains("microsecond"));
    assert!(reason("1/400d").contains("365 days"));
    assert!(reason("1/d,burst=400").contains("365 days"));
    assert!(reason("1000/s,burst=2000000").contains("at most"));
}

#[test]
fn error_message_is_lowercase_and_names_the_input() {
    let err = "8/fortnight"
        .parse::<Rate>()
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "invalid rate \"8/fortnight\": unknown unit \"fortnight\": use ms, s, m, h or d"
    );
}
