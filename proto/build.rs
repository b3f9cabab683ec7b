//! Compiles the .proto files with protox, a pure-Rust protobuf compiler, so
//! that building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "lhcie/canonical/v1/envelope.proto",
        "lhcie/hub/v1/exchange.proto",
        "lhcie/registry/v1/registry.proto",
        "lhcie/registry/v1/raft.proto",
    ];
    let descriptors = protox::compile(protos, ["."])?;
    // Kept for reflection (proto3 JSON in tests and documentation).
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("lhcie_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        // Payloads and attachments are shared, not copied, as they move
        // between the wire types, the domain types and the broker.
        .bytes(".")
        .include_file("lhcie.rs")
        .emit_rerun_if_changed(false)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=lhcie");
    Ok(())
}
