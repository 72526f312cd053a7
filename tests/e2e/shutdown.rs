//! Graceful shutdown: SIGTERM stops accepting, finishes the request in flight, exits 0, and
//! what it acknowledged is there after a restart.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{TestApp, intake};

/// Reads from `stream` until `buf` ends a header block (`\r\n\r\n`).
fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read a response head");
        assert!(
            n > 0,
            "connection closed early: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    String::from_utf8(buf).expect("ASCII head")
}

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let body = serde_json::to_vec(&intake("关机时正在受理的工单")).unwrap();
    let (first, rest) = body.split_at(body.len() / 2);

    // A create whose body is still on its way: `Expect: 100-continue` tells us when the
    // server has authenticated it and started reading the body, i.e. it is in flight.
    let mut stream = TcpStream::connect(&app.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/cases HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {op}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        app.addr,
        body.len()
    )
    .unwrap();
    let head = read_head(&mut stream);
    assert!(
        head.starts_with("HTTP/1.1 100"),
        "expected 100 Continue, got {head:?}"
    );
    stream.write_all(first).unwrap();
    stream.flush().unwrap();

    app.terminate();
    // Bounded wait until the server stops accepting new connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(&app.addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "still accepting connections after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The request in flight is finished and answered.
    stream.write_all(rest).unwrap();
    stream.flush().unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read the answer");
    let response = String::from_utf8(response).expect("UTF-8 answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("a full HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 201"),
        "the request in flight was not finished: {response}"
    );
    let created: Value = serde_json::from_str(body).expect("JSON body");
    let id = created["id"].as_str().expect("id").to_owned();

    let status = app.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status:?}"
    );

    app.restart().await;
    let op = app.login("operator").await;
    let case = app.case(&op, &id).await;
    assert_eq!(case["title"], "关机时正在受理的工单");
    assert_eq!(case["version"], created["version"]);
}

#[tokio::test]
async fn sigterm_on_an_idle_server_exits_0_and_keeps_every_case() {
    let mut app = TestApp::spawn().await;
    let op = app.login("operator").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.accept(&op, &format!("关机前的工单 {i}")).await);
    }
    app.terminate();
    let status = app.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}");
    app.restart().await;
    let op = app.login("operator").await;
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            app.case(&op, id).await["title"],
            format!("关机前的工单 {i}")
        );
    }
}
