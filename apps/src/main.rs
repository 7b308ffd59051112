//! The `linerate` binary.

fn main() -> anyhow::Result<()> {
    Ok(())
}
