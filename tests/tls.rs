//! PostgreSQL over TLS: `sslmode` and `sslrootcert` in `--database-url`, against a server
//! of the test's own that takes TLS connections only, its certificate signed by an
//! authority the test makes. The right authority is trusted; a wrong one, a name the
//! certificate does not carry, or no TLS at all is refused when the server starts, with an
//! error that says which.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Server;
use common::cluster::{Pg, give_to_postgres, run, shared_dir};
use common::raw::{invite, member_emails};

/// An authority (`name`.pem, its key `name`.key) in `dir`.
fn authority(dir: &Path, name: &str) -> PathBuf {
    let pem = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN=Roster test {name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(&pem));
    pem
}

/// A server certificate for 127.0.0.1 (its only name) signed by `ca`: (certificate, key).
fn server_certificate(dir: &Path, ca: &Path) -> (PathBuf, PathBuf) {
    let (crt, key, csr) = (
        dir.join("server.crt"),
        dir.join("server.key"),
        dir.join("server.csr"),
    );
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(ca)
        .arg("-CAkey")
        .arg(ca.with_extension("key"))
        .args(["-CAcreateserial", "-extfile"])
        .arg(&ext)
        .arg("-out")
        .arg(&crt));
    give_to_postgres(&crt, false);
    give_to_postgres(&key, true);
    (crt, key)
}

/// `roster serve` on `url`, which must exit at start: its error output.
fn refused_at_start(url: &str) -> String {
    Server::refused(&["--database-url".into(), url.into()])
}

#[test]
#[ignore = "needs PostgreSQL's binaries (/usr/lib/postgresql/*/bin), run as the postgres user under root, and openssl: .ci/run's PostgreSQL pass runs it"]
fn tls_is_verified_against_sslrootcert_and_refused_clearly_when_it_cannot_be() {
    let dir = shared_dir();
    let ca = authority(dir.path(), "ca");
    let wrong = authority(dir.path(), "wrong-ca");
    let (crt, key) = server_certificate(dir.path(), &ca);
    let mut pg = Pg::init(dir.path(), "tls");
    // TLS or nothing, over TCP; the socket is for pg_ctl.
    std::fs::write(
        pg.data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
    )
    .unwrap();
    pg.start(&[
        "ssl=on",
        &format!("ssl_cert_file={}", crt.display()),
        &format!("ssl_key_file={}", key.display()),
    ]);
    let url =
        |host: &str, query: &str| format!("postgres://roster@{host}:{}/postgres?{query}", pg.port);

    // The right authority, the name checked: served, a write read back.
    let server = Server::start_with(
        &[
            "--database-url".into(),
            url(
                "127.0.0.1",
                &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
            ),
        ],
        &["--demo", "--rate-limit", "0"],
    );
    let (status, _, body) =
        invite(&server.addr, "tls@example.com", Duration::from_secs(30)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(member_emails(&server.addr).contains(&"tls@example.com".to_string()));
    drop(server);

    // Another authority: refused, saying the certificate is not trusted and where to look.
    let error = refused_at_start(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", wrong.display()),
    ));
    assert!(
        error.contains(&format!(
            "the server's TLS certificate is refused: it is not signed by the authority whose certificate sslrootcert names ({})",
            wrong.display()
        )),
        "{error}"
    );

    // A name the certificate does not carry: verify-full refuses; verify-ca checks only
    // the authority.
    let error = refused_at_start(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ));
    assert!(
        error.contains(r#"TLS certificate is refused: certificate not valid for name "localhost""#),
        "{error}"
    );
    Server::start_with(
        &[
            "--database-url".into(),
            url(
                "localhost",
                &format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
            ),
        ],
        &["--rate-limit", "0"],
    );

    // No TLS: the server refuses it.
    let error = refused_at_start(&url("127.0.0.1", "sslmode=disable"));
    assert!(error.contains("no encryption"), "{error}");
    assert!(
        error.contains("the server takes only TLS connections from here"),
        "{error}"
    );
}
