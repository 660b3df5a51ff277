//! `shop`: the shop topology binary. See `shop --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    sluice::app::main(sluice_topologies::Shop)
}
