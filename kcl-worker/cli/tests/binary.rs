//! The `kcl` binary starts and lists its commands. (Having an integration test also makes
//! `cargo test --workspace` build the plain `kcl` binary into `target/<profile>/`, where the
//! multi-process suites in `tests/` look for it.)

use std::process::Command;

#[test]
fn kcl_lists_its_commands() {
    let output = Command::new(env!("CARGO_BIN_EXE_kcl"))
        .arg("--help")
        .output()
        .expect("kcl runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in [
        "demo", "worker", "produce", "stream", "firehose", "leases", "status",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    assert!(help.contains("--endpoint"), "global --endpoint:\n{help}");
}
