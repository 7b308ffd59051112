//! stub
use crate::bypass::LinkOptions;
pub fn run(_u: &[String], _o: Option<&std::path::Path>, _c: usize, _l: &LinkOptions) -> anyhow::Result<()> { anyhow::bail!("x") }
