//! The `registry` binary: runs a consent and ISA registry node, and is the
//! administration tool for agreements, directives, carer grants, decisions
//! and the cluster until the web consoles exist.
//!
//! ```text
//! registry serve --config config/demo/registry.toml
//! registry isa list
//! registry directive set --id D1 --nhs 9000000009 --deny-organisation RAL --from 2026-11-21
//! registry decide --nhs 9000000009 --sender RRV --recipient RAL --category discharge-summary
//! ```

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
