//! `minqing serve --store kurrentdb://…` as an operator starts it. No KurrentDB server can be
//! installed where these tests run, so what is checked is the start against a server that is
//! not there: a clear refusal, no password in the output (the store's contract against a real
//! server is `src/store/kurrent.rs`, run with `MINQING_KURRENTDB_URL`).

use std::process::Command;

/// A server that cannot be reached stops the start with a message saying so, and neither the
/// URL nor its password reaches the output.
#[test]
fn a_kurrentdb_store_that_cannot_be_reached_stops_the_start_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let url = format!("kurrentdb://admin:s3cret-pw@127.0.0.1:{port}?tls=false");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_minqing"));
    serve
        .args(["serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .env("MINQING_STORE", &url)
        .env("RUST_LOG", "info");
    let (status, stderr) = crate::helpers::run_to_end(serve);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("failed to open the KurrentDB event store"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password reached the output: {stderr}"
    );
    assert!(
        !stderr.contains("kurrentdb://"),
        "the URL reached the output: {stderr}"
    );
}
