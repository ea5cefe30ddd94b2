//! The deployment check: the Dockerfile, docker-compose.yml and the systemd units use only
//! flags and environment variables the binaries really have (read from their `--help`), so a
//! renamed flag fails here instead of in a container or on a server.
//!
//! Modules: `support` (builds the Dockerfile's binaries, runs their help), `compose`, `systemd`.

mod compose;
mod support;
mod systemd;

/// Every binary the Dockerfile ships builds (a misspelt name fails `cargo build --bin`) and
/// prints its help; the image installs them all into /usr/local/bin.
#[test]
fn the_dockerfile_builds_every_binary_it_lists() {
    let listed = support::dockerfile_bins();
    for bin in [
        "broker",
        "worker",
        "browser-bot",
        "photo-worker",
        "chunker",
        "collector",
        "fakes",
    ] {
        assert!(listed.iter().any(|b| b == bin), "LANES_BINS lacks {bin}");
    }
    let bins = support::bins();
    let mut problems = Vec::new();
    for bin in &listed {
        match bins.help(bin, &[]) {
            Ok(help) => assert!(help.accepts("--help"), "{bin}: {help:?}"),
            Err(e) => problems.push(e),
        }
    }
    let dockerfile = support::read("Dockerfile");
    for needle in [
        "cargo build --release --locked",
        "for b in $LANES_BINS; do install -m 0755 \"target/release/$b\" /out/; done",
        "COPY --from=builder /out/ /usr/local/bin/",
    ] {
        if !dockerfile.contains(needle) {
            problems.push(format!("Dockerfile: no `{needle}`"));
        }
    }
    support::assert_none(problems);
}
