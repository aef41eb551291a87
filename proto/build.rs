//! Compiles the `.proto` contracts with `protox` (pure Rust, so no `protoc`
//! is needed) and generates tonic code, plus a descriptor set for reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/polybot/v1/results.proto"];
    for p in protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    // compile_fds does not write the descriptor set itself, so reflection's
    // copy is encoded here from the same compilation.
    std::fs::write(
        out.join("polybot_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
