//! The bus over TLS (`rediss://`, as on ElastiCache with in-transit encryption): a real Redis
//! serving TLS only, with a certificate signed by a test CA the instances trust through `SSL_CERT_FILE`.
use super::*;
use crate::kit::process::{free_port, wait_port, Proc, Stop};
use crate::kit::services::{require, Service};
use std::process::{Command, Stdio};

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let ran = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (apt-get install openssl)");
    assert!(ran.success(), "openssl {args:?}");
}

/// A test CA and a certificate for 127.0.0.1 it signed, made by `openssl` in `dir`: the CA's
/// file (for `SSL_CERT_FILE`), and the server's certificate and key.
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &["-days", "1", "-subj", "/CN=tablecast test CA"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "redis.key",
                "-out",
                "redis.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "redis.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
        ]
        .into_iter()
        .chain([
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "redis.crt",
        ])
        .collect::<Vec<_>>(),
    );
    ["ca.crt", "redis.crt", "redis.key"].map(|f| dir.join(f))
}

/// Two instances on a TLS-only Redis are ready (their bus is up) and a hold on one reaches a
/// subscriber on the other within a second, by the bus. The Redis client had no TLS crypto
/// provider: each bus task panicked at its first connection and `/readyz` stayed `503`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_on_a_tls_redis_are_ready_and_a_change_crosses_between_them() {
    let _serial = SERIAL.lock().await;
    let test = "instances_on_a_tls_redis_are_ready_and_a_change_crosses_between_them";
    let Some(redis_bin) = require(Service::Redis, test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key] = certificates(dir.path());
    let tls_port = free_port();
    let _redis = Proc::spawn(
        Command::new(redis_bin)
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--tls-port",
                &tls_port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        Stop::Kill,
        "redis-server (TLS)",
    );
    wait_port(tls_port, "redis over TLS", None);
    let store = SharedStore::pick(dir.path(), test);
    let bus = format!("rediss://127.0.0.1:{tls_port}");
    let trust = ca.display().to_string();
    let instances: Vec<_> = (0..2)
        .map(|i| {
            let port = free_port();
            let log = dir.path().join(format!("instance-{i}.log"));
            start_instance_on(
                &store,
                &bus,
                port,
                Limits::OFF,
                &[("SSL_CERT_FILE", &trust)],
                &log,
            )
        })
        .collect();
    let api = Api::new(&instances[0].base, ADMIN);
    for i in &instances {
        kit::wait::eventually(
            Duration::from_secs(10),
            "readyz 200 on the TLS bus",
            || async { api.at(&i.base).status("/readyz").await == 200 },
        )
        .await;
    }
    let rid = api.create_restaurant(big_restaurant(3)).await.id;
    let date = date_in(3);
    let mut far = Watcher::start(&instances[1].base, &rid, &date, 2).await;
    let started = Instant::now();
    assert_eq!(
        api.hold(&rid, &date, "19:00", 2).await.status(),
        StatusCode::CREATED
    );
    let expected = api.availability(&rid, &date, 2).await;
    assert_eq!(free_at(&expected, "19:00"), 2);
    far.converge(&expected, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the change crossed on the bus"
    );
}
