//! The `kcl` command-line tool (work in progress).

fn main() {}
