//! `shop`: the shop topology binary. See `shop --help`.

use std::process::ExitCode;

/// Every record allocates its key and payload strings, and several copies travel through
/// the dataflow; glibc's allocator spent a quarter of the CPU of the end-to-end benchmark
/// on them (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::app::main(sluice_topologies::Shop)
}
