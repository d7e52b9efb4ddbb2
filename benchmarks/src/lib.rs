//! The benchmark runner's parts. The binaries are `bench` (the runner), `baseline-hyper` (the
//! ceiling) and `peer-rmcp` (rmcp's stateless server with one tool); the README's "Performance"
//! section says what is measured and how.

pub mod bare_search;
pub mod fixtures;
pub mod http;
pub mod nginx;
pub mod pg;
pub mod procs;
pub mod report;
pub mod round_trips;
pub mod scale;
pub mod svg;
pub mod wrk;
