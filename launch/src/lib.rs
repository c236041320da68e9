//! rtfuse CLI library.
