# syntax=docker/dockerfile:1
# Lanes: one slim image with every deployable binary, and a browser-bot variant with Chromium.
#
#   docker build -t lanes .                                   # broker, workers, fakes
#   docker build -t lanes-browser-bot --target browser-bot .  # the same plus Debian's chromium
#
# Chromium (~300 MB installed) is needed only by browser-bot, so it lives in its own final
# stage: the broker and the other workers stay slim. docker-compose.yml builds both.

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
# Every binary the runtime image ships; the compose check test (crates/lanes-deploy) reads this
# line and fails when a service or systemd unit runs a binary that is not in it.
ARG LANES_BINS="broker worker browser-bot photo-worker chunker collector fakes"
WORKDIR /src
COPY . .
# The registry and target directory are cache mounts (not image layers), so the binaries are
# copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    cargo build --release --locked $(for b in $LANES_BINS; do printf -- '--bin %s ' "$b"; done); \
    mkdir -p /out; \
    for b in $LANES_BINS; do install -m 0755 "target/release/$b" /out/; done

# ---- runtime: broker, worker, chunker, photo-worker, collector, fakes ------------------------
FROM debian:bookworm-slim AS runtime
# ca-certificates: rustls verifies real API endpoints (Gemini, SP-API, Keepa) against the
# system roots. No curl: the compose healthchecks use bash's /dev/tcp and the binaries' own
# `inspect`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 lanes \
    && useradd --system --uid 10001 --gid lanes --home-dir /var/lib/lanes --create-home \
       --shell /usr/sbin/nologin lanes \
    && install -d -o lanes -g lanes /var/lib/lanes/channels
COPY --from=builder /out/ /usr/local/bin/
# The fakes' fixtures (pages, product lists, photos, channel dumps) and the demo ticket command;
# a real deployment points --ticket-command at its own program.
COPY fixtures /usr/share/lanes/fixtures
COPY scripts/execute-ticket.sh /usr/share/lanes/execute-ticket.sh
USER lanes
WORKDIR /var/lib/lanes
CMD ["broker", "--help"]

# ---- browser-bot: the runtime plus Debian's chromium -----------------------------------------
FROM runtime AS browser-bot
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
USER lanes
CMD ["browser-bot"]
