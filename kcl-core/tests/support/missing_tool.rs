//! What a test does when an outside tool it drives (python3 with a package, chromium, …) is
//! missing: skip with a message nobody can miss, or fail when `KCL_REQUIRE_TEST_TOOLS=1` (CI sets
//! it, since CI installs every tool). Shared by the test crates with
//! `#[path = ".../kcl-core/tests/support/missing_tool.rs"] mod missing_tool;`.

#![allow(dead_code)]

use std::io::Write;

/// The variable that turns a skip into a failure.
pub(crate) const REQUIRE_ENV: &str = "KCL_REQUIRE_TEST_TOOLS";

/// Reports that `test` cannot run because of `reason`: panics when `KCL_REQUIRE_TEST_TOOLS=1`,
/// otherwise writes a loud message straight to the stderr handle (libtest captures `eprintln!`
/// of passing tests) and returns, so the caller returns too.
pub(crate) fn skip_for_missing_tool(test: &str, reason: &str) {
    if std::env::var(REQUIRE_ENV).is_ok_and(|value| value == "1") {
        panic!("{REQUIRE_ENV}=1 but {test} cannot run: {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! SKIPPING {test}: {reason} !!!!!\n"
    );
}
