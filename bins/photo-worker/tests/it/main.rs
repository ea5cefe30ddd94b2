//! Integration tests of the photo worker against the Gemini fake (served on 127.0.0.1:0) and a
//! real Redis: in this process (`analyze`) and as real processes (`process`).

mod analyze;
mod fuzz;
mod process;
mod secrets;
mod support;
