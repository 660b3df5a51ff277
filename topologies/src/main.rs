//! `shop`: the shop topology binary. See `shop --help`.

// Input and I/O reach nearly every path: a failure is a typed error, never a panic (tests may).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::todo)
)]

use std::process::ExitCode;

/// Every record allocates its key and payload strings, and several copies travel through
/// the dataflow; glibc's allocator spent a quarter of the CPU of the end-to-end benchmark
/// on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::app::main(sluice_topologies::Shop)
}
