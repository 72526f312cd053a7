//! Slow and idle clients are cut off, connections are capped, and every answer carries the
//! security headers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::TestApp;

/// A guard against hanging, far above the timeouts under test: a read that waits this long
/// means the server never closed the connection.
const HANG: Duration = Duration::from_secs(30);

fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(&app.addr).expect("connect");
    stream.set_read_timeout(Some(HANG)).unwrap();
    stream
}

/// Everything the server sends until it closes the connection.
fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // A reset after the answer is a close too.
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the server did not close the connection: {err}"),
    }
    String::from_utf8(answer).expect("UTF-8 answer")
}

#[tokio::test]
async fn half_sent_requests_get_408_and_are_closed_while_a_normal_client_is_served() {
    let app = TestApp::spawn_with(&["--header-read-timeout", "1", "--idle-timeout", "2"]).await;
    let token = app.login("operator").await;
    // Connections that send half a request head, a whole head but half its body, and one
    // that sends nothing at all.
    let mut slow: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = connect(&app);
            write!(
                stream,
                "GET /api/v1/me HTTP/1.1\r\nHost: {}\r\nAuthorization: Bea",
                app.addr
            )
            .unwrap();
            stream
        })
        .collect();
    slow.extend((0..3).map(|_| {
        let mut stream = connect(&app);
        write!(
            stream,
            "POST /api/v1/cases HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\"",
            app.addr
        )
        .unwrap();
        stream
    }));
    let mut silent = connect(&app);

    // Meanwhile a normal client is served.
    let res = app.get(Some(&token), "/api/v1/me").await;
    assert_eq!(res.status(), 200);

    let slow_answers = tokio::task::spawn_blocking(move || {
        let answers: Vec<String> = slow.iter_mut().map(read_until_closed).collect();
        (answers, read_until_closed(&mut silent))
    })
    .await
    .unwrap();
    let (answers, silent_answer) = slow_answers;
    for answer in answers {
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
        assert!(answer.contains("\"type\":\"request_timeout\""), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // Nothing asked, nothing answered: an idle connection is just closed.
    assert_eq!(silent_answer, "");
    // And the service still serves (on a new connection: the idle ones were closed).
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let res = fresh
        .get(app.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn beyond_the_connection_cap_a_new_connection_gets_503_with_retry_after() {
    let app = TestApp::spawn_with(&["--max-connections", "3"]).await;
    // Three connections in use (one request served on each, kept alive).
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = connect(&app);
            write!(
                stream,
                "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
                app.addr
            )
            .unwrap();
            let mut head = [0u8; 12];
            stream.read_exact(&mut head).unwrap();
            assert_eq!(&head, b"HTTP/1.1 200");
            stream
        })
        .collect();
    let mut refused = connect(&app);
    write!(
        refused,
        "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n",
        app.addr
    )
    .unwrap();
    let answer = tokio::task::spawn_blocking(move || read_until_closed(&mut refused))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
    assert!(
        answer.contains("\"type\":\"too_many_connections\""),
        "{answer}"
    );
    // Once one closes, a new connection is served again (the server notices the close as
    // soon as it reads it; a few attempts cover the moment in between).
    held.pop();
    let mut served = false;
    for _ in 0..100 {
        let mut stream = connect(&app);
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            app.addr
        )
        .unwrap();
        let answer = tokio::task::spawn_blocking(move || read_until_closed(&mut stream))
            .await
            .unwrap();
        if answer.starts_with("HTTP/1.1 200 ") {
            served = true;
            break;
        }
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a freed slot was never given to a new connection");
    drop(held);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let token = app.login("operator").await;
    let answers = [
        ("a JSON answer", app.get(Some(&token), "/api/v1/me").await),
        ("a problem answer", app.get(None, "/api/v1/me").await),
        (
            "an unknown route",
            app.get(Some(&token), "/api/v1/nowhere").await,
        ),
        ("/healthz", app.get(None, "/healthz").await),
    ];
    for (what, res) in answers {
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        assert_eq!(header("cache-control"), "no-store", "{what}");
        let csp = header("content-security-policy");
        assert!(csp.contains("default-src 'self'"), "{what}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    }
}
