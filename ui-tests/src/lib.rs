//! Compile-fail and compile-pass tests of the dz macros; see `tests/`.
