//! lanes-browser against real headless Chromium and a loopback page server (the bank fake).

mod pool;
mod support;
