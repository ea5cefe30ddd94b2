//! End-to-end tests of the chunker: real `chunker` processes, a real Redis, the SP-API and Keepa
//! fakes bound on 127.0.0.1:0 in this process. Rates are scaled up (SP-API 200/s, Keepa 100/s in
//! both the fakes and the limiters) so 1000 products take seconds, not minutes.

mod jobs;
mod support;
