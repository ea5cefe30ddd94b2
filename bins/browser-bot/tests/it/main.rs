//! browser-bot against real headless Chromium, a real Redis and the bank fake on 127.0.0.1:0:
//! in-process bots (one shared browser) and `browser-bot` processes (kill, secrets in logs).

mod bots;
mod process;
mod support;
