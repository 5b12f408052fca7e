//! The macros' diagnostics (`ui/`: each case must fail to compile with the error in its
//! `.stderr`) and what they accept (`pass/`: each case must compile and run).
//!
//! Regenerate the snapshots with `TRYBUILD=overwrite cargo test -p dz-ui-tests`, then read
//! every changed `.stderr` as a user would.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/pass/*.rs");
}
