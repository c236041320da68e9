//! The rtfuse CLI.
fn main() {}
