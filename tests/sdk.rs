//! Cloudflare's official SDKs against the real `roster` binary (`cargo test --test sdk`).
//!
//! Each test starts `roster serve --demo` on a fresh SQLite file and a free port, then runs
//! one SDK script against it: `tests/sdk/e2e.py` with the Python SDK (`cloudflare==5.9.0`,
//! in a venv at `target/sdk-venv`) and `tests/sdk/e2e.mjs` with the TypeScript SDK (the
//! version pinned by `tests/sdk/package-lock.json`, installed with `npm ci` into
//! `target/sdk-node`). The SDKs are installed on first use and reused while they match the
//! pins. A missing `python3`, `node` or `npm` fails the test: nothing is skipped. The same
//! venv holds schemathesis, which fuzzes every operation of the OpenAPI contract against
//! the demo and fails on any 5xx.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use common::{Server, TestDatabase, manifest_dir, run, target_dir};

const PYTHON_SDK: &str = "5.9.0";
/// Schemathesis, which fuzzes every operation of the OpenAPI contract, shares the venv.
const SCHEMATHESIS: &str = "4.32.5";

/// `roster serve --demo` on a database of its own (dropped after the server stops).
struct Demo {
    server: Server,
    _db: TestDatabase,
}

/// The bulk data the end-to-end scripts page through (their `BULK_*` constants): a user
/// with 251 memberships, and an account of 300 members.
fn bulk_fixture() -> serde_json::Value {
    let members: Vec<_> = std::iter::once(serde_json::json!({
        "email": "bulk@example.com", "roles": ["Super Administrator - All Privileges"],
    }))
    .chain((1..300).map(|i| {
        serde_json::json!({
            "email": format!("member{i:03}@bulk.example.com"),
            "status": if i % 3 == 0 { "pending" } else { "accepted" },
            "roles": ["Administrator Read Only"],
        })
    }))
    .collect();
    let accounts = std::iter::once(serde_json::json!({
        "id": "b0000000000000000000000000000000", "name": "Bulk Members", "members": members,
    }))
    .chain((0..250).map(|i| {
        serde_json::json!({
            "id": format!("b1{i:030}"),
            "name": format!("Bulk {i:03}"),
            "members": [{"email": "bulk@example.com", "status": if i % 2 == 0 { "accepted" } else { "pending" }, "roles": ["Administrator"]}],
        })
    }))
    .collect::<Vec<_>>();
    serde_json::json!({
        "users": [{"email": "bulk@example.com", "first_name": "Bulk", "api_key": "b".repeat(37)}],
        "accounts": accounts,
    })
}

impl Demo {
    /// The demo plus the bulk data, for the end-to-end scripts.
    fn with_bulk() -> Demo {
        let db = TestDatabase::new();
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("bulk.json");
        std::fs::write(&file, bulk_fixture().to_string()).expect("write the bulk fixture");
        common::roster(&db, &["seed", file.to_str().expect("UTF-8 path")]);
        Demo {
            server: Server::start(&db, &["--demo"]),
            _db: db,
        }
    }

    fn start(extra: &[&str]) -> Demo {
        let db = TestDatabase::new();
        let args: Vec<&str> = ["--demo"].iter().chain(extra).copied().collect();
        Demo {
            server: Server::start(&db, &args),
            _db: db,
        }
    }
}

impl std::ops::Deref for Demo {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

/// Runs an SDK script against `server` and checks it passed: exit status 0 and a closing
/// `N passed, 0 failed` line.
fn run_script(mut cmd: Command, server: &Server, what: &str) {
    let started = Instant::now();
    let output = cmd
        .env("ROSTER_BASE_URL", &server.base_url)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("CLOUDFLARE_API_KEY")
        .env_remove("CLOUDFLARE_EMAIL")
        .env_remove("CLOUDFLARE_BASE_URL")
        .env_remove("CLOUDFLARE_API_USER_SERVICE_KEY")
        .env_remove("CLOUDFLARE_CUSTOM_HEADERS")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", cmd.get_program()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{what} ({:.1?}):\n{stdout}{stderr}", started.elapsed());
    let last = stdout.lines().last().unwrap_or_default();
    let passed = last
        .strip_suffix(" passed, 0 failed")
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        output.status.success() && passed.is_some_and(|n| n > 0),
        "{what} failed ({}), its output is above; the server's log ends:\n{}",
        output.status,
        server.log_text()
    );
}

/// The venv at `target/sdk-venv` with `cloudflare==5.9.0`, made (again) unless it already
/// imports that version. Returns its python.
fn python_sdk() -> PathBuf {
    // Tests of this binary run in parallel threads; one of them installs.
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(install_python_sdk).clone()
}

fn install_python_sdk() -> PathBuf {
    let venv = target_dir().join("sdk-venv");
    let python = venv.join("bin").join("python");
    let check = format!(
        "import cloudflare, pytest, importlib.metadata as m; assert cloudflare.__version__ == {PYTHON_SDK:?}; \
         assert m.version('schemathesis') == {SCHEMATHESIS:?}"
    );
    let ready = || {
        Command::new(&python)
            .args(["-c", &check])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready() {
        return python;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove a stale sdk-venv");
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv (python3 with the venv module is required)",
    );
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--no-input",
                "--quiet",
            ])
            .arg(format!("cloudflare=={PYTHON_SDK}"))
            .arg(format!("schemathesis=={SCHEMATHESIS}")),
        "pip install cloudflare",
    );
    assert!(
        ready(),
        "cloudflare {PYTHON_SDK} and schemathesis {SCHEMATHESIS} do not import from {}",
        venv.display()
    );
    python
}

/// `target/sdk-node` with the TypeScript SDK as pinned by tests/sdk/package-lock.json,
/// installed with `npm ci` unless the lock file there already matches and is installed.
fn node_sdk() -> PathBuf {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(install_node_sdk).clone()
}

fn install_node_sdk() -> PathBuf {
    let dir = target_dir().join("sdk-node");
    let sources = manifest_dir().join("tests").join("sdk");
    let lock =
        std::fs::read(sources.join("package-lock.json")).expect("tests/sdk/package-lock.json");
    let installed = std::fs::read(dir.join("node_modules").join(".package-lock.json")).is_ok()
        && std::fs::read(dir.join("package-lock.json")).is_ok_and(|l| l == lock);
    if !installed {
        std::fs::create_dir_all(&dir).expect("create target/sdk-node");
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(sources.join(file), dir.join(file)).expect("copy the npm manifest");
        }
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci (node and npm are required)",
        );
    }
    // ESM resolves `cloudflare` from the script's own directory: run a copy placed there.
    std::fs::copy(sources.join("e2e.mjs"), dir.join("e2e.mjs")).expect("copy e2e.mjs");
    dir
}

#[test]
fn python_sdk_end_to_end() {
    let python = python_sdk();
    let server = Demo::with_bulk();
    let mut cmd = Command::new(python);
    cmd.arg(manifest_dir().join("tests").join("sdk").join("e2e.py"));
    run_script(cmd, &server, "tests/sdk/e2e.py (Python SDK)");
}

#[test]
fn typescript_sdk_end_to_end() {
    let dir = node_sdk();
    let server = Demo::with_bulk();
    let mut cmd = Command::new("node");
    cmd.arg("e2e.mjs").current_dir(&dir);
    run_script(cmd, &server, "tests/sdk/e2e.mjs (TypeScript SDK)");
}

/// The README's code block in `language`, pointed at `server` instead of port 8080.
fn readme_snippet(language: &str, server: &Server) -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let fence = format!("```{language}\n");
    let start = readme.find(&fence).expect("README has the snippet") + fence.len();
    let end = start + readme[start..].find("```").expect("closed code block");
    readme[start..end].replace("http://127.0.0.1:8080/client/v4", &server.base_url)
}

/// The README's code block that starts with `first_line`, pointed at `server`'s root
/// instead of port 8080.
fn readme_block(first_line: &str, server: &Server) -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README.md");
    let start = readme
        .find(&format!("\n{first_line}"))
        .unwrap_or_else(|| panic!("README has a block starting {first_line:?}"))
        + 1;
    let end = start + readme[start..].find("```").expect("closed code block");
    let root = server.base_url.trim_end_matches("/client/v4");
    readme[start..end].replace("http://127.0.0.1:8080", root)
}

/// Runs a README snippet and returns what it printed; it must exit 0.
fn run_snippet(mut cmd: Command, what: &str) -> String {
    let output = cmd.stdin(Stdio::null()).output().expect("run the snippet");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{what} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn readme_python_snippet_works_verbatim() {
    let python = python_sdk();
    let server = Demo::start(&[]);
    let mut cmd = Command::new(python);
    cmd.args(["-c", &readme_snippet("python", &server)]);
    let printed = run_snippet(cmd, "the README's Python snippet");
    assert!(
        printed.contains("4536bcfad5faccb111b47003c79917fa Demo Account accepted"),
        "{printed}"
    );
    assert!(printed.trim_end().ends_with("pending"), "{printed}");
}

#[test]
fn readme_typescript_snippet_works_verbatim() {
    let dir = node_sdk();
    let server = Demo::start(&[]);
    let script = dir.join(format!("readme-{}.mjs", std::process::id()));
    std::fs::write(&script, readme_snippet("ts", &server)).expect("write the snippet");
    let mut cmd = Command::new("node");
    cmd.arg(&script).current_dir(&dir);
    let printed = run_snippet(cmd, "the README's TypeScript snippet");
    let _ = std::fs::remove_file(&script);
    assert!(
        printed.contains("4536bcfad5faccb111b47003c79917fa user@example.com accepted"),
        "{printed}"
    );
}

/// The README's pytest example passes as written, against `serve --demo`: the reset
/// fixture lets the same invitation be made twice, and the SDK retries an injected 503.
#[test]
fn readme_pytest_example_passes() {
    let python = python_sdk();
    let server = Demo::start(&[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("test_roster.py");
    std::fs::write(&file, readme_block("# test_roster.py", &server)).expect("write the example");
    let mut cmd = Command::new(python);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&file)
        .current_dir(dir.path());
    let printed = run_snippet(cmd, "the README's pytest example");
    assert!(printed.contains("3 passed"), "{printed}");
}

/// The README's node:test example passes as written: the clock moved past a token's
/// expiry ends it.
#[test]
fn readme_node_test_example_passes() {
    let dir = node_sdk();
    let server = Demo::start(&[]);
    let script = dir.join(format!("roster-{}.test.mjs", std::process::id()));
    std::fs::write(&script, readme_block("// roster.test.mjs", &server))
        .expect("write the example");
    let mut cmd = Command::new("node");
    cmd.arg("--test").arg(&script).current_dir(&dir);
    let output = cmd.stdin(Stdio::null()).output().expect("run node --test");
    let _ = std::fs::remove_file(&script);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("# pass 1") && printed.contains("# fail 0"),
        "{printed}"
    );
}

/// Generated requests to every operation of the contract, on the demo account: none gets a
/// 5xx (bad input is always the client's error), every answer matches the contract, and
/// no request the contract forbids is accepted.
#[test]
fn fuzzed_requests_never_get_a_server_error() {
    let python = python_sdk();
    // Thousands of requests from one user: the rate limit would answer most of them.
    let server = Demo::start(&["--rate-limit", "0"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[parameters]\n\"path.account_id\" = \"023e105f4ecef8ad9ca31a8372d0c353\"\n",
    )
    .expect("write the schemathesis config");
    // The contract as the API tests hold Roster to it (the SDK-over-schema patches).
    let schema = dir.path().join("openapi.json");
    std::fs::write(&schema, common::openapi::for_fuzzing().to_string())
        .expect("write the contract");
    let cli = python.with_file_name("schemathesis");
    let output = Command::new(cli)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(&schema)
        .args(["--url", &server.base_url])
        .args(["-H", "X-Auth-Email: user@example.com"])
        .args(["-H", "X-Auth-Key: 144c9defac04969c7bfad8efaa8ea194"])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,negative_data_rejection",
            "--max-examples",
            "25",
        ])
        .args([
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found server errors:\n{stdout}{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_text()
    );
    assert!(
        stdout.contains(" passed"),
        "schemathesis ran no case:\n{stdout}"
    );
    // The run's summary (operations and generated cases), for the test log.
    for line in stdout
        .lines()
        .filter(|l| l.contains("cases") || l.contains("passed"))
    {
        eprintln!("schemathesis: {}", line.trim());
    }
}
