//! HTTPS with a given certificate. Skipped, with the reason printed, when the `openssl` command
//! (used to make a throwaway self-signed certificate) is not installed.

use broker::engine::{Broker, BrokerConfig};
use broker::server::{ServerOptions, TlsFiles};

#[tokio::test]
async fn serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(output) if output.status.success() => {}
        _ => {
            println!("skipped: the openssl command could not make a test certificate");
            return;
        }
    }
    let broker = Broker::new(BrokerConfig::default());
    let server = broker::server::spawn_tls(
        broker,
        ServerOptions::default(),
        "127.0.0.1:0".parse().unwrap(),
        TlsFiles { cert, key },
    )
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", server.local_addr().port());
    let response = client
        .post(&url)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "Kinesis_20131202.ListStreams")
        // Signed in form (as AWS requires); the broker checks no signature without --auth-keys.
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )
        .header("x-amz-date", "20260101T000000Z")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["StreamNames"], serde_json::json!([]));
    let plain = reqwest::Client::new()
        .post(format!("http://localhost:{}/", server.local_addr().port()))
        .body("{}")
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    server.shutdown().await;
}
